// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Mediator selection for checked results.
/// @notice The mediator is drawn from the deal's trusted list with the hash of
/// the block that included `checkResult`: unknown to both parties when they act,
/// and fixed the first time it is read on-chain (by the mediator's own verdict
/// or by anyone calling the controller's `assignMediator`).
interface ILilypadMediation {
    struct Request {
        address mediator; // zero until assigned
        uint64 checkBlock;
    }

    event MediationRequested(bytes32 indexed dealId, uint64 checkBlock);
    event MediatorAssigned(bytes32 indexed dealId, address indexed mediator);

    function getRequest(bytes32 dealId) external view returns (Request memory);
    function drawMediator(bytes32 dealId, address[] calldata mediators) external view returns (address);

    function request(bytes32 dealId) external;
    function assign(bytes32 dealId, address[] calldata mediators) external returns (address);
}
