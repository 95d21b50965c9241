// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC165} from "@openzeppelin/contracts/utils/introspection/ERC165.sol";
import {ILilypadJobManager} from "../interfaces/ILilypadJobManager.sol";
import {ILilypadJobClient, ILilypadJobFailureClient} from "../interfaces/ILilypadJobClient.sol";

interface ILilypadControllerLookup {
    function getJobCreatorAddress() external view returns (address);
}

/// @title ExampleJobRunner: run any module, and handle failure as well as success.
/// @notice Copy this when your contract must know how every job ended. Each job
/// is Pending until exactly one of two callbacks arrives from the job creator:
/// `submitResults` (Completed, with the result CID) or `jobFailed` (Failed,
/// with the reason; the payee's deposit has already been refunded to it when
/// this is called). A job that gets no deal can be ended by anyone with
/// `timeoutJob(id, options)` on the job creator after its timeout, or by its
/// payee or this contract with `cancelJob(id, options)`; both call `jobFailed`.
///
/// Setup, as the payer (msg.sender of `run`): `approve` the job creator on the
/// token for the deposits, and `setCallerAllowance(thisContract, amount)` on
/// the job creator.
contract ExampleJobRunner is ILilypadJobClient, ILilypadJobFailureClient, ERC165 {
    enum Status {
        None,
        Pending,
        Completed,
        Failed
    }

    struct Job {
        Status status;
        address requester;
        string dealId;
        string dataId; // the result's CID (Completed)
        string reason; // why it failed (Failed)
    }

    ILilypadJobManager public immutable jobManager;
    mapping(uint256 id => Job) private _jobs;

    event JobRequested(uint256 indexed id, address indexed requester, string module);
    event JobCompleted(uint256 indexed id, string dealId, string dataId);
    event JobFailed(uint256 indexed id, string reason);

    error NotJobManager(address caller);
    error NotPending(uint256 id, Status status);

    constructor(address controller) {
        jobManager = ILilypadJobManager(ILilypadControllerLookup(controller).getJobCreatorAddress());
    }

    function run(string calldata module, string[] calldata inputs) external returns (uint256 id) {
        id = jobManager.runJob(module, inputs, msg.sender);
        _jobs[id].status = Status.Pending;
        _jobs[id].requester = msg.sender;
        emit JobRequested(id, msg.sender, module);
    }

    function getJob(uint256 id) external view returns (Job memory) {
        return _jobs[id];
    }

    function submitResults(uint256 id, string calldata dealId, string calldata dataId) external {
        Job storage job = _pending(id);
        job.status = Status.Completed;
        job.dealId = dealId;
        job.dataId = dataId;
        emit JobCompleted(id, dealId, dataId);
    }

    function jobFailed(uint256 id, string calldata reason) external {
        Job storage job = _pending(id);
        job.status = Status.Failed;
        job.reason = reason;
        emit JobFailed(id, reason);
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(ILilypadJobFailureClient).interfaceId || super.supportsInterface(interfaceId);
    }

    function _pending(uint256 id) private view returns (Job storage job) {
        if (msg.sender != address(jobManager)) revert NotJobManager(msg.sender);
        job = _jobs[id];
        if (job.status != Status.Pending) revert NotPending(id, job.status);
    }
}
