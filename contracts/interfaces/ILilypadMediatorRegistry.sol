// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Registered mediators and their LP stakes.
interface ILilypadMediatorRegistry {
    struct Stake {
        uint96 amount; // zero: not registered
        uint40 unbondingSince; // zero: bonded; else when requestUnbond was sent
    }

    event MediatorRegistered(address indexed mediator, uint256 stake);
    event StakeAdded(address indexed mediator, uint256 amount, uint256 stake);
    event UnbondRequested(address indexed mediator, uint256 stake, uint256 withdrawableAt);
    event StakeWithdrawn(address indexed mediator, uint256 stake);
    event MediatorSlashed(address indexed mediator, uint256 amount, uint256 stakeLeft);

    function token() external view returns (address);
    function getStake(address mediator) external view returns (Stake memory);
    function allStaked(address[] calldata mediators, uint256 minStake) external view returns (bool);
    function isStaked(address mediator, uint256 minStake) external view returns (bool);
    function slash(address mediator, uint256 amount, address to) external returns (uint256 taken);

    function register(uint256 amount) external;
    function addStake(uint256 amount) external;
    function requestUnbond() external;
    function withdraw() external;
}
