// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ERC165Checker} from "@openzeppelin/contracts/utils/introspection/ERC165Checker.sol";
import {ILilypadJobManager} from "./interfaces/ILilypadJobManager.sol";
import {ILilypadJobClient, ILilypadJobFailureClient} from "./interfaces/ILilypadJobClient.sol";

/// @title LilypadOnChainJobCreator: lets contracts request jobs.
/// @notice Flow: the payee approves this contract for the required deposit; a
/// client contract calls `runJob`; the bridge (BRIDGE_ROLE) takes the deposit
/// into escrow here, runs the job through the market with its own float, and
/// calls `submitResults`, which pays the deposit to the bridge and calls the
/// client back. A job that cannot be done ends with `failJob` (deposit refunded
/// to the payee, client told through the optional failure callback); a job the
/// bridge abandons can be ended by anyone with `timeoutJob` after `jobTimeout`.
/// A client contract may only spend a payee's deposit if it *is* the payee or
/// the payee authorised it with `setCallerAllowance`.
contract LilypadOnChainJobCreator is ILilypadJobManager, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    bytes32 public constant BRIDGE_ROLE = keccak256("BRIDGE_ROLE");
    uint256 public constant MAX_MODULE_LENGTH = 256;
    uint256 public constant MAX_INPUTS = 64;
    uint256 public constant MAX_INPUTS_BYTES = 64 * 1024;

    enum JobState {
        None,
        Added,
        FundsTaken,
        Completed,
        Failed
    }

    struct Job {
        address caller; // the client contract that called runJob
        JobState state;
        uint40 createdAt;
        address payee;
        uint96 deposit;
    }

    IERC20 private immutable _token;
    address private immutable _controller;

    uint96 private _requiredDeposit;
    uint32 private _callbackGasLimit;
    uint32 private _jobTimeout;
    uint256 private _nextJobId = 1;

    mapping(uint256 id => Job) private _jobs;
    mapping(address payee => mapping(address caller => uint256)) private _callerAllowance;

    event FundsTaken(uint256 indexed id, address indexed payee, uint256 amount);
    event JobCompleted(uint256 indexed id, string dealId, string dataId, bool callbackSucceeded);
    event JobFailed(uint256 indexed id, string reason, uint256 refunded, bool notified);
    event CallerAllowanceSet(address indexed payee, address indexed caller, uint256 amount);
    event SettingsChanged(uint256 requiredDeposit, uint256 callbackGasLimit, uint256 jobTimeout);

    error InvalidJob(string reason);
    error CallerNotAuthorised(address payee, address caller);
    error InsufficientAllowance(address payee, uint256 allowance, uint256 required);
    error WrongJobState(uint256 id, JobState actual);
    error JobNotExpired(uint256 id, uint256 deadline);
    error NotEnoughGasForCallback(uint256 available, uint256 required);

    constructor(
        address admin,
        IERC20 token_,
        address controller_,
        uint96 requiredDeposit_,
        uint32 callbackGasLimit_,
        uint32 jobTimeout_
    ) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _token = token_;
        _controller = controller_;
        _setSettings(requiredDeposit_, callbackGasLimit_, jobTimeout_);
    }

    // ------------------------------------------------------------ discovery

    function getTokenAddress() external view returns (address) {
        return address(_token);
    }

    function getRequiredDeposit() external view returns (uint256) {
        return _requiredDeposit;
    }

    function getControllerAddress() external view returns (address) {
        return _controller;
    }

    function getSettings() external view returns (uint256 requiredDeposit, uint256 callbackGasLimit, uint256 jobTimeout) {
        return (_requiredDeposit, _callbackGasLimit, _jobTimeout);
    }

    function getJob(uint256 id) external view returns (Job memory) {
        return _jobs[id];
    }

    function getCallerAllowance(address payee, address caller) external view returns (uint256) {
        return _callerAllowance[payee][caller];
    }

    function setSettings(uint96 requiredDeposit, uint32 callbackGasLimit, uint32 jobTimeout)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        _setSettings(requiredDeposit, callbackGasLimit, jobTimeout);
    }

    // ------------------------------------------------------------ clients

    /// @notice Let `caller` (a client contract) start jobs paid from your
    /// deposit approval, up to `amount` in total (type(uint256).max: no limit).
    function setCallerAllowance(address caller, uint256 amount) external {
        _callerAllowance[msg.sender][caller] = amount;
        emit CallerAllowanceSet(msg.sender, caller, amount);
    }

    function runJob(string calldata module, string[] calldata inputs, address payee)
        external
        nonReentrant
        returns (uint256 id)
    {
        uint256 moduleLength = bytes(module).length;
        if (moduleLength == 0 || moduleLength > MAX_MODULE_LENGTH) revert InvalidJob("module must be 1-256 bytes");
        if (inputs.length > MAX_INPUTS) revert InvalidJob("more than 64 inputs");
        uint256 total;
        for (uint256 i = 0; i < inputs.length; ++i) {
            total += bytes(inputs[i]).length;
        }
        if (total > MAX_INPUTS_BYTES) revert InvalidJob("inputs over 64 KiB");
        if (payee == address(0)) revert InvalidJob("zero payee");

        uint96 deposit = _requiredDeposit;
        if (payee != msg.sender) {
            uint256 allowed = _callerAllowance[payee][msg.sender];
            if (allowed < deposit || allowed == 0) revert CallerNotAuthorised(payee, msg.sender);
            if (allowed != type(uint256).max) _callerAllowance[payee][msg.sender] = allowed - deposit;
        }
        uint256 allowance = _token.allowance(payee, address(this));
        if (allowance < deposit) revert InsufficientAllowance(payee, allowance, deposit);

        id = _nextJobId++;
        _jobs[id] = Job({
            caller: msg.sender,
            state: JobState.Added,
            createdAt: uint40(block.timestamp),
            payee: payee,
            deposit: deposit
        });
        emit JobAdded(id, msg.sender, payee, module, inputs);
    }

    // ------------------------------------------------------------ bridge

    function takeFunds(uint256 id) external onlyRole(BRIDGE_ROLE) nonReentrant {
        Job storage job = _jobs[id];
        if (job.state != JobState.Added) revert WrongJobState(id, job.state);
        job.state = JobState.FundsTaken;
        uint256 deposit = job.deposit;
        if (deposit > 0) _token.safeTransferFrom(job.payee, address(this), deposit);
        emit FundsTaken(id, job.payee, deposit);
    }

    /// @notice Deliver a job's result once: pays the deposit to the bridge and
    /// calls the client back with a bounded amount of gas. If the client's
    /// callback fails, the job fails instead and the payee is refunded.
    function submitResults(uint256 id, string calldata dealId, string calldata dataId)
        external
        onlyRole(BRIDGE_ROLE)
        nonReentrant
    {
        Job storage job = _jobs[id];
        if (job.state != JobState.FundsTaken) revert WrongJobState(id, job.state);
        bool ok = _boundedCall(
            job.caller, abi.encodeCall(ILilypadJobClient.submitResults, (id, dealId, dataId))
        );
        if (ok) {
            job.state = JobState.Completed;
            emit JobCompleted(id, dealId, dataId, true);
            if (job.deposit > 0) _token.safeTransfer(msg.sender, job.deposit);
        } else {
            emit JobCompleted(id, dealId, dataId, false);
            _fail(id, job, "client callback reverted");
        }
    }

    function failJob(uint256 id, string calldata reason) external onlyRole(BRIDGE_ROLE) nonReentrant {
        Job storage job = _jobs[id];
        if (job.state != JobState.Added && job.state != JobState.FundsTaken) revert WrongJobState(id, job.state);
        _fail(id, job, reason);
    }

    /// @notice Anyone may end a job the bridge has not finished within `jobTimeout`.
    function timeoutJob(uint256 id) external nonReentrant {
        Job storage job = _jobs[id];
        if (job.state != JobState.Added && job.state != JobState.FundsTaken) revert WrongJobState(id, job.state);
        uint256 deadline = uint256(job.createdAt) + _jobTimeout;
        if (block.timestamp < deadline) revert JobNotExpired(id, deadline);
        _fail(id, job, "job timed out");
    }

    // ------------------------------------------------------------ internals

    function _fail(uint256 id, Job storage job, string memory reason) private {
        uint256 refund = job.state == JobState.FundsTaken ? job.deposit : 0;
        job.state = JobState.Failed;
        if (refund > 0) _token.safeTransfer(job.payee, refund);
        bool notified;
        if (ERC165Checker.supportsInterface(job.caller, type(ILilypadJobFailureClient).interfaceId)) {
            notified = _boundedCall(job.caller, abi.encodeCall(ILilypadJobFailureClient.jobFailed, (id, reason)));
        }
        emit JobFailed(id, reason, refund, notified);
    }

    /// @dev Call with at most `_callbackGasLimit` gas and without copying return
    /// data, so a client can neither take all the gas nor bomb us with output.
    /// The caller must supply enough gas for the callee to really get the limit.
    function _boundedCall(address target, bytes memory data) private returns (bool ok) {
        uint256 limit = _callbackGasLimit;
        if (gasleft() < limit + limit / 63 + 10_000) {
            revert NotEnoughGasForCallback(gasleft(), limit + limit / 63 + 10_000);
        }
        assembly ("memory-safe") {
            ok := call(limit, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
    }

    function _setSettings(uint96 requiredDeposit, uint32 callbackGasLimit, uint32 jobTimeout) private {
        if (callbackGasLimit < 50_000 || jobTimeout == 0) revert InvalidJob("bad settings");
        _requiredDeposit = requiredDeposit;
        _callbackGasLimit = callbackGasLimit;
        _jobTimeout = jobTimeout;
        emit SettingsChanged(requiredDeposit, callbackGasLimit, jobTimeout);
    }
}
