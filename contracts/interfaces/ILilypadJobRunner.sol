// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AgreementState, Deal} from "./LilypadTypes.sol";

/// @dev A job's terms, fixed when it is created (their hash is stored; every later call
/// passes them back). Amounts in token base units.
struct JobOptions {
    uint96 maxPayment; // taken from the payee at runJob; the job never costs it more, the rest comes back
    uint96 relayerFee; // paid, out of maxPayment, to the relayer that agreed the deal that delivered
    uint32 timeout; // seconds after runJob during which deals may be agreed (a live deal always ends)
    uint32 callbackGasLimit; // gas given to the client's callback
    uint16 checkBps; // chance, in basis points, that the result is sent to mediation (fee out of maxPayment)
    address target; // the only provider that may run it (zero: any)
}

/// @title Smart-contract jobs with options, relayed by anyone (see LilypadOnChainJobCreator).
interface ILilypadJobRunner {
    enum JobState {
        None,
        Open, // waiting for a deal, or following one
        Completed, // the result was delivered (callback called) and the money settled
        Failed // ended without a result; the payee refunded
    }

    /// @dev Four storage slots.
    struct Job {
        address caller; // the client contract that called runJob
        JobState state;
        uint8 attempts; // deals that ended without a result
        uint40 createdAt;
        address payee;
        uint96 held; // this job's tokens here: the deposit, less escrow spent, plus what deals returned
        address relayer; // who agreed the live deal (paid the relayer fee if it delivers)
        uint96 spent; // put into the live deal's escrow
        bytes32 dealId; // the live deal (zero: none)
        bytes32 optionsHash; // keccak256(abi.encode(JobOptions))
    }

    /// @dev The job in full, findable by its id (JobAdded, kept for compatibility, indexes nothing).
    event JobTerms(uint256 indexed id, string module, string[] inputs, JobOptions options);
    event JobDealAgreed(uint256 indexed id, bytes32 indexed dealId, address indexed relayer, uint256 attempt);
    event JobResultChecked(uint256 indexed id, bytes32 indexed dealId);
    event JobDealFailed(uint256 indexed id, bytes32 indexed dealId, AgreementState state);
    event JobCompleted(uint256 indexed id, string dealId, string dataId, bool callbackSucceeded);
    event JobSettled(uint256 indexed id, address indexed payee, uint256 change, address indexed relayer, uint256 fee);
    event JobFailed(uint256 indexed id, string reason, uint256 refunded, bool notified);
    event CallerAllowanceSet(address indexed payee, address indexed caller, uint256 amount);
    event DefaultsProposed(JobOptions options, uint256 applicableAt);
    event DefaultsChanged(JobOptions options);

    error InvalidJob(string reason);
    error InvalidOptions(string reason);
    error WrongOptions(uint256 id);
    error CallerNotAuthorised(address payee, address caller);
    error InsufficientAllowance(address payee, uint256 allowance, uint256 required);
    error WrongJobState(uint256 id, JobState actual);
    error NotJobParty(address sender);
    error JobNotExpired(uint256 id, uint256 deadline);
    error JobExpired(uint256 id, uint256 deadline);
    error DealLive(uint256 id, bytes32 dealId);
    error NoLiveDeal(uint256 id);
    error DealNotBound(uint256 id, bytes32 nonce);
    error NotTargetProvider(address provider);
    error DealTooExpensive(uint256 id, uint256 most, uint256 held);
    error DealNotJudgeable(bytes32 dealId, AgreementState state);
    error DealNotSettled(bytes32 dealId);
    error CheckDrawNotReady(uint256 id, uint256 resultsBlock);
    error DefaultsNotReady(uint256 applicableAt);
    error NotEnoughGasForCallback(uint256 available, uint256 required);
    error ResultsComeFromTheChain();

    function runJobWithOptions(
        string calldata module,
        string[] calldata inputs,
        address payee,
        JobOptions calldata options
    ) external returns (uint256);
    function getDefaults() external view returns (JobOptions memory);
    function getJob(uint256 id) external view returns (Job memory);
    function dealNonce(uint256 id, uint256 attempt) external view returns (bytes32);
    function agree(uint256 id, JobOptions calldata options, Deal calldata deal) external;
    function judge(uint256 id, JobOptions calldata options, Deal calldata deal) external;
    function complete(uint256 id, JobOptions calldata options) external;
    function cancelJob(uint256 id, JobOptions calldata options) external;
    function timeoutJob(uint256 id, JobOptions calldata options) external;
}
