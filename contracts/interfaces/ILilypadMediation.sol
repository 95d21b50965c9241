// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Verdict} from "./LilypadTypes.sol";

/// @title Mediation panels for checked (or audited) results.
/// @notice A checked result is judged by a panel of `size` distinct mediators
/// drawn from the deal's list with the hash of a block sealed *after* the
/// request (unknown to everybody when they act). The draw is fixed on-chain by
/// the first `assign` (a mediator's commit or verdict, or anyone's
/// `assignMediator`). If nobody fixes it while the EVM still knows that hash
/// (256 blocks), the draw is not computed from any predictable fallback: the
/// next `assign` draws afresh from a later block's hash, so waiting can only
/// replace one unknown draw with another, never choose the panel.
/// A panel of one gives its verdict directly. A larger panel (odd, up to
/// MAX_CONSORTIUM) votes by commit-reveal: each member commits
/// keccak256(abi.encode(dealId, round, mediator, verdict, resultCid, salt)),
/// then reveals; the commitment binds the mediator's address, so copying
/// another's commitment or reveal cannot count. A round that ends without a
/// majority is followed by a fresh draw (up to MAX_ROUNDS rounds), excluding
/// mediators already slashed on this deal.
interface ILilypadMediation {
    struct Panel {
        uint32 drawBlock; // the block whose hash draws this round's members
        uint8 round; // 1-based; 0 = never requested
        uint8 size; // k
        uint8 commits; // this round
        uint8 reveals; // this round
        bool assigned; // members of this round fixed
        bool audited; // a random audit: the fee came from the jackpot
    }

    struct Vote {
        bytes32 commitment;
        uint8 round; // the round of the commitment
        Verdict verdict; // revealed verdict (None until revealed)
        bool slashed; // slashed on this deal (at most once per deal)
    }

    event MediationRequested(bytes32 indexed dealId, uint8 round, uint32 drawBlock, uint8 size, bool audited);
    event PanelAssigned(bytes32 indexed dealId, uint8 round, address[] members);
    event PanelRedrawn(bytes32 indexed dealId, uint8 round, uint32 drawBlock);
    event VerdictCommitted(bytes32 indexed dealId, address indexed mediator, uint8 round, bytes32 commitment);
    event VerdictRevealed(
        bytes32 indexed dealId, address indexed mediator, uint8 round, Verdict verdict, bytes32 resultCid
    );

    function getPanel(bytes32 dealId) external view returns (Panel memory panel, address[] memory members);
    function getVote(bytes32 dealId, address mediator) external view returns (Vote memory);
    function drawPanel(bytes32 dealId, address[] calldata mediators, uint256 minStake)
        external
        view
        returns (address[] memory);
    function commitment(bytes32 dealId, uint8 round, address mediator, Verdict verdict, bytes32 resultCid, bytes32 salt)
        external
        pure
        returns (bytes32);
}
