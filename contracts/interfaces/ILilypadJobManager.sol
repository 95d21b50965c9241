// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The interface client contracts call: ABI-compatible with Lilypad's
/// published `ILilypadJobManager`, so contracts written against it work unchanged.
interface ILilypadJobManager {
    event JobAdded(uint256 id, address calling_contract, address payee, string module, string[] inputs);

    function runJob(string calldata module, string[] calldata inputs, address payee) external returns (uint256);
    function submitResults(uint256 id, string calldata dealId, string calldata dataId) external;

    function getTokenAddress() external view returns (address);
    function getRequiredDeposit() external view returns (uint256);
    function getControllerAddress() external view returns (address);
}
