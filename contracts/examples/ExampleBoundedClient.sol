// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {ILilypadJobRunner, JobOptions} from "../interfaces/ILilypadJobRunner.sol";
import {ILilypadJobClient, ILilypadJobFailureClient} from "../interfaces/ILilypadJobClient.sol";

interface ILilypadControllerFinder {
    function getJobCreatorAddress() external view returns (address);
}

/// @title ExampleBoundedClient: run a module with your own bounds on price and trust.
/// @notice Copy this when the defaults of plain `runJob` are not yours. `run` passes
/// `JobOptions`: the most the payer can be charged in all (`maxPayment`, taken into escrow at
/// once; whatever the job does not cost comes back in the transaction that settles it), the
/// relayer's fee out of it, the chance that the result is re-run by mediators before it is
/// accepted (`checkBps`, out of 10,000; the mediation fee comes out of `maxPayment` too), the
/// one provider allowed (or zero), how long deals may be tried, and the callback's gas.
/// The job creator calls back exactly once: `submitResults` with the deal id and the result
/// CID read from the chain, or `jobFailed` (the payer refunded).
/// Setup, as the payer: `approve` the job creator on the token for `maxPayment`s and
/// `setCallerAllowance(thisContract, amount)` on the job creator.
contract ExampleBoundedClient is ILilypadJobClient, ILilypadJobFailureClient, ERC165 {
    ILilypadJobRunner public immutable jobRunner;

    mapping(uint256 id => string dataId) public results;
    mapping(uint256 id => string reason) public failures;

    event Requested(uint256 indexed id, address indexed payer, uint256 maxPayment, uint16 checkBps);
    event Delivered(uint256 indexed id, string dealId, string dataId);
    event Failed(uint256 indexed id, string reason);

    error NotJobRunner(address caller);

    constructor(address controller) {
        jobRunner = ILilypadJobRunner(ILilypadControllerFinder(controller).getJobCreatorAddress());
    }

    /// @notice Run `module` with `inputs` ("Key=Value"), paid by the caller, at most
    /// `maxPayment` in all, checked with chance `checkBps`, on `target` only (zero: any).
    function run(string calldata module, string[] calldata inputs, uint96 maxPayment, uint16 checkBps, address target)
        external
        returns (uint256 id)
    {
        JobOptions memory options = jobRunner.getDefaults(); // its relayer fee, timeout and callback gas
        options.maxPayment = maxPayment;
        options.checkBps = checkBps;
        options.target = target;
        id = jobRunner.runJobWithOptions(module, inputs, msg.sender, options);
        emit Requested(id, msg.sender, maxPayment, checkBps);
    }

    function submitResults(uint256 id, string calldata dealId, string calldata dataId) external {
        if (msg.sender != address(jobRunner)) revert NotJobRunner(msg.sender);
        results[id] = dataId;
        emit Delivered(id, dealId, dataId);
    }

    function jobFailed(uint256 id, string calldata reason) external {
        if (msg.sender != address(jobRunner)) revert NotJobRunner(msg.sender);
        failures[id] = reason;
        emit Failed(id, reason);
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(ILilypadJobFailureClient).interfaceId || super.supportsInterface(interfaceId);
    }
}
