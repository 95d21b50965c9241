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
/// has passed. The delay (the controller's MAX_TIMEOUT of 30 days plus a
/// 7-day margin) is longer than any mediation window, so a mediator drawn for
/// a check cannot take its stake out before that check's window has closed.
/// While unbonding it counts as not staked: no new deal may name it.
/// The controller (which creates this contract) reads `allStaked` at a deal's
/// first `agree` when the protocol's minimum stake is above zero. Stakes stay
/// here so that a later version of the protocol can slash them; nothing is
/// slashed today.
contract LilypadMediatorRegistry is ILilypadMediatorRegistry, OnlyController {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice 30 days (the longest mediation window a deal may set) + 7 days of margin.
    uint256 public constant UNBONDING_DELAY = 37 days;

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

    function register(uint256 amount) external {
        Stake storage s = _stakes[msg.sender];
        if (s.amount != 0) revert AlreadyRegistered(msg.sender);
        if (amount == 0) revert ZeroStake();
        s.amount = amount.toUint96();
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
