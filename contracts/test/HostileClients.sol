// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILilypadJobManager} from "../interfaces/ILilypadJobManager.sol";

/// Test-only clients that misbehave in their callbacks.
contract RevertingClient {
    ILilypadJobManager public immutable jobManager;

    constructor(ILilypadJobManager jobManager_) {
        jobManager = jobManager_;
    }

    function run(address payee) external returns (uint256) {
        string[] memory inputs = new string[](1);
        inputs[0] = "Message=boom";
        return jobManager.runJob("cowsay:v0.0.1", inputs, payee);
    }

    function submitResults(uint256, string calldata, string calldata) external pure {
        revert("client refuses results");
    }
}

contract GasGuzzlerClient {
    ILilypadJobManager public immutable jobManager;
    uint256 public sink;

    constructor(ILilypadJobManager jobManager_) {
        jobManager = jobManager_;
    }

    function run(address payee) external returns (uint256) {
        string[] memory inputs = new string[](0);
        return jobManager.runJob("cowsay:v0.0.1", inputs, payee);
    }

    function submitResults(uint256, string calldata, string calldata) external {
        while (true) {
            sink++;
        }
    }

    /// Claims to support the failure callback, then burns all gas in it too.
    function supportsInterface(bytes4) external pure returns (bool) {
        return true;
    }

    function jobFailed(uint256, string calldata) external {
        while (true) {
            sink++;
        }
    }
}

interface IAgree {
    function agree(bytes calldata) external;
}

/// A contract a victim "merely calls": it tries to act on the victim's behalf
/// (the reference contracts authorised by the transaction origin, not msg.sender).
contract PhishingContract {
    function innocentLooking(address target, bytes calldata data) external returns (bool ok, bytes memory ret) {
        (ok, ret) = target.call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
    }
}
