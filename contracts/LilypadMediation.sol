// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILilypadMediation} from "./interfaces/ILilypadMediation.sol";
import {OnlyController} from "./OnlyController.sol";

/// @title LilypadMediation: unpredictable choice of the mediator for a checked result.
/// @notice The draw uses the hash of the block that included `checkResult`
/// (not its timestamp, and not anything known to the party that sent it). It is
/// fixed on-chain by the first `assign`, which the controller does when the
/// mediator gives its verdict or when anyone calls `assignMediator`. If nobody
/// assigns within 256 blocks (after which the EVM forgets the hash), the draw
/// falls back to a hash of the deal id and the check block, which is fixed
/// and can no longer be steered by either party.
contract LilypadMediation is ILilypadMediation, OnlyController {
    mapping(bytes32 dealId => Request) private _requests;

    error MediationNotRequested(bytes32 dealId);
    error MediationAlreadyRequested(bytes32 dealId);
    error DrawNotReady(bytes32 dealId, uint64 checkBlock);

    function getRequest(bytes32 dealId) external view returns (Request memory) {
        return _requests[dealId];
    }

    /// @notice The mediator this deal's check draws (or drew). Reverts until the
    /// block that included the check has been sealed.
    function drawMediator(bytes32 dealId, address[] calldata mediators) public view returns (address) {
        Request memory r = _requests[dealId];
        if (r.checkBlock == 0) revert MediationNotRequested(dealId);
        if (r.mediator != address(0)) return r.mediator;
        if (block.number <= r.checkBlock) revert DrawNotReady(dealId, r.checkBlock);
        bytes32 seed = blockhash(r.checkBlock);
        if (seed == bytes32(0)) seed = keccak256(abi.encode(dealId, r.checkBlock));
        return mediators[uint256(keccak256(abi.encode(seed, dealId))) % mediators.length];
    }

    function request(bytes32 dealId) external onlyController {
        Request storage r = _requests[dealId];
        if (r.checkBlock != 0) revert MediationAlreadyRequested(dealId);
        r.checkBlock = uint64(block.number);
        emit MediationRequested(dealId, uint64(block.number));
    }

    function assign(bytes32 dealId, address[] calldata mediators) external onlyController returns (address) {
        Request storage r = _requests[dealId];
        if (r.mediator != address(0)) return r.mediator;
        address chosen = drawMediator(dealId, mediators);
        r.mediator = chosen;
        emit MediatorAssigned(dealId, chosen);
        return chosen;
    }
}
