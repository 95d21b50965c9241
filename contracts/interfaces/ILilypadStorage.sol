// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Agreement, AgreementState, Result, Reputation, ReputationField} from "./LilypadTypes.sol";

/// @title The system of record for agreements, results and reputation.
/// @notice Only the controller that deployed it may write; anyone may read.
interface ILilypadStorage {
    event AgreementStateChanged(bytes32 indexed dealId, AgreementState state);
    event ResultStored(bytes32 indexed dealId, bytes32 dataCid, uint64 instructionCount);

    function getAgreement(bytes32 dealId) external view returns (Agreement memory);
    function getResult(bytes32 dealId) external view returns (Result memory);
    function getReputation(address resourceProvider) external view returns (Reputation memory);


    /// @notice Store an agreement, bump one of the provider's reputation counters
    /// and add `paidJobCost` (the job cost of a deal settled paying the provider,
    /// 0 otherwise) to its valuePaid, and to its valueVerified when the agreement
    /// is MediationAccepted.
    function setAgreement(
        bytes32 dealId,
        Agreement calldata agreement,
        address resourceProvider,
        ReputationField field,
        uint256 paidJobCost
    ) external;
    /// @notice Store a result with its agreement (counts a submitted result).
    function setResult(bytes32 dealId, bytes32 dataCid, Agreement calldata agreement, address resourceProvider)
        external;
}
