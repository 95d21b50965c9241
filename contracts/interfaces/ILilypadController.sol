// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Deal, ProtocolSettings, Verdict} from "./LilypadTypes.sol";

/// @title The single entry point of the lilypad protocol.
/// @notice Every function takes the deal's full terms; the deal id is
/// keccak256(abi.encode(deal)). Timeouts may be triggered by anyone once expired.
interface ILilypadController {
    event DealAgreed(bytes32 indexed dealId, address indexed party, bool jobCreatorSide);
    event ResultAdded(bytes32 indexed dealId, bytes32 dataCid, uint64 instructionCount);
    event JobCreatorAddressChanged(address jobCreator);
    event MinMediatorStakeChanged(uint256 minStake);
    event ProtocolSettingsChanged(uint32 indexed version, ProtocolSettings settings);
    event TreasuryAddressChanged(address treasury);
    event TaxExemptionChanged(address indexed jobCreator, bool exempt);
    event DealAudited(bytes32 indexed dealId, uint256 feeFromJackpot);
    event MediatorPenalised(bytes32 indexed dealId, address indexed mediator, uint256 slashed);

    function getDealId(Deal calldata deal) external pure returns (bytes32);
    function getJobCreatorAddress() external view returns (address);
    function getTokenAddress() external view returns (address);
    function getStorageAddress() external view returns (address);
    function getPaymentsAddress() external view returns (address);
    function getMediationAddress() external view returns (address);
    function getMediatorRegistryAddress() external view returns (address);
    function getMinMediatorStake() external view returns (uint256);
    function setMinMediatorStake(uint256 minStake) external;
    function getSettingsVersion() external view returns (uint32);
    function getProtocolSettings(uint32 version) external view returns (ProtocolSettings memory);
    function setProtocolSettings(ProtocolSettings calldata settings) external;
    function getTreasury() external view returns (address);
    function setTreasury(address treasury) external;
    function claimTreasury() external returns (uint256);
    function fundJackpot(uint256 amount) external;
    function isTaxExempt(address jobCreator) external view returns (bool);
    function setTaxExempt(address jobCreator, bool exempt) external;

    function agree(Deal calldata deal) external returns (bytes32 dealId);
    function agreeWithPermit(Deal calldata deal, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        returns (bytes32 dealId);
    function addResult(Deal calldata deal, bytes32 dataCid, uint64 instructionCount) external;
    function acceptResult(Deal calldata deal) external;
    function checkResult(Deal calldata deal) external;
    function checkResultWithPermit(Deal calldata deal, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;
    function assignMediator(Deal calldata deal) external returns (address[] memory);
    function mediationAcceptResult(Deal calldata deal) external;
    function mediationRejectResult(Deal calldata deal) external;
    function mediationNonDeterministic(Deal calldata deal) external;
    function commitVerdict(Deal calldata deal, bytes32 commitment) external;
    function revealVerdict(Deal calldata deal, Verdict verdict, bytes32 resultCid, bytes32 salt) external;
    function timeoutAgree(Deal calldata deal) external;
    function timeoutSubmitResult(Deal calldata deal) external;
    function timeoutJudgeResult(Deal calldata deal) external;
    function timeoutMediateResult(Deal calldata deal) external;
}
