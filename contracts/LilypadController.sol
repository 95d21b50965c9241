// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ILilypadController} from "./interfaces/ILilypadController.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {LilypadStorage} from "./LilypadStorage.sol";
import {LilypadPayments} from "./LilypadPayments.sol";
import {LilypadMediation} from "./LilypadMediation.sol";
import {LilypadMediatorRegistry} from "./LilypadMediatorRegistry.sol";
import {Agreement, AgreementState, Deal, ReputationField} from "./interfaces/LilypadTypes.sol";

/// @title LilypadController: the single entry point of the protocol.
/// @notice Money rules (all amounts from the deal's terms):
/// - agree: the job creator escrows paymentCollateral + judgeResultsCollateral;
///   the resource provider escrows submitResultsCollateral.
/// - addResult: jobCost = instructionPrice * instructionCount (<= paymentCollateral);
///   the provider's escrow becomes resultsCollateral = multiple * jobCost.
/// - acceptResult / mediationAcceptResult: provider gets jobCost + resultsCollateral;
///   job creator gets the rest of its escrow back; the mediator gets the fee.
/// - mediationRejectResult: job creator gets its escrow back plus the provider's
///   resultsCollateral; the mediator gets the fee.
/// - mediationNonDeterministic (the mediator's own runs of the job disagreed, so
///   the job itself is at fault, not the provider): provider gets jobCost +
///   resultsCollateral + the job creator's judgeResultsCollateral; job creator
///   gets paymentCollateral - jobCost back; the mediator gets the fee.
/// - timeoutAgree: whoever agreed gets its escrow back.
/// - timeoutSubmitResult: the provider's submit collateral goes to the job creator.
/// - timeoutJudgeResult: as accept, plus the job creator's judging collateral to the provider.
/// - timeoutMediateResult: everybody gets back what they escrowed (fee included).
/// A window is open while `now < start + window`; its timeout may be triggered
/// by anyone from `start + window` on.
/// Deposits are pulled by LilypadPayments: approve it beforehand, or send an
/// EIP-2612 permit for it with `agreeWithPermit` / `checkResultWithPermit`
/// (one transaction instead of approve + agree, for the exact amount).
/// Mediators: a deal lists 1 to 16 distinct mediators. While the admin's
/// `minMediatorStake` is above zero (0, the default, switches the check off),
/// the first `agree` of a deal also requires every listed mediator to be
/// registered in LilypadMediatorRegistry with at least that stake and not
/// unbonding; the check is made once, when the deal is created, so a later
/// change of the minimum or an unbond request never alters an open deal.
contract LilypadController is ILilypadController, AccessControl, ReentrancyGuardTransient {
    uint256 public constant MAX_MEDIATORS = 16;
    uint256 public constant MAX_TIMEOUT = 30 days;
    uint256 public constant MAX_RESULTS_COLLATERAL_MULTIPLE = 100;
    /// @notice Upper bound of `minMediatorStake`: one million LP (18 decimals).
    uint256 public constant MAX_MIN_MEDIATOR_STAKE = 1_000_000 ether;

    address private immutable _token;
    LilypadStorage private immutable _store;
    LilypadPayments private immutable _payments;
    LilypadMediation private immutable _mediation;
    LilypadMediatorRegistry private immutable _registry;
    address private _jobCreator;
    uint96 private _minMediatorStake; // shares _jobCreator's slot

    error InvalidDeal(string reason);
    error NotADealParty(address caller);
    error NotJobCreator(address caller);
    error NotResourceProvider(address caller);
    error NotChosenMediator(address caller, address chosen);
    error AlreadyAgreed(bytes32 dealId, address party);
    error WrongState(bytes32 dealId, AgreementState actual, AgreementState expected);
    error WindowClosed(bytes32 dealId, uint256 deadline);
    error TimeoutNotExpired(bytes32 dealId, uint256 deadline);
    error EmptyResult(bytes32 dealId);
    error JobCostTooHigh(bytes32 dealId, uint256 jobCost, uint256 paymentCollateral);
    error MinMediatorStakeTooHigh(uint256 minStake, uint256 max);

    /// @notice Creates storage, payments, mediation and the mediator registry bound to this controller
    /// for ever (see OnlyController): nobody can re-point them later.
    constructor(address admin, address token_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _token = token_;
        _store = new LilypadStorage();
        _payments = new LilypadPayments(IERC20(token_));
        _mediation = new LilypadMediation();
        _registry = new LilypadMediatorRegistry(IERC20(token_));
    }

    // ------------------------------------------------------------ discovery

    function getDealId(Deal calldata deal) public pure returns (bytes32) {
        return keccak256(abi.encode(deal));
    }

    function getJobCreatorAddress() external view returns (address) {
        return _jobCreator;
    }

    function getTokenAddress() external view returns (address) {
        return _token;
    }

    function getStorageAddress() external view returns (address) {
        return address(_store);
    }

    function getPaymentsAddress() external view returns (address) {
        return address(_payments);
    }

    function getMediationAddress() external view returns (address) {
        return address(_mediation);
    }

    function getMediatorRegistryAddress() external view returns (address) {
        return address(_registry);
    }

    /// @notice The stake (LP base units) every mediator a new deal names must
    /// have in the registry; 0: any address may be named.
    function getMinMediatorStake() external view returns (uint256) {
        return _minMediatorStake;
    }

    function setMinMediatorStake(uint256 minStake) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (minStake > MAX_MIN_MEDIATOR_STAKE) revert MinMediatorStakeTooHigh(minStake, MAX_MIN_MEDIATOR_STAKE);
        _minMediatorStake = uint96(minStake);
        emit MinMediatorStakeChanged(minStake);
    }

    function setJobCreatorAddress(address jobCreator) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _jobCreator = jobCreator;
        emit JobCreatorAddressChanged(jobCreator);
    }

    // ------------------------------------------------------------ agreement

    function agree(Deal calldata deal) external nonReentrant returns (bytes32 dealId) {
        return _agree(deal);
    }

    /// @notice `agree`, first applying the caller's EIP-2612 permit that lets
    /// LilypadPayments take `value` of its tokens. A permit that fails (say,
    /// someone front-ran it onto the token) is ignored: the deposit is then
    /// taken from whatever allowance exists, or the call reverts for lack of it.
    function agreeWithPermit(Deal calldata deal, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
        returns (bytes32 dealId)
    {
        _permit(value, deadline, v, r, s);
        return _agree(deal);
    }

    function _agree(Deal calldata deal) private returns (bytes32 dealId) {
        dealId = getDealId(deal);
        bool isJobCreator = msg.sender == deal.members.jobCreator;
        if (!isJobCreator && msg.sender != deal.members.resourceProvider) revert NotADealParty(msg.sender);

        Agreement memory a = _store.getAgreement(dealId);
        if (a.state == AgreementState.None) {
            _validate(deal);
            a.state = AgreementState.DealNegotiating;
            a.createdAt = uint40(block.timestamp);
        } else {
            _expect(dealId, a, AgreementState.DealNegotiating);
            _before(dealId, a.createdAt, deal.timeouts.agree);
        }

        uint256 amount;
        if (isJobCreator) {
            if (a.jobCreatorAgreed) revert AlreadyAgreed(dealId, msg.sender);
            a.jobCreatorAgreed = true;
            amount = uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral;
        } else {
            if (a.resourceProviderAgreed) revert AlreadyAgreed(dealId, msg.sender);
            a.resourceProviderAgreed = true;
            amount = deal.timeouts.submitResultsCollateral;
        }
        bool both = a.jobCreatorAgreed && a.resourceProviderAgreed;
        if (both) {
            a.state = AgreementState.DealAgreed;
            a.agreedAt = uint40(block.timestamp);
        }
        _store.setAgreement(
            dealId, a, deal.members.resourceProvider, both ? ReputationField.DealsAgreed : ReputationField.None
        );
        emit DealAgreed(dealId, msg.sender, isJobCreator);

        if (isJobCreator) _payments.escrowJobCreator(dealId, msg.sender, amount);
        else _payments.escrowResourceProvider(dealId, msg.sender, amount);
    }

    // ------------------------------------------------------------ results

    function addResult(Deal calldata deal, bytes32 dataCid, uint64 instructionCount) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        if (msg.sender != deal.members.resourceProvider) revert NotResourceProvider(msg.sender);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.DealAgreed);
        _before(dealId, a.agreedAt, deal.timeouts.submitResults);
        if (dataCid == bytes32(0) || instructionCount == 0) revert EmptyResult(dealId);
        uint256 jobCost = uint256(deal.pricing.instructionPrice) * instructionCount;
        if (jobCost > deal.pricing.paymentCollateral) {
            revert JobCostTooHigh(dealId, jobCost, deal.pricing.paymentCollateral);
        }

        a.state = AgreementState.ResultsSubmitted;
        a.resultsSubmittedAt = uint40(block.timestamp);
        a.instructionCount = instructionCount;
        _store.setResult(dealId, dataCid, a, msg.sender);
        emit ResultAdded(dealId, dataCid, instructionCount);

        _payments.setResourceProviderEscrow(dealId, msg.sender, jobCost * deal.pricing.resultsCollateralMultiple);
    }

    function acceptResult(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        if (msg.sender != deal.members.jobCreator) revert NotJobCreator(msg.sender);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsSubmitted);
        _before(dealId, a.resultsSubmittedAt, deal.timeouts.judgeResults);
        _finish(dealId, deal, a, AgreementState.ResultsAccepted, ReputationField.ResultsAccepted);
        (uint256 jobCost, uint256 resultsCollateral) = _costs(deal, a);
        _settle(
            dealId,
            deal,
            deal.pricing.paymentCollateral - jobCost + deal.timeouts.judgeResultsCollateral,
            jobCost + resultsCollateral,
            address(0),
            0
        );
    }

    // ------------------------------------------------------------ mediation

    function checkResult(Deal calldata deal) external nonReentrant {
        _checkResult(deal);
    }

    /// @notice `checkResult` with an EIP-2612 permit for the mediation fee (see `agreeWithPermit`).
    function checkResultWithPermit(Deal calldata deal, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        nonReentrant
    {
        _permit(value, deadline, v, r, s);
        _checkResult(deal);
    }

    function _checkResult(Deal calldata deal) private {
        bytes32 dealId = getDealId(deal);
        if (msg.sender != deal.members.jobCreator) revert NotJobCreator(msg.sender);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsSubmitted);
        _before(dealId, a.resultsSubmittedAt, deal.timeouts.judgeResults);
        a.state = AgreementState.ResultsChecked;
        a.mediationRequestedAt = uint40(block.timestamp);
        _store.setAgreement(dealId, a, deal.members.resourceProvider, ReputationField.ResultsChecked);
        _mediation.request(dealId);
        _payments.escrowJobCreator(dealId, msg.sender, deal.pricing.mediationFee);
    }

    /// @notice Fix the drawn mediator on-chain. Anyone may call it once the block
    /// that included `checkResult` is sealed; the mediator's verdict does it too.
    function assignMediator(Deal calldata deal) external nonReentrant returns (address) {
        bytes32 dealId = getDealId(deal);
        _expect(dealId, _store.getAgreement(dealId), AgreementState.ResultsChecked);
        return _mediation.assign(dealId, deal.members.mediators);
    }

    function mediationAcceptResult(Deal calldata deal) external nonReentrant {
        (bytes32 dealId, Agreement memory a, address mediator) = _mediationVerdict(deal);
        _finish(dealId, deal, a, AgreementState.MediationAccepted, ReputationField.MediationsPassed);
        (uint256 jobCost, uint256 resultsCollateral) = _costs(deal, a);
        _settle(
            dealId,
            deal,
            deal.pricing.paymentCollateral - jobCost + deal.timeouts.judgeResultsCollateral,
            jobCost + resultsCollateral,
            mediator,
            deal.pricing.mediationFee
        );
    }

    function mediationRejectResult(Deal calldata deal) external nonReentrant {
        (bytes32 dealId, Agreement memory a, address mediator) = _mediationVerdict(deal);
        _finish(dealId, deal, a, AgreementState.MediationRejected, ReputationField.MediationsFailed);
        (, uint256 resultsCollateral) = _costs(deal, a);
        _settle(
            dealId,
            deal,
            uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral + resultsCollateral,
            0,
            mediator,
            deal.pricing.mediationFee
        );
    }

    /// @notice The mediator's own runs of the job disagreed with each other: the
    /// job is non-deterministic, which is the job creator's doing, so the
    /// provider is paid as if accepted plus the job creator's judging collateral,
    /// and the job creator pays the job cost and the mediation fee.
    function mediationNonDeterministic(Deal calldata deal) external nonReentrant {
        (bytes32 dealId, Agreement memory a, address mediator) = _mediationVerdict(deal);
        _finish(dealId, deal, a, AgreementState.MediationNonDeterministic, ReputationField.MediationsPassed);
        (uint256 jobCost, uint256 resultsCollateral) = _costs(deal, a);
        _settle(
            dealId,
            deal,
            deal.pricing.paymentCollateral - jobCost,
            jobCost + resultsCollateral + deal.timeouts.judgeResultsCollateral,
            mediator,
            deal.pricing.mediationFee
        );
    }

    // ------------------------------------------------------------ timeouts (anyone)

    function timeoutAgree(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.DealNegotiating);
        _expired(dealId, a.createdAt, deal.timeouts.agree);
        _finish(dealId, deal, a, AgreementState.TimeoutAgree, ReputationField.None);
        _settle(
            dealId,
            deal,
            a.jobCreatorAgreed ? uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral : 0,
            a.resourceProviderAgreed ? deal.timeouts.submitResultsCollateral : 0,
            address(0),
            0
        );
    }

    function timeoutSubmitResult(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.DealAgreed);
        _expired(dealId, a.agreedAt, deal.timeouts.submitResults);
        _finish(dealId, deal, a, AgreementState.TimeoutSubmitResults, ReputationField.SubmitTimeouts);
        _settle(
            dealId,
            deal,
            uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral
                + deal.timeouts.submitResultsCollateral,
            0,
            address(0),
            0
        );
    }

    function timeoutJudgeResult(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsSubmitted);
        _expired(dealId, a.resultsSubmittedAt, deal.timeouts.judgeResults);
        _finish(dealId, deal, a, AgreementState.TimeoutJudgeResults, ReputationField.OtherTimeouts);
        (uint256 jobCost, uint256 resultsCollateral) = _costs(deal, a);
        _settle(
            dealId,
            deal,
            deal.pricing.paymentCollateral - jobCost,
            jobCost + resultsCollateral + deal.timeouts.judgeResultsCollateral,
            address(0),
            0
        );
    }

    function timeoutMediateResult(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsChecked);
        _expired(dealId, a.mediationRequestedAt, deal.timeouts.mediateResults);
        _finish(dealId, deal, a, AgreementState.TimeoutMediateResults, ReputationField.OtherTimeouts);
        (, uint256 resultsCollateral) = _costs(deal, a);
        _settle(
            dealId,
            deal,
            uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral
                + deal.pricing.mediationFee,
            resultsCollateral,
            address(0),
            0
        );
    }

    // ------------------------------------------------------------ internals

    function _permit(uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) private {
        // The token is the one this controller was deployed with (trusted); a
        // reverting permit must not block the deal (front-run permits are public).
        try IERC20Permit(_token).permit(msg.sender, address(_payments), value, deadline, v, r, s) {} catch {}
    }

    function _mediationVerdict(Deal calldata deal)
        private
        returns (bytes32 dealId, Agreement memory a, address mediator)
    {
        dealId = getDealId(deal);
        a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsChecked);
        _before(dealId, a.mediationRequestedAt, deal.timeouts.mediateResults);
        mediator = _mediation.assign(dealId, deal.members.mediators);
        if (msg.sender != mediator) revert NotChosenMediator(msg.sender, mediator);
    }

    function _finish(
        bytes32 dealId,
        Deal calldata deal,
        Agreement memory a,
        AgreementState state,
        ReputationField field
    ) private {
        a.state = state;
        _store.setAgreement(dealId, a, deal.members.resourceProvider, field);
    }

    function _settle(
        bytes32 dealId,
        Deal calldata deal,
        uint256 toJobCreator,
        uint256 toResourceProvider,
        address mediator,
        uint256 toMediator
    ) private {
        _payments.settle(
            dealId,
            deal.members.jobCreator,
            toJobCreator,
            deal.members.resourceProvider,
            toResourceProvider,
            mediator,
            toMediator
        );
    }

    function _costs(Deal calldata deal, Agreement memory a)
        private
        pure
        returns (uint256 jobCost, uint256 resultsCollateral)
    {
        jobCost = uint256(deal.pricing.instructionPrice) * a.instructionCount;
        resultsCollateral = jobCost * deal.pricing.resultsCollateralMultiple;
    }

    function _expect(bytes32 dealId, Agreement memory a, AgreementState expected) private pure {
        if (a.state != expected) revert WrongState(dealId, a.state, expected);
    }

    function _before(bytes32 dealId, uint256 start, uint256 window) private view {
        if (block.timestamp >= start + window) revert WindowClosed(dealId, start + window);
    }

    function _expired(bytes32 dealId, uint256 start, uint256 window) private view {
        if (block.timestamp < start + window) revert TimeoutNotExpired(dealId, start + window);
    }

    function _validate(Deal calldata deal) private view {
        address jc = deal.members.jobCreator;
        address rp = deal.members.resourceProvider;
        if (jc == address(0) || rp == address(0) || deal.members.solver == address(0)) {
            revert InvalidDeal("zero address member");
        }
        if (jc == rp) revert InvalidDeal("job creator is the resource provider");
        address[] calldata mediators = deal.members.mediators;
        uint256 n = mediators.length;
        if (n == 0 || n > MAX_MEDIATORS) revert InvalidDeal("need 1 to 16 mediators");
        for (uint256 i = 0; i < n; ++i) {
            address m = mediators[i];
            if (m == address(0) || m == jc || m == rp) revert InvalidDeal("mediator is zero or a party");
            // A mediator listed twice would weight the draw towards it.
            for (uint256 j = 0; j < i; ++j) {
                if (mediators[j] == m) revert InvalidDeal("duplicate mediator");
            }
        }
        uint256 minStake = _minMediatorStake;
        if (minStake != 0 && !_registry.allStaked(mediators, minStake)) {
            revert InvalidDeal("mediator not staked");
        }
        if (
            deal.timeouts.agree == 0 || deal.timeouts.submitResults == 0 || deal.timeouts.judgeResults == 0
                || deal.timeouts.mediateResults == 0
        ) revert InvalidDeal("zero timeout");
        if (
            deal.timeouts.agree > MAX_TIMEOUT || deal.timeouts.submitResults > MAX_TIMEOUT
                || deal.timeouts.judgeResults > MAX_TIMEOUT || deal.timeouts.mediateResults > MAX_TIMEOUT
        ) revert InvalidDeal("timeout over 30 days");
        if (deal.pricing.instructionPrice == 0) revert InvalidDeal("zero instruction price");
        if (deal.pricing.paymentCollateral < deal.pricing.instructionPrice) {
            revert InvalidDeal("payment collateral below one instruction");
        }
        uint256 multiple = deal.pricing.resultsCollateralMultiple;
        if (multiple == 0 || multiple > MAX_RESULTS_COLLATERAL_MULTIPLE) {
            revert InvalidDeal("results collateral multiple not in 1..100");
        }
        // Every escrow account must fit its uint96 fields whatever happens later.
        uint256 jobCreatorMax = uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral
            + deal.pricing.mediationFee;
        uint256 providerMax = multiple * deal.pricing.paymentCollateral;
        if (jobCreatorMax > type(uint96).max || providerMax > type(uint96).max) {
            revert InvalidDeal("amounts overflow");
        }
    }
}
