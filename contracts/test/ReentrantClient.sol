// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILilypadJobManager} from "../interfaces/ILilypadJobManager.sol";

interface IJobCreatorEntry {
    function submitResults(uint256 id, string calldata dealId, string calldata dataId) external;
    function failJob(uint256 id, string calldata reason) external;
    function timeoutJob(uint256 id) external;
    function takeFunds(uint256 id) external;
}

/// Test-only client that re-enters the job creator from its callbacks
/// (submitResults and jobFailed): submitResults, failJob, timeoutJob,
/// takeFunds and runJob, each in a try/catch, recording which got through.
contract ReentrantClient {
    ILilypadJobManager public immutable jobManager;
    address public payee;
    uint256 public attempts;
    uint256 public succeeded;
    uint256 public callbacks;

    constructor(ILilypadJobManager jobManager_) {
        jobManager = jobManager_;
    }

    function run(address payee_) external returns (uint256) {
        payee = payee_;
        string[] memory inputs = new string[](0);
        return jobManager.runJob("cowsay:v0.0.1", inputs, payee_);
    }

    function _reenter(uint256 id) private {
        IJobCreatorEntry target = IJobCreatorEntry(address(jobManager));
        attempts += 5;
        try target.submitResults(id, "0xdeal", "bafyagain") { succeeded++; } catch {}
        try target.failJob(id, "re-entered") { succeeded++; } catch {}
        try target.timeoutJob(id) { succeeded++; } catch {}
        try target.takeFunds(id) { succeeded++; } catch {}
        string[] memory inputs = new string[](0);
        try jobManager.runJob("cowsay:v0.0.1", inputs, payee) { succeeded++; } catch {}
    }

    function submitResults(uint256 id, string calldata, string calldata) external {
        callbacks++;
        _reenter(id);
    }

    function supportsInterface(bytes4 interfaceId) external pure returns (bool) {
        return interfaceId != 0xffffffff; // ERC-165: claims the failure callback
    }

    function jobFailed(uint256 id, string calldata) external {
        callbacks++;
        _reenter(id);
    }
}
