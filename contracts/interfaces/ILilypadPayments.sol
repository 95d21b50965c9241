// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Escrow for every deal, the jackpot and the treasury. Only the controller may move funds.
/// @notice Each deal has its own escrow account; a payout can only come out of
/// the deal it belongs to (plus what the controller brings in from the jackpot
/// or from slashed stakes for that settlement), every deal is settled exactly
/// once, and the token balance held here equals the sum of open escrows plus
/// the jackpot plus the treasury's unclaimed balance.
interface ILilypadPayments {
    struct Escrow {
        uint96 jobCreator; // payment collateral + judging collateral (+ mediation fee once checked or audited);
        // once settled: what the settlement paid the job creator
        uint96 resourceProvider; // submit collateral, then results collateral
        bool settled;
    }

    /// @dev The jackpot and the treasury's unclaimed balance share one slot.
    struct Pot {
        uint128 jackpot;
        uint128 treasury;
    }

    /// @dev One settlement: what each party gets. `fromJackpot` and
    /// `fromSlashes` are what comes in besides the escrow (a reward paid out of
    /// the jackpot; stakes the registry has just sent here); what goes out must
    /// equal the escrow plus them.
    struct Payout {
        address jobCreator;
        uint256 toJobCreator;
        address resourceProvider;
        uint256 toResourceProvider;
        address[] mediators;
        uint256 toEachMediator;
        uint256 toJackpot;
        uint256 toTreasury;
        uint256 fromJackpot;
        uint256 fromSlashes;
    }

    event Escrowed(bytes32 indexed dealId, address indexed from, uint256 amount, bool jobCreatorSide);
    event Refunded(bytes32 indexed dealId, address indexed to, uint256 amount);
    event Settled(
        bytes32 indexed dealId,
        address indexed jobCreator,
        uint256 toJobCreator,
        address indexed resourceProvider,
        uint256 toResourceProvider,
        address[] mediators,
        uint256 toEachMediator
    );
    event JackpotChanged(bytes32 indexed dealId, uint256 added, uint256 taken, uint256 jackpot);
    event TreasuryChanged(bytes32 indexed dealId, uint256 added, uint256 claimed, uint256 treasury);

    function token() external view returns (address);
    function getEscrow(bytes32 dealId) external view returns (Escrow memory);
    function getPot() external view returns (Pot memory);
    function escrowJobCreator(bytes32 dealId, address from, uint256 amount) external;
    function escrowResourceProvider(bytes32 dealId, address from, uint256 amount) external;
    function setResourceProviderEscrow(bytes32 dealId, address resourceProvider, uint256 newAmount) external;
    function fundFromJackpot(bytes32 dealId, uint256 amount) external;
    function creditJackpot(bytes32 dealId, uint256 amount) external;
    function donateToJackpot(address from, uint256 amount) external;
    function claimTreasury(address to) external returns (uint256);
    function settle(bytes32 dealId, Payout calldata payout) external;
}
