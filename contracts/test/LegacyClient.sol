// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Written only against Lilypad's *published* interfaces (memory strings, no
// ERC-165, no failure callback): proves such clients work unchanged.
interface IPublishedLilypadJobManager {
    function runJob(string memory module, string[] memory inputs, address payee) external returns (uint256);
}

interface IPublishedLilypadJobClient {
    function submitResults(uint256 id, string memory dealId, string memory dataId) external;
}

contract LegacyClient is IPublishedLilypadJobClient {
    address public jobManager;
    mapping(uint256 => string) public results;

    constructor(address jobManager_) {
        jobManager = jobManager_;
    }

    /// Pays for its own jobs: the contract itself holds tokens and approved the job creator.
    function runCowsay(string memory message) public returns (uint256) {
        string[] memory inputs = new string[](1);
        inputs[0] = string(abi.encodePacked("Message=", message));
        return IPublishedLilypadJobManager(jobManager).runJob("cowsay:v0.0.1", inputs, address(this));
    }

    function approve(address token, address spender, uint256 amount) external {
        (bool ok,) = token.call(abi.encodeWithSignature("approve(address,uint256)", spender, amount));
        require(ok, "approve failed");
    }

    function submitResults(uint256 id, string memory, string memory dataId) external override {
        require(msg.sender == jobManager, "only the job manager");
        results[id] = dataId;
    }
}
