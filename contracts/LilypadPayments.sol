// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ILilypadPayments} from "./interfaces/ILilypadPayments.sol";
import {OnlyController} from "./OnlyController.sol";

/// @title LilypadPayments: per-deal escrow, the jackpot and the treasury.
/// @notice Only the controller that deployed it may move funds. Depositors approve this contract. Every payout comes out of one
/// deal's own escrow account (never out of another deal's), plus only what the
/// controller brings into that settlement from the jackpot or from slashed
/// stakes, and `settle` pays out the whole account exactly once. The jackpot
/// (taxes, slashes, dust) and the treasury's share of the tax are kept here in
/// one slot; the jackpot funds random audits and rewards, the treasury's
/// balance is claimed to the address governance sets.
contract LilypadPayments is ILilypadPayments, OnlyController {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    IERC20 private immutable _token;
    mapping(bytes32 dealId => Escrow) private _escrows;
    Pot private _pot;

    error DealAlreadySettled(bytes32 dealId);
    error SettlementMismatch(bytes32 dealId, uint256 escrowed, uint256 paidOut);
    error JackpotTooSmall(uint256 jackpot, uint256 wanted);

    constructor(IERC20 token_) {
        _token = token_;
    }

    function token() external view returns (address) {
        return address(_token);
    }

    function getEscrow(bytes32 dealId) external view returns (Escrow memory) {
        return _escrows[dealId];
    }

    function getPot() external view returns (Pot memory) {
        return _pot;
    }

    function escrowJobCreator(bytes32 dealId, address from, uint256 amount) external onlyController {
        Escrow storage e = _open(dealId);
        e.jobCreator += amount.toUint96();
        _pull(dealId, from, amount, true);
    }

    function escrowResourceProvider(bytes32 dealId, address from, uint256 amount)
        external
        onlyController
    {
        Escrow storage e = _open(dealId);
        e.resourceProvider += amount.toUint96();
        _pull(dealId, from, amount, false);
    }

    /// @notice Swap the provider's collateral for a new amount (submit
    /// collateral -> results collateral), moving only the difference.
    function setResourceProviderEscrow(bytes32 dealId, address resourceProvider, uint256 newAmount)
        external
        onlyController
    {
        Escrow storage e = _open(dealId);
        uint256 current = e.resourceProvider;
        e.resourceProvider = newAmount.toUint96();
        if (newAmount > current) {
            _pull(dealId, resourceProvider, newAmount - current, false);
        } else if (current > newAmount) {
            _token.safeTransfer(resourceProvider, current - newAmount);
            emit Refunded(dealId, resourceProvider, current - newAmount);
        }
    }

    /// @notice Move `amount` from the jackpot into the deal's escrow (an audit's
    /// mediation fee, on the job creator's side of the account).
    function fundFromJackpot(bytes32 dealId, uint256 amount) external onlyController {
        Escrow storage e = _open(dealId);
        Pot memory pot = _pot;
        if (pot.jackpot < amount) revert JackpotTooSmall(pot.jackpot, amount);
        _pot.jackpot = pot.jackpot - uint128(amount);
        e.jobCreator += amount.toUint96();
        emit JackpotChanged(dealId, 0, amount, pot.jackpot - amount);
    }

    /// @notice Add tokens the controller has just had sent here (slashed stakes) to the jackpot.
    function creditJackpot(bytes32 dealId, uint256 amount) external onlyController {
        if (amount == 0) return;
        uint256 jackpot = uint256(_pot.jackpot) + amount;
        _pot.jackpot = jackpot.toUint128();
        emit JackpotChanged(dealId, amount, 0, jackpot);
    }

    /// @notice Pull `amount` from `from` (who approved this contract) into the jackpot.
    function donateToJackpot(address from, uint256 amount) external onlyController {
        uint256 jackpot = uint256(_pot.jackpot) + amount;
        _pot.jackpot = jackpot.toUint128();
        emit JackpotChanged(bytes32(0), amount, 0, jackpot);
        _token.safeTransferFrom(from, address(this), amount);
    }

    /// @notice Pay the treasury's whole balance to `to`.
    function claimTreasury(address to) external onlyController returns (uint256 amount) {
        amount = _pot.treasury;
        if (amount == 0) return 0;
        _pot.treasury = 0;
        emit TreasuryChanged(bytes32(0), 0, amount, 0);
        _token.safeTransfer(to, amount);
    }

    function settle(bytes32 dealId, Payout calldata p) external onlyController {
        Escrow storage e = _open(dealId);
        uint256 incoming = uint256(e.jobCreator) + e.resourceProvider + p.fromJackpot + p.fromSlashes;
        uint256 paidOut = p.toJobCreator + p.toResourceProvider + p.toEachMediator * p.mediators.length
            + p.toJackpot + p.toTreasury;
        if (incoming != paidOut) revert SettlementMismatch(dealId, incoming, paidOut);
        // Settled, the account records what the job creator was paid back (read by a job creator
        // contract to settle its own client: LilypadOnChainJobCreator); the same slot, no extra write.
        e.jobCreator = p.toJobCreator.toUint96();
        e.resourceProvider = 0;
        e.settled = true;
        if (p.toJackpot != 0 || p.toTreasury != 0 || p.fromJackpot != 0) {
            Pot memory pot = _pot;
            if (pot.jackpot < p.fromJackpot) revert JackpotTooSmall(pot.jackpot, p.fromJackpot);
            uint256 jackpot = uint256(pot.jackpot) + p.toJackpot - p.fromJackpot;
            uint256 treasury = uint256(pot.treasury) + p.toTreasury;
            _pot = Pot(jackpot.toUint128(), treasury.toUint128());
            if (p.toJackpot != 0 || p.fromJackpot != 0) emit JackpotChanged(dealId, p.toJackpot, p.fromJackpot, jackpot);
            if (p.toTreasury != 0) emit TreasuryChanged(dealId, p.toTreasury, 0, treasury);
        }
        if (p.toJobCreator > 0) _token.safeTransfer(p.jobCreator, p.toJobCreator);
        if (p.toResourceProvider > 0) _token.safeTransfer(p.resourceProvider, p.toResourceProvider);
        if (p.toEachMediator > 0) {
            for (uint256 i = 0; i < p.mediators.length; ++i) {
                _token.safeTransfer(p.mediators[i], p.toEachMediator);
            }
        }
        emit Settled(
            dealId, p.jobCreator, p.toJobCreator, p.resourceProvider, p.toResourceProvider, p.mediators, p.toEachMediator
        );
    }

    function _open(bytes32 dealId) private view returns (Escrow storage e) {
        e = _escrows[dealId];
        if (e.settled) revert DealAlreadySettled(dealId);
    }

    function _pull(bytes32 dealId, address from, uint256 amount, bool jobCreatorSide) private {
        if (amount == 0) return;
        _token.safeTransferFrom(from, address(this), amount);
        emit Escrowed(dealId, from, amount, jobCreatorSide);
    }
}
