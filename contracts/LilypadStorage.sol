// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILilypadStorage} from "./interfaces/ILilypadStorage.sol";
import {Agreement, AgreementState, Result, Reputation, ReputationField} from "./interfaces/LilypadTypes.sol";
import {OnlyController} from "./OnlyController.sol";

/// @title LilypadStorage: agreements, results and on-chain reputation.
/// @notice Deal terms are not stored: the deal id is their hash (see LilypadTypes).
/// Each agreement is one packed slot; each result one slot; each provider's
/// reputation two slots (counters, values). Only the controller that deployed it may write.
contract LilypadStorage is ILilypadStorage, OnlyController {
    mapping(bytes32 dealId => Agreement) private _agreements;
    mapping(bytes32 dealId => bytes32 dataCid) private _results;
    mapping(address resourceProvider => Reputation) private _reputation;

    function getAgreement(bytes32 dealId) external view returns (Agreement memory) {
        return _agreements[dealId];
    }

    function getResult(bytes32 dealId) external view returns (Result memory result) {
        bytes32 dataCid = _results[dealId];
        if (dataCid == bytes32(0)) return result;
        result.resultId = keccak256(abi.encode(dealId, dataCid));
        result.dataCid = dataCid;
        result.instructionCount = _agreements[dealId].instructionCount;
    }

    function getReputation(address resourceProvider) external view returns (Reputation memory) {
        return _reputation[resourceProvider];
    }

    function setAgreement(
        bytes32 dealId,
        Agreement calldata agreement,
        address resourceProvider,
        ReputationField field,
        uint256 paidJobCost
    ) external onlyController {
        _setAgreement(dealId, agreement);
        if (field != ReputationField.None) _record(resourceProvider, field);
        if (paidJobCost != 0) {
            // A job cost is at most the deal's uint96 payment collateral (checked at the first agree).
            Reputation storage r = _reputation[resourceProvider];
            r.valuePaid += uint128(paidJobCost);
            if (agreement.state == AgreementState.MediationAccepted) r.valueVerified += uint128(paidJobCost);
        }
    }

    function setResult(bytes32 dealId, bytes32 dataCid, Agreement calldata agreement, address resourceProvider)
        external
        onlyController
    {
        _results[dealId] = dataCid;
        emit ResultStored(dealId, dataCid, agreement.instructionCount);
        _setAgreement(dealId, agreement);
        _record(resourceProvider, ReputationField.ResultsSubmitted);
    }

    function _setAgreement(bytes32 dealId, Agreement calldata agreement) private {
        AgreementState previous = _agreements[dealId].state;
        _agreements[dealId] = agreement;
        if (previous != agreement.state) emit AgreementStateChanged(dealId, agreement.state);
    }

    function _record(address resourceProvider, ReputationField field) private {
        Reputation storage r = _reputation[resourceProvider];
        if (field == ReputationField.DealsAgreed) r.dealsAgreed++;
        else if (field == ReputationField.ResultsSubmitted) r.resultsSubmitted++;
        else if (field == ReputationField.ResultsAccepted) r.resultsAccepted++;
        else if (field == ReputationField.ResultsChecked) r.resultsChecked++;
        else if (field == ReputationField.MediationsPassed) r.mediationsPassed++;
        else if (field == ReputationField.MediationsFailed) r.mediationsFailed++;
        else if (field == ReputationField.SubmitTimeouts) r.submitTimeouts++;
        else r.otherTimeouts++;
    }
}
