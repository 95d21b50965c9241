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

struct Deal {
    DealMembers members;
    DealTimeouts timeouts;
    DealPricing pricing;
    bytes32 nonce; // makes otherwise identical terms a different deal
}

/// @dev One storage slot (248 bits).
struct Agreement {
    AgreementState state;
    bool jobCreatorAgreed;
    bool resourceProviderAgreed;
    uint40 createdAt; // first agree
    uint40 agreedAt; // second agree
    uint40 resultsSubmittedAt;
    uint40 mediationRequestedAt;
    uint64 instructionCount;
}

struct Result {
    bytes32 resultId; // keccak256(dealId, dataCid)
    bytes32 dataCid; // sha2-256 digest of the CIDv1 (dag-pb) of the results directory
    uint64 instructionCount;
}

/// @dev Per resource provider, one storage slot.
struct Reputation {
    uint32 dealsAgreed;
    uint32 resultsSubmitted;
    uint32 resultsAccepted;
    uint32 resultsChecked;
    uint32 mediationsPassed;
    uint32 mediationsFailed;
    uint32 submitTimeouts; // the provider agreed but never delivered
    uint32 otherTimeouts; // agree, judge or mediate timeouts on the provider's deals
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
