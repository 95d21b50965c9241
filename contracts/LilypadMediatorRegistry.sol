// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ILilypadMediatorRegistry} from "./interfaces/ILilypadMediatorRegistry.sol";
import {OnlyController} from "./OnlyController.sol";

/// @title LilypadMediatorRegistry: mediators and the LP they stake.
/// @notice A mediator `register`s with a stake (pulled with `transferFrom`:
/// approve this contract first), may `addStake`, and leaves in two steps:
/// `requestUnbond`, then `withdraw` of the whole stake once `UNBONDING_DELAY`
/// has passed. While unbonding it counts as not staked: no new deal may name
/// it and no new mediation round draws it (when the deal's minimum stake is
/// above zero). The delay (twice the controller's MAX_TIMEOUT of 30 days, the
/// longest commit + reveal round, plus a 7-day margin) is longer than any
/// round it was drawn for before it asked to leave, so a drawn mediator cannot
/// take its stake out before its round has closed and it could be slashed.
/// The controller (which creates this contract) reads `allStaked` at a deal's
/// first `agree` when the deal's minimum stake is above zero, and `slash`es a
/// mediator that stayed silent or voted against the majority (the slashed LP
/// goes to LilypadPayments, which pays it to the majority and the jackpot).
contract LilypadMediatorRegistry is ILilypadMediatorRegistry, OnlyController {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice 2 x 30 days (the longest commit + reveal round a deal may set) + 7 days of margin.
    uint256 public constant UNBONDING_DELAY = 67 days;

    IERC20 private immutable _token;
    mapping(address mediator => Stake) private _stakes;

    error ZeroStake();
    error AlreadyRegistered(address mediator);
    error NotRegistered(address mediator);
    error Unbonding(address mediator, uint256 since);
    error NotUnbonding(address mediator);
    error StillBonded(address mediator, uint256 withdrawableAt);

    constructor(IERC20 token_) {
        _token = token_;
    }

    function token() external view returns (address) {
        return address(_token);
    }

    function getStake(address mediator) external view returns (Stake memory) {
        return _stakes[mediator];
    }

    /// @notice True when every one of `mediators` has at least `minStake` staked and is not unbonding.
    function allStaked(address[] calldata mediators, uint256 minStake) external view returns (bool) {
        for (uint256 i = 0; i < mediators.length; ++i) {
            Stake memory s = _stakes[mediators[i]];
            if (s.amount < minStake || s.amount == 0 || s.unbondingSince != 0) return false;
        }
        return true;
    }

    /// @notice True when `mediator` has at least `minStake` (and something) staked and is not unbonding.
    function isStaked(address mediator, uint256 minStake) external view returns (bool) {
        Stake memory s = _stakes[mediator];
        return s.amount >= minStake && s.amount != 0 && s.unbondingSince == 0;
    }

    /// @notice Take up to `amount` of `mediator`'s stake (all of it if it has
    /// less; nothing if it has none) and send it to `to`. Returns what was taken.
    function slash(address mediator, uint256 amount, address to) external onlyController returns (uint256 taken) {
        Stake storage s = _stakes[mediator];
        taken = amount < s.amount ? amount : s.amount;
        if (taken == 0) return 0;
        s.amount -= uint96(taken);
        emit MediatorSlashed(mediator, taken, s.amount);
        _token.safeTransfer(to, taken);
    }

    function register(uint256 amount) external {
        Stake storage s = _stakes[msg.sender];
        if (s.amount != 0) revert AlreadyRegistered(msg.sender);
        if (amount == 0) revert ZeroStake();
        s.amount = amount.toUint96();
        s.unbondingSince = 0; // a stake slashed to nothing while unbonding starts afresh
        emit MediatorRegistered(msg.sender, amount);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function addStake(uint256 amount) external {
        Stake storage s = _bonded(msg.sender);
        if (amount == 0) revert ZeroStake();
        uint256 total = uint256(s.amount) + amount;
        s.amount = total.toUint96();
        emit StakeAdded(msg.sender, amount, total);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    function requestUnbond() external {
        Stake storage s = _bonded(msg.sender);
        s.unbondingSince = uint40(block.timestamp);
        emit UnbondRequested(msg.sender, s.amount, block.timestamp + UNBONDING_DELAY);
    }

    function withdraw() external {
        Stake memory s = _stakes[msg.sender];
        if (s.amount == 0) revert NotRegistered(msg.sender);
        if (s.unbondingSince == 0) revert NotUnbonding(msg.sender);
        uint256 withdrawableAt = uint256(s.unbondingSince) + UNBONDING_DELAY;
        if (block.timestamp < withdrawableAt) revert StillBonded(msg.sender, withdrawableAt);
        delete _stakes[msg.sender];
        emit StakeWithdrawn(msg.sender, s.amount);
        _token.safeTransfer(msg.sender, s.amount);
    }

    function _bonded(address mediator) private view returns (Stake storage s) {
        s = _stakes[mediator];
        if (s.amount == 0) revert NotRegistered(mediator);
        if (s.unbondingSince != 0) revert Unbonding(mediator, s.unbondingSince);
    }
}
