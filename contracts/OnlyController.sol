// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Binds a contract to the controller that deployed it, forever.
/// @notice The controller creates storage, payments and mediation in its own
/// constructor, so `controller` is immutable: there is no admin who could ever
/// appoint another one, and checking it costs no storage read.
abstract contract OnlyController {
    address public immutable controller;

    error NotController(address caller);

    constructor() {
        controller = msg.sender;
    }

    modifier onlyController() {
        if (msg.sender != controller) revert NotController(msg.sender);
        _;
    }
}
