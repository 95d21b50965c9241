// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {ILilypadJobManager} from "../interfaces/ILilypadJobManager.sol";
import {ILilypadJobClient, ILilypadJobFailureClient} from "../interfaces/ILilypadJobClient.sol";

interface ILilypadControllerDiscovery {
    function getJobCreatorAddress() external view returns (address);
}

/// @title ExampleClient: run cowsay from a contract and keep the result CID.
/// @notice Copy this. Before calling `runCowsay`, the payer (msg.sender):
///  1. approves the job creator (`getJobCreatorAddress()` on the controller) on
///     the token (`getTokenAddress()`) for at least `getRequiredDeposit()`, and
///  2. calls `setCallerAllowance(thisContract, amount)` on the job creator, so
///     that only contracts it chose can spend its deposit.
/// The deposit goes into escrow at `runJob`; when the job settles, the payer gets back
/// all of it but the job's cost and the relayer's fee. Only the job creator may deliver
/// results (the deal's, read from the chain), and each job's result is set once.
contract ExampleClient is ILilypadJobClient, ILilypadJobFailureClient, ERC165 {
    ILilypadJobManager public immutable jobManager;

    mapping(uint256 id => string dataId) public results; // the deal id is in the CowsayResult event
    mapping(uint256 id => string reason) public failures;

    event CowsayRequested(uint256 indexed id, address indexed requester, string message);
    event CowsayResult(uint256 indexed id, string dealId, string dataId);
    event CowsayFailed(uint256 indexed id, string reason);

    error NotJobManager(address caller);
    error AlreadyDelivered(uint256 id);

    constructor(address controller) {
        jobManager = ILilypadJobManager(ILilypadControllerDiscovery(controller).getJobCreatorAddress());
    }

    function runCowsay(string calldata message) external returns (uint256 id) {
        string[] memory inputs = new string[](1);
        inputs[0] = string.concat("Message=", message);
        id = jobManager.runJob("cowsay:v0.0.1", inputs, msg.sender);
        emit CowsayRequested(id, msg.sender, message);
    }

    function submitResults(uint256 id, string calldata dealId, string calldata dataId) external {
        if (msg.sender != address(jobManager)) revert NotJobManager(msg.sender);
        if (bytes(results[id]).length != 0) revert AlreadyDelivered(id);
        results[id] = dataId;
        emit CowsayResult(id, dealId, dataId);
    }

    function jobFailed(uint256 id, string calldata reason) external {
        if (msg.sender != address(jobManager)) revert NotJobManager(msg.sender);
        failures[id] = reason;
        emit CowsayFailed(id, reason);
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(ILilypadJobFailureClient).interfaceId || super.supportsInterface(interfaceId);
    }
}
