// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControlDefaultAdminRules} from
    "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ERC165Checker} from "@openzeppelin/contracts/utils/introspection/ERC165Checker.sol";
import {ILilypadJobManager} from "./interfaces/ILilypadJobManager.sol";
import {ILilypadJobRunner, JobOptions} from "./interfaces/ILilypadJobRunner.sol";
import {ILilypadJobClient, ILilypadJobFailureClient} from "./interfaces/ILilypadJobClient.sol";
import {ILilypadController} from "./interfaces/ILilypadController.sol";
import {ILilypadStorage} from "./interfaces/ILilypadStorage.sol";
import {ILilypadPayments} from "./interfaces/ILilypadPayments.sol";
import {Agreement, AgreementState, Deal} from "./interfaces/LilypadTypes.sol";

/// @title LilypadOnChainJobCreator: contracts run jobs on the market, and nobody is trusted with them.
/// @notice This contract is the job creator of every deal it makes. `runJob` takes the job's
/// deposit (its `maxPayment`) from the payee into this contract, and the job's terms are fixed
/// from then on. Anyone may relay a job: post it to a solver, then `agree` to a matched deal
/// whose nonce binds it to the job (`dealNonce(id, attempt)`), which this contract escrows from
/// the deposit; `judge` the result (accept, or send it to mediation with the job's own check
/// chance, drawn from the result block's hash); `complete` the job once the deal is settled.
/// The result delivered to the client is the deal's, read from the chain; the payee pays what
/// the deal cost plus the relayer's fee, and gets everything else back in the transaction that
/// ends the job. A failed deal is retried (up to `MAX_ATTEMPTS`, before the job's timeout);
/// a job that ends without a result refunds the payee all its deposit and whatever the deals
/// returned (a rejected result's collateral included). The admin can only change the defaults
/// that plain `runJob` uses, after `DEFAULTS_DELAY`, for jobs created after that.
contract LilypadOnChainJobCreator is
    ILilypadJobManager,
    ILilypadJobRunner,
    AccessControlDefaultAdminRules,
    ReentrancyGuardTransient
{
    using SafeERC20 for IERC20;

    uint256 public constant MAX_MODULE_LENGTH = 256;
    uint256 public constant MAX_INPUTS = 64;
    uint256 public constant MAX_INPUTS_BYTES = 64 * 1024;
    uint256 public constant MAX_ATTEMPTS = 3;
    uint256 public constant MIN_CALLBACK_GAS = 50_000;
    uint256 public constant MAX_CALLBACK_GAS = 2_000_000;
    uint256 public constant MIN_TIMEOUT = 60;
    uint256 public constant MAX_TIMEOUT = 30 days;
    uint256 public constant DEFAULTS_DELAY = 2 days;
    uint256 private constant BPS = 10_000;

    IERC20 private immutable _token;
    ILilypadController private immutable _controller;
    ILilypadStorage private immutable _store;
    ILilypadPayments private immutable _payments;

    JobOptions private _defaults;
    JobOptions private _pendingDefaults;
    uint256 private _pendingDefaultsAt; // 0: none proposed
    uint256 private _nextJobId = 1;

    mapping(uint256 id => Job) private _jobs;
    mapping(address payee => mapping(address caller => uint256)) private _callerAllowance;

    constructor(address admin, IERC20 token_, ILilypadController controller_, JobOptions memory defaults_)
        AccessControlDefaultAdminRules(uint48(DEFAULTS_DELAY), admin)
    {
        _token = token_;
        _controller = controller_;
        _store = ILilypadStorage(controller_.getStorageAddress());
        _payments = ILilypadPayments(controller_.getPaymentsAddress());
        _checkOptions(defaults_);
        _defaults = defaults_;
        emit DefaultsChanged(defaults_);
        // Payments only pulls what the controller escrows for a call this contract makes.
        token_.forceApprove(address(_payments), type(uint256).max);
    }

    // ------------------------------------------------------------ discovery

    function getTokenAddress() external view returns (address) {
        return address(_token);
    }

    /// @notice The deposit plain `runJob` takes: the default `maxPayment`.
    function getRequiredDeposit() external view returns (uint256) {
        return _defaults.maxPayment;
    }

    function getControllerAddress() external view returns (address) {
        return address(_controller);
    }

    function getDefaults() external view returns (JobOptions memory) {
        return _defaults;
    }

    function getPendingDefaults() external view returns (JobOptions memory options, uint256 applicableAt) {
        return (_pendingDefaults, _pendingDefaultsAt);
    }

    function getJob(uint256 id) external view returns (Job memory) {
        return _jobs[id];
    }

    function getCallerAllowance(address payee, address caller) external view returns (uint256) {
        return _callerAllowance[payee][caller];
    }

    /// @notice The nonce a deal for job `id` must carry at its `attempt` (0-based).
    function dealNonce(uint256 id, uint256 attempt) public view returns (bytes32) {
        return keccak256(abi.encode(address(this), id, attempt));
    }

    // ------------------------------------------------------------ governance (delayed)

    /// @notice Propose new defaults for plain `runJob`; they apply to jobs created after
    /// `applyDefaults`, which nobody can call before `DEFAULTS_DELAY` has passed.
    function proposeDefaults(JobOptions calldata options) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkOptions(options);
        _pendingDefaults = options;
        _pendingDefaultsAt = block.timestamp + DEFAULTS_DELAY;
        emit DefaultsProposed(options, block.timestamp + DEFAULTS_DELAY);
    }

    function applyDefaults() external {
        uint256 at = _pendingDefaultsAt;
        if (at == 0 || block.timestamp < at) revert DefaultsNotReady(at);
        _defaults = _pendingDefaults;
        delete _pendingDefaultsAt;
        emit DefaultsChanged(_pendingDefaults);
    }

    // ------------------------------------------------------------ clients

    /// @notice Let `caller` (a client contract) start jobs paid by you, up to `amount` of
    /// deposits in total (type(uint256).max: no limit).
    function setCallerAllowance(address caller, uint256 amount) external {
        _callerAllowance[msg.sender][caller] = amount;
        emit CallerAllowanceSet(msg.sender, caller, amount);
    }

    /// @notice Lilypad's call: run `module` with `inputs` ("Key=Value"), paid by `payee`, with
    /// the default options (`getDefaults()`).
    function runJob(string calldata module, string[] calldata inputs, address payee)
        external
        nonReentrant
        returns (uint256)
    {
        return _runJob(module, inputs, payee, _defaults);
    }

    /// @notice `runJob` with the client's own bounds: at most `maxPayment` in all, a relayer
    /// fee, a check chance, a target provider, a timeout and a callback gas limit.
    function runJobWithOptions(
        string calldata module,
        string[] calldata inputs,
        address payee,
        JobOptions calldata options
    ) external nonReentrant returns (uint256) {
        _checkOptions(options);
        return _runJob(module, inputs, payee, options);
    }

    /// @notice The payee or the client ends a job that has no live deal: everything it holds
    /// goes back to the payee.
    function cancelJob(uint256 id, JobOptions calldata options) external nonReentrant {
        Job storage job = _open(id, options);
        if (msg.sender != job.payee && msg.sender != job.caller) revert NotJobParty(msg.sender);
        if (job.dealId != bytes32(0)) revert DealLive(id, job.dealId);
        _fail(id, job, options, "job cancelled");
    }

    /// @notice Anyone ends a job past its timeout that has no live deal (a live deal ends on
    /// the controller, by its own timeouts; then `complete` ends the job).
    function timeoutJob(uint256 id, JobOptions calldata options) external nonReentrant {
        Job storage job = _open(id, options);
        if (job.dealId != bytes32(0)) revert DealLive(id, job.dealId);
        uint256 deadline = uint256(job.createdAt) + options.timeout;
        if (block.timestamp < deadline) revert JobNotExpired(id, deadline);
        _fail(id, job, options, "job timed out");
    }

    // ------------------------------------------------------------ relaying (anyone)

    /// @notice Agree, as the job creator, to `deal` for job `id`: the deal must carry the job's
    /// next nonce, name this contract as its job creator (and the job's target as its provider,
    /// if any), and cost at most what the job can pay. Its escrow comes from the job's deposit.
    function agree(uint256 id, JobOptions calldata options, Deal calldata deal) external nonReentrant {
        Job storage job = _open(id, options);
        if (job.dealId != bytes32(0)) revert DealLive(id, job.dealId);
        uint256 deadline = uint256(job.createdAt) + options.timeout;
        if (block.timestamp >= deadline) revert JobExpired(id, deadline);
        if (deal.nonce != dealNonce(id, job.attempts)) revert DealNotBound(id, deal.nonce);
        if (deal.members.jobCreator != address(this)) revert DealNotBound(id, deal.nonce);
        if (options.target != address(0) && deal.members.resourceProvider != options.target) {
            revert NotTargetProvider(deal.members.resourceProvider);
        }
        uint256 escrow = uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral;
        uint256 most = escrow + (options.checkBps > 0 ? deal.pricing.mediationFee : 0) + options.relayerFee;
        if (most > job.held) revert DealTooExpensive(id, most, job.held);
        bytes32 dealId = keccak256(abi.encode(deal)); // the controller's getDealId, without the call
        job.dealId = dealId;
        job.relayer = msg.sender;
        job.spent = uint96(escrow);
        emit JobDealAgreed(id, dealId, msg.sender, job.attempts);
        _controller.agree(deal);
    }

    /// @notice Judge the result of job `id`'s deal: sent to mediation with the job's check
    /// chance (drawn from the hash of the block that included the result; a forgotten hash
    /// counts as a check), accepted otherwise. A result settled at once completes the job.
    function judge(uint256 id, JobOptions calldata options, Deal calldata deal) external nonReentrant {
        Job storage job = _open(id, options);
        bytes32 dealId = _liveDeal(id, job, deal);
        Agreement memory a = _store.getAgreement(dealId);
        if (a.state != AgreementState.ResultsSubmitted) revert DealNotJudgeable(dealId, a.state);
        if (_checks(id, options.checkBps, a.resultsBlock)) {
            job.spent += deal.pricing.mediationFee;
            emit JobResultChecked(id, dealId);
            _controller.checkResult(deal);
            return;
        }
        _controller.acceptResult(deal);
        ILilypadPayments.Escrow memory e = _payments.getEscrow(dealId);
        if (e.settled) _complete(id, job, options, dealId, e.jobCreator); // not audited: settled at once
    }

    /// @notice End job `id`'s deal once the controller has settled it: a paid result is
    /// delivered and the change returned; a failed deal frees the job for another attempt, or
    /// ends it with a full refund.
    function complete(uint256 id, JobOptions calldata options) external nonReentrant {
        Job storage job = _open(id, options);
        bytes32 dealId = job.dealId;
        if (dealId == bytes32(0)) revert NoLiveDeal(id);
        ILilypadPayments.Escrow memory e = _payments.getEscrow(dealId);
        if (!e.settled) revert DealNotSettled(dealId);
        _complete(id, job, options, dealId, e.jobCreator);
    }

    /// @notice Kept for ABI compatibility with Lilypad's job manager: results are no longer
    /// delivered by a role; `judge` and `complete` deliver the deal's result from the chain.
    function submitResults(uint256, string calldata, string calldata) external pure {
        revert ResultsComeFromTheChain();
    }

    // ------------------------------------------------------------ internals

    function _runJob(string calldata module, string[] calldata inputs, address payee, JobOptions memory options)
        private
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
        uint96 deposit = options.maxPayment;
        if (payee != msg.sender) {
            uint256 allowed = _callerAllowance[payee][msg.sender];
            if (allowed < deposit || allowed == 0) revert CallerNotAuthorised(payee, msg.sender);
            if (allowed != type(uint256).max) _callerAllowance[payee][msg.sender] = allowed - deposit;
        }
        uint256 allowance = _token.allowance(payee, address(this));
        if (allowance < deposit) revert InsufficientAllowance(payee, allowance, deposit);

        id = _nextJobId++;
        Job storage job = _jobs[id];
        job.caller = msg.sender;
        job.state = JobState.Open;
        job.createdAt = uint40(block.timestamp);
        job.payee = payee;
        job.held = deposit;
        job.optionsHash = keccak256(abi.encode(options));
        emit JobAdded(id, msg.sender, payee, module, inputs);
        emit JobTerms(id, module, inputs, options);
        if (deposit > 0) _token.safeTransferFrom(payee, address(this), deposit);
    }

    /// @dev `returned`: what the deal's settlement paid back (LilypadPayments records it).
    function _complete(uint256 id, Job storage job, JobOptions calldata options, bytes32 dealId, uint256 returned)
        private
    {
        uint256 held = uint256(job.held) - job.spent + returned;
        AgreementState state = _store.getAgreement(dealId).state;
        bool paid = state == AgreementState.ResultsAccepted || state == AgreementState.TimeoutJudgeResults
            || state == AgreementState.MediationAccepted || state == AgreementState.MediationNonDeterministic;
        job.dealId = bytes32(0);
        job.spent = 0;
        if (!paid) {
            job.held = uint96(held);
            job.attempts += 1;
            emit JobDealFailed(id, dealId, state);
            if (job.attempts >= MAX_ATTEMPTS || block.timestamp >= uint256(job.createdAt) + options.timeout) {
                _fail(id, job, options, "no deal delivered a result");
            }
            return;
        }
        // Paid: the relayer's fee, the change back to the payee, then the client's callback.
        uint256 fee = options.relayerFee <= held ? options.relayerFee : held;
        address relayer = job.relayer;
        address payee = job.payee;
        job.state = JobState.Completed;
        job.held = 0;
        if (fee > 0) _token.safeTransfer(relayer, fee);
        if (held > fee) _token.safeTransfer(payee, held - fee);
        emit JobSettled(id, payee, held - fee, relayer, fee);
        _deliver(id, job.caller, options.callbackGasLimit, dealId);
    }

    /// @dev The client's `submitResults` with the deal's id and its result's CID, both read from
    /// the chain. A reverting callback is the client's affair: the job stays paid.
    function _deliver(uint256 id, address caller, uint256 gasLimit, bytes32 dealId) private {
        string memory dealText = _hexText(dealId);
        string memory cid = _cidText(_store.getResult(dealId).dataCid);
        bool ok = _boundedCall(caller, gasLimit, abi.encodeCall(ILilypadJobClient.submitResults, (id, dealText, cid)));
        emit JobCompleted(id, dealText, cid, ok);
    }

    function _fail(uint256 id, Job storage job, JobOptions calldata options, string memory reason) private {
        uint256 refund = job.held;
        address payee = job.payee;
        address caller = job.caller;
        job.state = JobState.Failed;
        job.held = 0;
        if (refund > 0) _token.safeTransfer(payee, refund);
        bool notified;
        if (ERC165Checker.supportsInterface(caller, type(ILilypadJobFailureClient).interfaceId)) {
            notified = _boundedCall(
                caller, options.callbackGasLimit, abi.encodeCall(ILilypadJobFailureClient.jobFailed, (id, reason))
            );
        }
        emit JobFailed(id, reason, refund, notified);
    }

    function _open(uint256 id, JobOptions calldata options) private view returns (Job storage job) {
        job = _jobs[id];
        if (job.state != JobState.Open) revert WrongJobState(id, job.state);
        if (keccak256(abi.encode(options)) != job.optionsHash) revert WrongOptions(id);
    }

    function _liveDeal(uint256 id, Job storage job, Deal calldata deal) private view returns (bytes32 dealId) {
        dealId = job.dealId;
        if (dealId == bytes32(0)) revert NoLiveDeal(id);
        if (keccak256(abi.encode(deal)) != dealId) revert DealNotBound(id, deal.nonce);
    }

    function _checks(uint256 id, uint256 checkBps, uint256 resultsBlock) private view returns (bool) {
        if (checkBps == 0) return false;
        if (checkBps >= BPS) return true;
        if (block.number <= resultsBlock) revert CheckDrawNotReady(id, resultsBlock);
        bytes32 h = blockhash(resultsBlock);
        return h == bytes32(0) || uint256(keccak256(abi.encode(h, id, "check"))) % BPS < checkBps;
    }

    function _checkOptions(JobOptions memory o) private pure {
        if (o.callbackGasLimit < MIN_CALLBACK_GAS || o.callbackGasLimit > MAX_CALLBACK_GAS) {
            revert InvalidOptions("callback gas limit must be 50,000 to 2,000,000");
        }
        if (o.timeout < MIN_TIMEOUT || o.timeout > MAX_TIMEOUT) revert InvalidOptions("timeout must be 60 s to 30 days");
        if (o.checkBps > BPS) revert InvalidOptions("check chance above 100 %");
        if (o.relayerFee > o.maxPayment) revert InvalidOptions("relayer fee above the maximum payment");
    }

    /// @dev Call with at most `limit` gas and without copying return data, so a client can
    /// neither take all the gas nor bomb us with output. The caller must supply enough gas for
    /// the callee to really get the limit (else the whole transaction reverts, never the
    /// callback alone).
    function _boundedCall(address target, uint256 limit, bytes memory data) private returns (bool ok) {
        if (gasleft() < limit + limit / 63 + 10_000) {
            revert NotEnoughGasForCallback(gasleft(), limit + limit / 63 + 10_000);
        }
        assembly ("memory-safe") {
            ok := call(limit, target, 0, add(data, 0x20), mload(data), 0, 0)
        }
    }

    /// @dev The CIDv1 text (multibase "b": base32, RFC 4648 lower case, unpadded) of a result
    /// digest: the 36 bytes 0x01 0x70 0x12 0x20 (version 1, dag-pb, sha2-256, 32 bytes) then the
    /// digest, 288 bits read 5 at a time from the top (the last group padded with 2 zero bits):
    /// "b" and 58 characters, "bafybei...". Written byte by byte without bounds checks (it
    /// was a tenth of the job's judge before).
    function _cidText(bytes32 digest) private pure returns (string memory text) {
        bytes32 alphabet = "abcdefghijklmnopqrstuvwxyz234567";
        text = new string(59);
        assembly ("memory-safe") {
            let out := add(text, 32)
            let hi := 0x01701220 // the 32-bit prefix
            let lo := digest
            mstore8(out, 0x62) // "b"
            for { let k := 0 } lt(k, 6) { k := add(k, 1) } { // prefix bits 0..29
                mstore8(add(out, add(1, k)), byte(and(shr(sub(27, mul(k, 5)), hi), 31), alphabet))
            }
            // prefix bits 30..31 and the digest's top 3 bits
            mstore8(add(out, 7), byte(or(shl(3, and(hi, 3)), shr(253, lo)), alphabet))
            for { let k := 0 } lt(k, 50) { k := add(k, 1) } { // digest bits 3..252
                mstore8(add(out, add(8, k)), byte(and(shr(sub(248, mul(k, 5)), lo), 31), alphabet))
            }
            mstore8(add(out, 58), byte(shl(2, and(lo, 7)), alphabet)) // digest bits 253..255, 2 zero bits
        }
    }

    /// @dev "0x" and the 64 lower-case hex digits of a deal id (as OpenZeppelin's
    /// Strings.toHexString(value, 32) writes it), without its bounds checks.
    function _hexText(bytes32 value) private pure returns (string memory text) {
        bytes32 digits = "0123456789abcdef";
        text = new string(66);
        assembly ("memory-safe") {
            let out := add(text, 32)
            mstore8(out, 0x30) // "0"
            mstore8(add(out, 1), 0x78) // "x"
            for { let k := 0 } lt(k, 64) { k := add(k, 1) } {
                mstore8(add(out, add(2, k)), byte(and(shr(sub(252, mul(k, 4)), value), 15), digits))
            }
        }
    }
}
