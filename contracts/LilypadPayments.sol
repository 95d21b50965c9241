// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ILilypadPayments} from "./interfaces/ILilypadPayments.sol";
import {OnlyController} from "./OnlyController.sol";

/// @title LilypadPayments: per-deal escrow.
/// @notice Only the controller that deployed it may move funds. Depositors approve this contract. Every payout comes out of one
/// deal's own escrow account (never out of another deal's), and `settle` pays
/// out the whole account exactly once.
contract LilypadPayments is ILilypadPayments, OnlyController {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    IERC20 private immutable _token;
    mapping(bytes32 dealId => Escrow) private _escrows;

    error DealAlreadySettled(bytes32 dealId);
    error SettlementMismatch(bytes32 dealId, uint256 escrowed, uint256 paidOut);

    constructor(IERC20 token_) {
        _token = token_;
    }

    function token() external view returns (address) {
        return address(_token);
    }

    function getEscrow(bytes32 dealId) external view returns (Escrow memory) {
        return _escrows[dealId];
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

    function settle(
        bytes32 dealId,
        address jobCreator,
        uint256 toJobCreator,
        address resourceProvider,
        uint256 toResourceProvider,
        address mediator,
        uint256 toMediator
    ) external onlyController {
        Escrow storage e = _open(dealId);
        uint256 escrowed = uint256(e.jobCreator) + e.resourceProvider;
        uint256 paidOut = toJobCreator + toResourceProvider + toMediator;
        if (escrowed != paidOut) revert SettlementMismatch(dealId, escrowed, paidOut);
        e.jobCreator = 0;
        e.resourceProvider = 0;
        e.settled = true;
        if (toJobCreator > 0) _token.safeTransfer(jobCreator, toJobCreator);
        if (toResourceProvider > 0) _token.safeTransfer(resourceProvider, toResourceProvider);
        if (toMediator > 0) _token.safeTransfer(mediator, toMediator);
        emit Settled(dealId, jobCreator, toJobCreator, resourceProvider, toResourceProvider, mediator, toMediator);
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
