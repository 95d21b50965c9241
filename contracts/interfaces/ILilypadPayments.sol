// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Escrow for every deal. Only the controller may move funds.
/// @notice Each deal has its own escrow account; a payout can only come out of
/// the deal it belongs to, every deal is settled exactly once, and the token
/// balance held here equals the sum of open escrows.
interface ILilypadPayments {
    struct Escrow {
        uint96 jobCreator; // payment collateral + judging collateral (+ mediation fee once checked)
        uint96 resourceProvider; // submit collateral, then results collateral
        bool settled;
    }

    event Escrowed(bytes32 indexed dealId, address indexed from, uint256 amount, bool jobCreatorSide);
    event Refunded(bytes32 indexed dealId, address indexed to, uint256 amount);
    event Settled(
        bytes32 indexed dealId,
        address indexed jobCreator,
        uint256 toJobCreator,
        address indexed resourceProvider,
        uint256 toResourceProvider,
        address mediator,
        uint256 toMediator
    );

    function token() external view returns (address);
    function getEscrow(bytes32 dealId) external view returns (Escrow memory);

    function escrowJobCreator(bytes32 dealId, address from, uint256 amount) external;
    function escrowResourceProvider(bytes32 dealId, address from, uint256 amount) external;
    function setResourceProviderEscrow(bytes32 dealId, address resourceProvider, uint256 newAmount) external;
    function settle(
        bytes32 dealId,
        address jobCreator,
        uint256 toJobCreator,
        address resourceProvider,
        uint256 toResourceProvider,
        address mediator,
        uint256 toMediator
    ) external;
}
