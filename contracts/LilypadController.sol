// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ILilypadController} from "./interfaces/ILilypadController.sol";
import {ILilypadMediation} from "./interfaces/ILilypadMediation.sol";
import {ILilypadPayments} from "./interfaces/ILilypadPayments.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {LilypadStorage} from "./LilypadStorage.sol";
import {LilypadPayments} from "./LilypadPayments.sol";
import {LilypadMediation} from "./LilypadMediation.sol";
import {LilypadMediatorRegistry} from "./LilypadMediatorRegistry.sol";
import {
    Agreement, AgreementState, Deal, ProtocolSettings, ReputationField, Verdict
} from "./interfaces/LilypadTypes.sol";

/// @title LilypadController: the single entry point of the protocol.
/// @notice Money rules (all amounts from the deal's terms; `tax` is the
/// deal's settings' taxBps of jobCost, 0 for a tax-exempt job creator; it goes
/// treasuryShareBps to the treasury and the rest to the jackpot):
/// - agree: the job creator escrows paymentCollateral + judgeResultsCollateral;
///   the resource provider escrows submitResultsCollateral.
/// - addResult: jobCost = instructionPrice * instructionCount (<= paymentCollateral);
///   the provider's escrow becomes resultsCollateral = multiple * jobCost.
/// - acceptResult / a mediation's Accept: provider gets jobCost - tax + resultsCollateral;
///   job creator gets the rest of its escrow back; the mediators get the fee.
/// - a mediation's Reject: job creator gets its escrow back plus the provider's
///   resultsCollateral (plus half the catch reward if it checked); the mediators get the fee.
/// - a mediation's NonDeterministic (the mediators' own runs of the job
///   disagreed, so the job itself is at fault, not the provider): provider gets
///   jobCost - tax + resultsCollateral + the job creator's judgeResultsCollateral;
///   job creator gets paymentCollateral - jobCost back; the mediators get the fee.
/// - timeoutAgree: whoever agreed gets its escrow back.
/// - timeoutSubmitResult: the provider's submit collateral goes to the job creator.
/// - timeoutJudgeResult: as accept, plus the job creator's judging collateral to the provider.
/// - timeoutMediateResult, after the last round without a majority: everybody
///   gets back what they escrowed (fee included; an audit's fee to the jackpot).
/// Audits: acceptResult and timeoutJudgeResult first draw, from the hash of the
/// block that included addResult, whether the deal is audited (auditBps); an
/// audited deal goes to mediation as if checked, its fee paid by the jackpot.
/// Mediation: a panel of `deal.protocol.consortiumSize` mediators (see
/// LilypadMediation). One mediator gives its verdict directly within
/// mediateResults; a larger panel commits within mediateResults and reveals in
/// the next mediateResults (early once all have committed). Anyone may then
/// resolve the round with timeoutMediateResult: the majority verdict settles the
/// deal; silent members and the minority lose mediatorSlash of their stake
/// (half to the majority, half to the jackpot; all to the jackpot without a
/// majority); without a majority a fresh panel is drawn, up to MAX_ROUNDS.
/// A reject pays a catch reward of rewardBps of the jackpot: half to the job
/// creator that checked (none for an audit), the rest to the majority.
/// A window is open while `now < start + window`; its timeout may be triggered
/// by anyone from `start + window` on.
/// Deposits are pulled by LilypadPayments: approve it beforehand, or send an
/// EIP-2612 permit for it with `agreeWithPermit` / `checkResultWithPermit`
/// (one transaction instead of approve + agree, for the exact amount).
/// Mediators: a deal lists 1 to 16 distinct mediators, at least consortiumSize.
/// While the deal's settings have a minMediatorStake above zero, the first
/// `agree` requires every listed mediator to be registered in
/// LilypadMediatorRegistry with at least that stake and not unbonding.
/// Settings: the admin appends versions (each bounded, with an event); a deal
/// names the version current at its first agree and keeps it for life.
contract LilypadController is ILilypadController, AccessControl, ReentrancyGuardTransient {
    uint256 public constant MAX_MEDIATORS = 16;
    uint256 public constant MAX_TIMEOUT = 30 days;
    uint256 public constant MAX_RESULTS_COLLATERAL_MULTIPLE = 100;
    /// @notice Upper bound of `minMediatorStake` and `mediatorSlash`: one million LP (18 decimals).
    uint256 public constant MAX_MIN_MEDIATOR_STAKE = 1_000_000 ether;
    uint256 public constant MAX_TAX_BPS = 1_000; // 10 %
    uint256 public constant MAX_AUDIT_BPS = 5_000; // one deal in two
    uint256 public constant MAX_REWARD_BPS = 5_000; // half the jackpot
    uint256 private constant BPS = 10_000;

    address private immutable _token;
    LilypadStorage private immutable _store;
    LilypadPayments private immutable _payments;
    LilypadMediation private immutable _mediation;
    LilypadMediatorRegistry private immutable _registry;
    address private _jobCreator;
    address private _treasury;
    ProtocolSettings[] private _settings;
    /// @dev The settings versions at which each job creator's tax exemption was
    /// switched (on at odd positions, off at even ones): a deal is exempt when
    /// an odd number of switches happened at or before its version.
    mapping(address jobCreator => uint32[]) private _exemptionSwitches;

    error JobCreatorAddressFixed(address current);
    error InvalidDeal(string reason);
    error InvalidSettings(string reason);
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
    error WrongConsortium(bytes32 dealId, uint256 size);
    error DrawNotFixed(bytes32 dealId);
    error RevealNotOpen(bytes32 dealId, uint256 opensAt);
    error AuditDrawNotReady(bytes32 dealId, uint256 resultsBlock);
    error NoTreasury();

    /// @notice Creates storage, payments, the mediator registry and mediation bound to this
    /// controller for ever (see OnlyController): nobody can re-point them later.
    /// Settings version 0 switches every mechanism off (no tax, no audits, no
    /// stake check, no slashing); the deploy script sets the network's version.
    constructor(address admin, address token_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _token = token_;
        _store = new LilypadStorage();
        _payments = new LilypadPayments(IERC20(token_));
        _registry = new LilypadMediatorRegistry(IERC20(token_));
        _mediation = new LilypadMediation(_registry);
        _settings.push(ProtocolSettings(0, 0, 0, 0, 0, 0));
        emit ProtocolSettingsChanged(0, _settings[0]);
    }

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

    // ------------------------------------------------------------ governance (admin role)

    /// @notice The version new deals must name.
    function getSettingsVersion() public view returns (uint32) {
        return uint32(_settings.length - 1);
    }

    function getProtocolSettings(uint32 version) external view returns (ProtocolSettings memory) {
        return _settings[version];
    }

    /// @notice The stake every mediator a new deal names must have (current settings).
    function getMinMediatorStake() external view returns (uint256) {
        return _settings[_settings.length - 1].minMediatorStake;
    }

    /// @notice Append a settings version (each field within its MAX_* bound).
    function setProtocolSettings(ProtocolSettings calldata settings) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _pushSettings(settings);
    }

    /// @notice Append a settings version that changes only the minimum mediator stake.
    function setMinMediatorStake(uint256 minStake) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (minStake > MAX_MIN_MEDIATOR_STAKE) revert MinMediatorStakeTooHigh(minStake, MAX_MIN_MEDIATOR_STAKE);
        ProtocolSettings memory s = _settings[_settings.length - 1];
        s.minMediatorStake = uint96(minStake);
        _pushSettings(s);
        emit MinMediatorStakeChanged(minStake);
    }

    /// @notice Set once (at deployment): the address payees approve cannot be swapped under them.
    function setJobCreatorAddress(address jobCreator) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (_jobCreator != address(0) || jobCreator == address(0)) revert JobCreatorAddressFixed(_jobCreator);
        _jobCreator = jobCreator;
        emit JobCreatorAddressChanged(jobCreator);
    }

    function getTreasury() external view returns (address) {
        return _treasury;
    }

    function setTreasury(address treasury) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _treasury = treasury;
        emit TreasuryAddressChanged(treasury);
    }

    /// @notice Pay the treasury's accumulated share of the tax to the treasury address (anyone may call).
    function claimTreasury() external nonReentrant returns (uint256) {
        if (_treasury == address(0)) revert NoTreasury();
        return _payments.claimTreasury(_treasury);
    }

    /// @notice Anyone may add LP to the jackpot (approve LilypadPayments first),
    /// e.g. to fund random audits on a new deployment.
    function fundJackpot(uint256 amount) external nonReentrant {
        _payments.donateToJackpot(msg.sender, amount);
    }

    /// @notice Whether `jobCreator`'s deals made under the current settings version pay no tax.
    function isTaxExempt(address jobCreator) external view returns (bool) {
        return _isExempt(jobCreator, getSettingsVersion());
    }

    /// @notice Public-good rule: deals of an exempt job creator pay no tax. A
    /// switch appends a settings version (the others unchanged) and applies to
    /// deals made under it and later ones only: an open deal keeps its terms.
    function setTaxExempt(address jobCreator, bool exempt) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (_isExempt(jobCreator, getSettingsVersion()) == exempt) return;
        _pushSettings(_settings[_settings.length - 1]);
        _exemptionSwitches[jobCreator].push(getSettingsVersion());
        emit TaxExemptionChanged(jobCreator, exempt);
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
            dealId, a, deal.members.resourceProvider, both ? ReputationField.DealsAgreed : ReputationField.None, 0
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
        if (jobCost > deal.pricing.paymentCollateral || instructionCount > type(uint40).max) {
            revert JobCostTooHigh(dealId, jobCost, deal.pricing.paymentCollateral);
        }

        a.state = AgreementState.ResultsSubmitted;
        a.resultsSubmittedAt = uint40(block.timestamp);
        a.instructionCount = uint40(instructionCount);
        a.resultsBlock = uint32(block.number);
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
        if (_audit(dealId, deal, a)) return;
        _finish(dealId, deal, a, AgreementState.ResultsAccepted, ReputationField.ResultsAccepted, true);
        _settlePaid(dealId, deal, a, false, new address[](0), 0);
    }

    /// @dev Whether this deal's audit draw (fixed by the hash of the block that
    /// included addResult; a forgotten hash counts as drawn, so waiting cannot
    /// skip an audit) selects it. Audits are skipped while the jackpot cannot
    /// pay the mediation fee.
    function _isAudited(bytes32 dealId, Deal calldata deal, Agreement memory a) private view returns (bool) {
        uint256 rate = _settings[deal.protocol.settingsVersion].auditBps;
        if (rate == 0) return false;
        if (block.number <= a.resultsBlock) revert AuditDrawNotReady(dealId, a.resultsBlock);
        bytes32 h = blockhash(a.resultsBlock);
        if (h != bytes32(0) && uint256(keccak256(abi.encode(h, dealId))) % BPS >= rate) return false;
        return _payments.getPot().jackpot >= deal.pricing.mediationFee;
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
        _toMediation(dealId, deal, a, false);
        _payments.escrowJobCreator(dealId, msg.sender, deal.pricing.mediationFee);
    }

    /// @notice Fix this round's panel on-chain (anyone, once the draw block is
    /// sealed; a member's commit or verdict does it too). Returns the members,
    /// or none when the draw's hash was forgotten and the round was redrawn.
    function assignMediator(Deal calldata deal) external nonReentrant returns (address[] memory) {
        bytes32 dealId = getDealId(deal);
        _expect(dealId, _store.getAgreement(dealId), AgreementState.ResultsChecked);
        return _assign(dealId, deal);
    }

    function mediationAcceptResult(Deal calldata deal) external nonReentrant {
        _directVerdict(deal, Verdict.Accept);
    }

    function mediationRejectResult(Deal calldata deal) external nonReentrant {
        _directVerdict(deal, Verdict.Reject);
    }

    /// @notice The mediator's own runs of the job disagreed with each other: the
    /// job is non-deterministic, which is the job creator's doing, so the
    /// provider is paid as if accepted plus the job creator's judging collateral,
    /// and the job creator pays the job cost and the mediation fee.
    function mediationNonDeterministic(Deal calldata deal) external nonReentrant {
        _directVerdict(deal, Verdict.NonDeterministic);
    }

    /// @notice A member of a panel of 3 or more commits
    /// LilypadMediation.commitment(dealId, round, itself, verdict, resultCid, salt).
    function commitVerdict(Deal calldata deal, bytes32 commitment) external nonReentrant {
        (bytes32 dealId, Agreement memory a) = _panelRound(deal);
        _before(dealId, a.mediationRequestedAt, deal.timeouts.mediateResults);
        if (_assign(dealId, deal).length == 0) revert DrawNotFixed(dealId);
        _mediation.commit(dealId, msg.sender, commitment);
    }

    /// @notice Reveal a committed verdict: from the end of the commit window,
    /// or as soon as every member has committed, until one more window later.
    function revealVerdict(Deal calldata deal, Verdict verdict, bytes32 resultCid, bytes32 salt)
        external
        nonReentrant
    {
        (bytes32 dealId, Agreement memory a) = _panelRound(deal);
        uint256 opensAt = uint256(a.mediationRequestedAt) + deal.timeouts.mediateResults;
        (ILilypadMediation.Panel memory panel,) = _mediation.getPanel(dealId);
        if (block.timestamp < opensAt && panel.commits < panel.size) revert RevealNotOpen(dealId, opensAt);
        _before(dealId, opensAt, deal.timeouts.mediateResults);
        _mediation.reveal(dealId, msg.sender, verdict, resultCid, salt);
    }

    // ------------------------------------------------------------ timeouts (anyone)

    function timeoutAgree(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.DealNegotiating);
        _expired(dealId, a.createdAt, deal.timeouts.agree);
        _finish(dealId, deal, a, AgreementState.TimeoutAgree, ReputationField.None, false);
        ILilypadPayments.Payout memory p = _payout(deal);
        p.toJobCreator =
            a.jobCreatorAgreed ? uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral : 0;
        p.toResourceProvider = a.resourceProviderAgreed ? deal.timeouts.submitResultsCollateral : 0;
        _pay(dealId, p);
    }

    function timeoutSubmitResult(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.DealAgreed);
        _expired(dealId, a.agreedAt, deal.timeouts.submitResults);
        _finish(dealId, deal, a, AgreementState.TimeoutSubmitResults, ReputationField.SubmitTimeouts, false);
        ILilypadPayments.Payout memory p = _payout(deal);
        p.toJobCreator = uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral
            + deal.timeouts.submitResultsCollateral;
        _pay(dealId, p);
    }

    function timeoutJudgeResult(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsSubmitted);
        _expired(dealId, a.resultsSubmittedAt, deal.timeouts.judgeResults);
        if (_audit(dealId, deal, a)) return;
        _finish(dealId, deal, a, AgreementState.TimeoutJudgeResults, ReputationField.OtherTimeouts, true);
        _settlePaid(dealId, deal, a, true, new address[](0), 0);
    }

    /// @notice Close a mediation round: once its window is over (one window for
    /// a single mediator, commit + reveal for a panel), or as soon as every
    /// member of a panel has revealed. A majority settles the deal; otherwise
    /// a fresh panel is drawn, and after MAX_ROUNDS everybody is refunded.
    function timeoutMediateResult(Deal calldata deal) external nonReentrant {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsChecked);
        (ILilypadMediation.Panel memory panel,) = _mediation.getPanel(dealId);
        uint256 deadline =
            uint256(a.mediationRequestedAt) + (panel.size == 1 ? 1 : 2) * uint256(deal.timeouts.mediateResults);
        if (block.timestamp < deadline && (panel.size == 1 || panel.reveals < panel.size)) {
            revert TimeoutNotExpired(dealId, deadline);
        }
        // A panel nobody fixed is fixed now (its silent members are slashed), or redrawn if forgotten.
        if (!panel.assigned && block.number > panel.drawBlock) _assign(dealId, deal);
        (Verdict majority, address[] memory winners, address[] memory offenders) = _mediation.tally(dealId);
        ProtocolSettings memory s = _settings[deal.protocol.settingsVersion];
        uint256 slashed = _slash(dealId, offenders, s.mediatorSlash);
        if (majority != Verdict.None) {
            _settleVerdict(dealId, deal, a, majority, winners, slashed, panel.audited);
            return;
        }
        if (
            panel.round < _mediation.MAX_ROUNDS()
                && _mediation.eligibleCount(dealId, deal.members.mediators, s.minMediatorStake) >= panel.size
        ) {
            _payments.creditJackpot(dealId, slashed);
            a.mediationRequestedAt = uint40(block.timestamp);
            _store.setAgreement(dealId, a, deal.members.resourceProvider, ReputationField.None, 0);
            _mediation.nextRound(dealId);
            return;
        }
        _finish(dealId, deal, a, AgreementState.TimeoutMediateResults, ReputationField.OtherTimeouts, false);
        (, uint256 resultsCollateral) = _costs(deal, a);
        ILilypadPayments.Payout memory p = _payout(deal);
        uint256 fee = deal.pricing.mediationFee;
        p.toJobCreator = uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral
            + (panel.audited ? 0 : fee);
        p.toResourceProvider = resultsCollateral;
        p.fromSlashes = slashed;
        p.toJackpot = slashed + (panel.audited ? fee : 0);
        _pay(dealId, p);
    }

    // ------------------------------------------------------------ internals

    function _permit(uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) private {
        // The token is the one this controller was deployed with (trusted); a
        // reverting permit must not block the deal (front-run permits are public).
        try IERC20Permit(_token).permit(msg.sender, address(_payments), value, deadline, v, r, s) {} catch {}
    }

    function _pushSettings(ProtocolSettings memory s) private {
        if (s.taxBps > MAX_TAX_BPS) revert InvalidSettings("tax over MAX_TAX_BPS");
        if (s.treasuryShareBps > BPS) revert InvalidSettings("treasury share over 100%");
        if (s.auditBps > MAX_AUDIT_BPS) revert InvalidSettings("audit rate over MAX_AUDIT_BPS");
        if (s.rewardBps > MAX_REWARD_BPS) revert InvalidSettings("reward over MAX_REWARD_BPS");
        if (s.minMediatorStake > MAX_MIN_MEDIATOR_STAKE || s.mediatorSlash > MAX_MIN_MEDIATOR_STAKE) {
            revert MinMediatorStakeTooHigh(s.minMediatorStake, MAX_MIN_MEDIATOR_STAKE);
        }
        _settings.push(s);
        emit ProtocolSettingsChanged(uint32(_settings.length - 1), s);
    }

    function _isExempt(address jobCreator, uint32 version) private view returns (bool exempt) {
        uint32[] storage switches = _exemptionSwitches[jobCreator];
        for (uint256 i = 0; i < switches.length && switches[i] <= version; ++i) {
            exempt = !exempt;
        }
    }

    /// @dev Send the deal to mediation (state, reputation, panel request).
    function _toMediation(bytes32 dealId, Deal calldata deal, Agreement memory a, bool audited) private {
        a.state = AgreementState.ResultsChecked;
        a.mediationRequestedAt = uint40(block.timestamp);
        _store.setAgreement(dealId, a, deal.members.resourceProvider, ReputationField.ResultsChecked, 0);
        _mediation.request(dealId, deal.protocol.consortiumSize, audited);
    }

    /// @dev Audit the deal if its draw says so: mediation paid by the jackpot.
    function _audit(bytes32 dealId, Deal calldata deal, Agreement memory a) private returns (bool) {
        if (!_isAudited(dealId, deal, a)) return false;
        _toMediation(dealId, deal, a, true);
        _payments.fundFromJackpot(dealId, deal.pricing.mediationFee);
        emit DealAudited(dealId, deal.pricing.mediationFee);
        return true;
    }

    function _assign(bytes32 dealId, Deal calldata deal) private returns (address[] memory) {
        return _mediation.assign(
            dealId, deal.members.mediators, _settings[deal.protocol.settingsVersion].minMediatorStake
        );
    }

    function _panelRound(Deal calldata deal) private view returns (bytes32 dealId, Agreement memory a) {
        dealId = getDealId(deal);
        a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsChecked);
        if (deal.protocol.consortiumSize == 1) revert WrongConsortium(dealId, 1);
    }

    /// @dev A panel of one: its member's verdict settles the deal at once.
    function _directVerdict(Deal calldata deal, Verdict verdict) private {
        bytes32 dealId = getDealId(deal);
        Agreement memory a = _store.getAgreement(dealId);
        _expect(dealId, a, AgreementState.ResultsChecked);
        if (deal.protocol.consortiumSize != 1) revert WrongConsortium(dealId, deal.protocol.consortiumSize);
        _before(dealId, a.mediationRequestedAt, deal.timeouts.mediateResults);
        address[] memory members = _assign(dealId, deal);
        if (members.length == 0) revert DrawNotFixed(dealId);
        if (msg.sender != members[0]) revert NotChosenMediator(msg.sender, members[0]);
        (ILilypadMediation.Panel memory panel,) = _mediation.getPanel(dealId);
        _settleVerdict(dealId, deal, a, verdict, members, 0, panel.audited);
    }

    function _slash(bytes32 dealId, address[] memory offenders, uint256 amount) private returns (uint256 total) {
        for (uint256 i = 0; i < offenders.length; ++i) {
            if (!_mediation.markSlashed(dealId, offenders[i])) continue;
            uint256 taken = _registry.slash(offenders[i], amount, address(_payments));
            total += taken;
            emit MediatorPenalised(dealId, offenders[i], taken);
        }
    }

    /// @dev Settle on a mediation verdict; `winners` share the fee, half the
    /// slashed stakes and (on reject) the mediators' part of the catch reward.
    function _settleVerdict(
        bytes32 dealId,
        Deal calldata deal,
        Agreement memory a,
        Verdict verdict,
        address[] memory winners,
        uint256 slashed,
        bool audited
    ) private {
        if (verdict == Verdict.Accept) {
            _finish(dealId, deal, a, AgreementState.MediationAccepted, ReputationField.MediationsPassed, true);
        } else if (verdict == Verdict.Reject) {
            _finish(dealId, deal, a, AgreementState.MediationRejected, ReputationField.MediationsFailed, false);
        } else {
            _finish(dealId, deal, a, AgreementState.MediationNonDeterministic, ReputationField.MediationsPassed, true);
        }
        if (verdict != Verdict.Reject) {
            _settlePaid(dealId, deal, a, verdict == Verdict.NonDeterministic, winners, slashed);
            return;
        }
        (, uint256 resultsCollateral) = _costs(deal, a);
        ILilypadPayments.Payout memory p = _payout(deal);
        uint256 reward = uint256(_payments.getPot().jackpot) * _settings[deal.protocol.settingsVersion].rewardBps / BPS;
        uint256 toChecker = audited ? 0 : reward / 2;
        p.fromJackpot = reward;
        p.toJobCreator =
            uint256(deal.pricing.paymentCollateral) + deal.timeouts.judgeResultsCollateral + resultsCollateral + toChecker;
        _shareAmongMediators(p, winners, deal.pricing.mediationFee + reward - toChecker, slashed);
        _pay(dealId, p);
    }

    /// @dev A settlement that pays the provider the job cost (less the tax):
    /// accepted or a mediation's Accept; with `judgeToProvider` the job
    /// creator's judging collateral goes to the provider too (judge timeout, a
    /// mediation's NonDeterministic). `winners` empty: no mediation.
    function _settlePaid(
        bytes32 dealId,
        Deal calldata deal,
        Agreement memory a,
        bool judgeToProvider,
        address[] memory winners,
        uint256 slashed
    ) private {
        (uint256 jobCost, uint256 resultsCollateral) = _costs(deal, a);
        ILilypadPayments.Payout memory p = _payout(deal);
        uint256 judge = deal.timeouts.judgeResultsCollateral;
        bool toProvider = judgeToProvider;
        p.toJobCreator = deal.pricing.paymentCollateral - jobCost + (toProvider ? 0 : judge);
        uint256 tax;
        if (!_isExempt(deal.members.jobCreator, deal.protocol.settingsVersion)) {
            ProtocolSettings memory s = _settings[deal.protocol.settingsVersion];
            tax = jobCost * s.taxBps / BPS;
            p.toTreasury = tax * s.treasuryShareBps / BPS;
            p.toJackpot = tax - p.toTreasury;
        }
        p.toResourceProvider = jobCost - tax + resultsCollateral + (toProvider ? judge : 0);
        if (winners.length != 0) _shareAmongMediators(p, winners, deal.pricing.mediationFee, slashed);
        _pay(dealId, p);
    }

    /// @dev `winners` share `amount` plus half of `slashed`; the other half and
    /// any indivisible remainder go to the jackpot.
    function _shareAmongMediators(
        ILilypadPayments.Payout memory p,
        address[] memory winners,
        uint256 amount,
        uint256 slashed
    ) private pure {
        uint256 shared = amount + slashed / 2;
        p.mediators = winners;
        p.toEachMediator = shared / winners.length;
        p.fromSlashes = slashed;
        p.toJackpot += slashed - slashed / 2 + shared - p.toEachMediator * winners.length;
    }

    /// @dev The one call site of LilypadPayments.settle.
    function _pay(bytes32 dealId, ILilypadPayments.Payout memory p) private {
        _payments.settle(dealId, p);
    }

    function _payout(Deal calldata deal) private pure returns (ILilypadPayments.Payout memory p) {
        p.jobCreator = deal.members.jobCreator;
        p.resourceProvider = deal.members.resourceProvider;
    }

    /// @dev Store the deal's new state and bump the provider's `field`. `paid`:
    /// the deal settles paying the provider its job cost, which storage adds to
    /// the provider's valuePaid (and valueVerified on MediationAccepted) in the same call.
    function _finish(
        bytes32 dealId,
        Deal calldata deal,
        Agreement memory a,
        AgreementState state,
        ReputationField field,
        bool paid
    ) private {
        a.state = state;
        uint256 jobCost = paid ? uint256(deal.pricing.instructionPrice) * a.instructionCount : 0;
        _store.setAgreement(dealId, a, deal.members.resourceProvider, field, jobCost);
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
        if (deal.protocol.settingsVersion != getSettingsVersion()) revert InvalidDeal("settings version not current");
        uint256 k = deal.protocol.consortiumSize;
        if (k == 0 || k % 2 == 0 || k > _mediation.MAX_CONSORTIUM() || k > n) {
            revert InvalidDeal("consortium size not odd, 1..7 and at most the mediators listed");
        }
        uint256 minStake = _settings[deal.protocol.settingsVersion].minMediatorStake;
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
