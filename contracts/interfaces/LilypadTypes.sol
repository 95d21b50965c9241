// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Types shared by every lilypad contract.
/// @notice A deal's terms live only in calldata: a deal's id is the keccak256 of
/// `abi.encode(deal)`, so the id *is* the commitment to the terms. Terms cannot
/// change after creation (a changed term is a different id), both parties
/// necessarily agree to identical terms, and nobody can squat someone else's id.

/// @dev Order matters: it is part of the on-chain ABI.
enum AgreementState {
    None, // never seen
    DealNegotiating, // one party agreed
    DealAgreed, // both agreed, collateral escrowed
    ResultsSubmitted,
    ResultsAccepted, // terminal
    ResultsChecked, // sent to mediation
    MediationAccepted, // terminal
    MediationRejected, // terminal
    TimeoutAgree, // terminal
    TimeoutSubmitResults, // terminal
    TimeoutJudgeResults, // terminal
    TimeoutMediateResults, // terminal
    MediationNonDeterministic // terminal: the mediator's own runs disagreed (the job creator's fault)
}

struct DealMembers {
    address solver;
    address jobCreator;
    address resourceProvider;
    address[] mediators; // trusted by both parties; one is drawn at random when a result is checked
}

/// @dev Each window is in seconds. The resource provider posts
/// `submitResultsCollateral` (slashed to the job creator if no result arrives
/// in time); the job creator posts `judgeResultsCollateral` (slashed to the
/// provider if it neither accepts nor checks in time).
struct DealTimeouts {
    uint32 agree;
    uint32 submitResults;
    uint32 judgeResults;
    uint32 mediateResults;
    uint96 submitResultsCollateral;
    uint96 judgeResultsCollateral;
}

/// @dev jobCost = instructionPrice * instructionCount, at most paymentCollateral.
/// resultsCollateral = resultsCollateralMultiple * jobCost.
struct DealPricing {
    uint96 instructionPrice;
    uint96 paymentCollateral;
    uint16 resultsCollateralMultiple;
    uint96 mediationFee;
}

/// @dev The protocol terms a deal is made under (see docs/protocol.md).
/// `consortiumSize` (k) is how many mediators judge a checked result: 1 (one
/// mediator gives its verdict directly, no commit-reveal) or an odd 3..7
/// (each commits a hash of its verdict, then reveals; the majority settles).
/// `settingsVersion` names the protocol settings (tax, audit rate, stakes,
/// slashing) the deal is made under; the first `agree` requires it to be the
/// current version, and the deal keeps it for life, so a settings change never
/// alters an open deal.
struct DealProtocol {
    uint8 consortiumSize;
    uint32 settingsVersion;
}

struct Deal {
    DealMembers members;
    DealTimeouts timeouts;
    DealPricing pricing;
    bytes32 nonce; // makes otherwise identical terms a different deal
    DealProtocol protocol;
}

/// @dev Protocol settings, one storage slot, versioned: each change by the
/// admin appends a new version; deals name the version they were agreed under.
/// Bounds are in LilypadController (MAX_*).
struct ProtocolSettings {
    uint16 taxBps; // of each paid job cost, taken from the provider's payment
    uint16 treasuryShareBps; // of the tax, to the treasury; the rest to the jackpot
    uint16 auditBps; // chance that an unchecked result is audited (mediated at the jackpot's cost)
    uint16 rewardBps; // of the jackpot, paid out when a mediation rejects a result
    uint96 minMediatorStake; // every listed mediator's stake at the first agree (0: no check)
    uint96 mediatorSlash; // taken from a mediator's stake per offence on a deal (silent, or in the minority)
}

/// @dev A mediator's verdict on a checked result (the values a consortium votes on).
enum Verdict {
    None,
    Accept,
    Reject,
    NonDeterministic
}

/// @dev One storage slot (256 bits). `resultsBlock` is the block that
/// included `addResult`: its hash draws the audit (unknown to the provider
/// when it sends the result).
struct Agreement {
    AgreementState state;
    bool jobCreatorAgreed;
    bool resourceProviderAgreed;
    uint40 createdAt; // first agree
    uint40 agreedAt; // second agree
    uint40 resultsSubmittedAt;
    uint40 mediationRequestedAt; // start of the current mediation round
    uint40 instructionCount;
    uint32 resultsBlock;
}

struct Result {
    bytes32 resultId; // keccak256(dealId, dataCid)
    bytes32 dataCid; // sha2-256 digest of the CIDv1 (dag-pb) of the results directory
    uint64 instructionCount;
}

/// @dev Per resource provider, two storage slots: the counters, then the values.
/// The counters are free to inflate (a provider can deal with itself); the
/// values cost something: valuePaid the protocol tax on it, valueVerified also
/// a mediation fee per deal and a panel drawn from the deal's staked mediators (docs/protocol.md).
struct Reputation {
    uint32 dealsAgreed;
    uint32 resultsSubmitted;
    uint32 resultsAccepted;
    uint32 resultsChecked;
    uint32 mediationsPassed;
    uint32 mediationsFailed;
    uint32 submitTimeouts; // the provider agreed but never delivered
    uint32 otherTimeouts; // agree, judge or mediate timeouts on the provider's deals
    uint128 valuePaid; // job cost of the deals settled paying the provider (what the tax is charged on)
    uint128 valueVerified; // job cost of the deals whose result a mediation panel accepted (check or audit)
}

enum ReputationField {
    None, // no counter to bump
    DealsAgreed,
    ResultsSubmitted,
    ResultsAccepted,
    ResultsChecked,
    MediationsPassed,
    MediationsFailed,
    SubmitTimeouts,
    OtherTimeouts
}
