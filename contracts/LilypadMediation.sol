// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILilypadMediation} from "./interfaces/ILilypadMediation.sol";
import {LilypadMediatorRegistry} from "./LilypadMediatorRegistry.sol";
import {Verdict} from "./interfaces/LilypadTypes.sol";
import {OnlyController} from "./OnlyController.sol";

/// @title LilypadMediation: who judges a checked result, and how they voted.
/// @notice See ILilypadMediation for the draw and the commit-reveal rules. This
/// contract keeps the panel and the votes; the controller keeps the windows,
/// the money and the slashing (it alone may write here).
contract LilypadMediation is ILilypadMediation, OnlyController {
    uint256 public constant MAX_CONSORTIUM = 7;
    uint256 public constant MAX_ROUNDS = 3;

    LilypadMediatorRegistry private immutable _registry;
    mapping(bytes32 dealId => Panel) private _panels;
    mapping(bytes32 dealId => address[]) private _members;
    mapping(bytes32 dealId => mapping(address mediator => Vote)) private _votes;

    error MediationNotRequested(bytes32 dealId);
    error MediationAlreadyRequested(bytes32 dealId);
    error DrawNotReady(bytes32 dealId, uint32 drawBlock);
    error DrawExpired(bytes32 dealId, uint32 drawBlock);
    error NotEnoughMediators(bytes32 dealId, uint256 eligible, uint256 size);
    error NotOnPanel(bytes32 dealId, address caller);
    error AlreadyCommitted(bytes32 dealId, address mediator);
    error NotCommitted(bytes32 dealId, address mediator);
    error AlreadyRevealed(bytes32 dealId, address mediator);
    error CommitmentMismatch(bytes32 dealId, address mediator);
    error InvalidVerdict();

    constructor(LilypadMediatorRegistry registry_) {
        _registry = registry_;
    }

    // ------------------------------------------------------------ views

    function getPanel(bytes32 dealId) external view returns (Panel memory panel, address[] memory members) {
        return (_panels[dealId], _members[dealId]);
    }

    function getVote(bytes32 dealId, address mediator) external view returns (Vote memory) {
        return _votes[dealId][mediator];
    }

    function commitment(bytes32 dealId, uint8 round, address mediator, Verdict verdict, bytes32 resultCid, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(dealId, round, mediator, verdict, resultCid, salt));
    }

    /// @notice The members the current round draws (or drew). Reverts until the
    /// draw block is sealed, once its hash is forgotten (then `assign` draws
    /// afresh), and when fewer than `size` mediators are eligible. Eligible:
    /// listed, not slashed on this deal, and (when `minStake` > 0) staked at
    /// least `minStake` and not unbonding.
    function drawPanel(bytes32 dealId, address[] calldata mediators, uint256 minStake)
        public
        view
        returns (address[] memory chosen)
    {
        Panel memory p = _panels[dealId];
        if (p.round == 0) revert MediationNotRequested(dealId);
        if (p.assigned) return _members[dealId];
        if (block.number <= p.drawBlock) revert DrawNotReady(dealId, p.drawBlock);
        bytes32 seed = blockhash(p.drawBlock);
        if (seed == bytes32(0)) revert DrawExpired(dealId, p.drawBlock);
        address[] memory pool = _eligible(dealId, mediators, minStake);
        if (pool.length < p.size) revert NotEnoughMediators(dealId, pool.length, p.size);
        return _draw(dealId, p, pool, seed);
    }

    /// @notice How many of `mediators` a new round could draw from.
    function eligibleCount(bytes32 dealId, address[] calldata mediators, uint256 minStake)
        external
        view
        returns (uint256)
    {
        return _eligible(dealId, mediators, minStake).length;
    }

    // ------------------------------------------------------------ controller only

    function request(bytes32 dealId, uint8 size, bool audited) external onlyController {
        Panel storage p = _panels[dealId];
        if (p.round != 0) revert MediationAlreadyRequested(dealId);
        p.round = 1;
        p.size = size;
        p.audited = audited;
        p.drawBlock = uint32(block.number);
        emit MediationRequested(dealId, 1, uint32(block.number), size, audited);
    }

    /// @notice Fix this round's members. Returns them, or an empty list (and
    /// fixes nothing) when the draw block's hash was forgotten — the round is
    /// then redrawn from the current block, whose hash the caller cannot know —
    /// or when fewer than `size` mediators are eligible (the controller then
    /// ends the round without a panel).
    function assign(bytes32 dealId, address[] calldata mediators, uint256 minStake)
        external
        onlyController
        returns (address[] memory members)
    {
        Panel storage p = _panels[dealId];
        if (p.assigned) return _members[dealId];
        if (p.round == 0) revert MediationNotRequested(dealId);
        if (block.number <= p.drawBlock) revert DrawNotReady(dealId, p.drawBlock);
        bytes32 seed = blockhash(p.drawBlock);
        if (seed == bytes32(0)) {
            p.drawBlock = uint32(block.number);
            emit PanelRedrawn(dealId, p.round, uint32(block.number));
            return members;
        }
        address[] memory pool = _eligible(dealId, mediators, minStake);
        if (pool.length < p.size) return members;
        members = _draw(dealId, p, pool, seed);
        _members[dealId] = members;
        p.assigned = true;
        emit PanelAssigned(dealId, p.round, members);
    }

    function commit(bytes32 dealId, address mediator, bytes32 hash) external onlyController {
        Panel storage p = _panels[dealId];
        _onPanel(dealId, mediator);
        Vote storage v = _votes[dealId][mediator];
        if (v.round == p.round && v.commitment != bytes32(0)) revert AlreadyCommitted(dealId, mediator);
        v.commitment = hash;
        v.round = p.round;
        v.verdict = Verdict.None;
        p.commits += 1;
        emit VerdictCommitted(dealId, mediator, p.round, hash);
    }

    function reveal(bytes32 dealId, address mediator, Verdict verdict, bytes32 resultCid, bytes32 salt)
        external
        onlyController
    {
        if (verdict == Verdict.None) revert InvalidVerdict();
        Panel storage p = _panels[dealId];
        Vote storage v = _votes[dealId][mediator];
        if (v.round != p.round || v.commitment == bytes32(0)) revert NotCommitted(dealId, mediator);
        if (v.verdict != Verdict.None) revert AlreadyRevealed(dealId, mediator);
        if (commitment(dealId, p.round, mediator, verdict, resultCid, salt) != v.commitment) {
            revert CommitmentMismatch(dealId, mediator);
        }
        v.verdict = verdict;
        p.reveals += 1;
        emit VerdictRevealed(dealId, mediator, p.round, verdict, resultCid);
    }

    /// @notice The round's outcome: the verdict more than half the panel
    /// revealed (None if none did), the members who revealed it, and the
    /// members to slash (silent ones, and with a majority those who voted
    /// otherwise), never one already slashed on this deal.
    function tally(bytes32 dealId)
        external
        view
        returns (Verdict majority, address[] memory winners, address[] memory offenders)
    {
        Panel memory p = _panels[dealId];
        address[] memory members = _members[dealId];
        uint256[4] memory counts;
        for (uint256 i = 0; i < members.length; ++i) {
            Vote memory v = _votes[dealId][members[i]];
            if (v.round == p.round) counts[uint8(v.verdict)] += 1;
        }
        for (uint8 verdict = 1; verdict < 4; ++verdict) {
            if (counts[verdict] * 2 > p.size) majority = Verdict(verdict);
        }
        winners = new address[](majority == Verdict.None ? 0 : counts[uint8(majority)]);
        offenders = new address[](members.length);
        uint256 w;
        uint256 o;
        for (uint256 i = 0; i < members.length; ++i) {
            Vote memory v = _votes[dealId][members[i]];
            Verdict cast = v.round == p.round ? v.verdict : Verdict.None;
            if (cast != Verdict.None && cast == majority) {
                winners[w++] = members[i];
            } else if (!v.slashed && (cast == Verdict.None || majority != Verdict.None)) {
                offenders[o++] = members[i];
            }
        }
        assembly {
            mstore(offenders, o)
        }
    }

    /// @notice Record that `mediator` was slashed on this deal; false if it already was.
    function markSlashed(bytes32 dealId, address mediator) external onlyController returns (bool) {
        Vote storage v = _votes[dealId][mediator];
        if (v.slashed) return false;
        v.slashed = true;
        return true;
    }

    /// @notice Start the next round: a fresh draw from the current block.
    function nextRound(bytes32 dealId) external onlyController {
        Panel storage p = _panels[dealId];
        p.round += 1;
        p.drawBlock = uint32(block.number);
        p.assigned = false;
        p.commits = 0;
        p.reveals = 0;
        delete _members[dealId];
        emit MediationRequested(dealId, p.round, uint32(block.number), p.size, p.audited);
    }

    // ------------------------------------------------------------ internals

    /// @dev Partial Fisher-Yates over `pool`: `size` distinct members, each position from its own hash.
    function _draw(bytes32 dealId, Panel memory p, address[] memory pool, bytes32 seed)
        private
        pure
        returns (address[] memory chosen)
    {
        chosen = new address[](p.size);
        for (uint256 i = 0; i < p.size; ++i) {
            uint256 j = i + uint256(keccak256(abi.encode(seed, dealId, p.round, i))) % (pool.length - i);
            (pool[i], pool[j]) = (pool[j], pool[i]);
            chosen[i] = pool[i];
        }
    }

    function _onPanel(bytes32 dealId, address mediator) private view {
        if (!_panels[dealId].assigned) revert NotOnPanel(dealId, mediator);
        address[] storage members = _members[dealId];
        for (uint256 i = 0; i < members.length; ++i) {
            if (members[i] == mediator) return;
        }
        revert NotOnPanel(dealId, mediator);
    }

    function _eligible(bytes32 dealId, address[] calldata mediators, uint256 minStake)
        private
        view
        returns (address[] memory pool)
    {
        pool = new address[](mediators.length);
        uint256 n;
        for (uint256 i = 0; i < mediators.length; ++i) {
            address m = mediators[i];
            if (_votes[dealId][m].slashed) continue;
            if (minStake != 0 && !_registry.isStaked(m, minStake)) continue;
            pool[n++] = m;
        }
        assembly {
            mstore(pool, n)
        }
    }
}
