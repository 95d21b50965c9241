// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title The callback a client contract implements to receive results
/// (ABI-compatible with Lilypad's published `ILilypadJobClient`).
interface ILilypadJobClient {
    function submitResults(uint256 id, string calldata dealId, string calldata dataId) external;
}

/// @title Optional callback for jobs that end without a result.
/// @notice Clients written for the original interface need not implement it:
/// the job creator looks for it through ERC-165 and never lets a failing
/// callback block the refund.
interface ILilypadJobFailureClient {
    function jobFailed(uint256 id, string calldata reason) external;
}
