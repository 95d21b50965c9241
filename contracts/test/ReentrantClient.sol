// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ILilypadJobRunner, JobOptions} from "../interfaces/ILilypadJobRunner.sol";

/// Test-only client that re-enters the job creator from its callbacks (submitResults and
/// jobFailed): complete, cancelJob, timeoutJob, submitResults and runJobWithOptions, each in a
/// try/catch, recording which got through.
contract ReentrantClient {
    ILilypadJobRunner public immutable jobManager;
    address public payee;
    JobOptions public options;
    uint256 public attempts;
    uint256 public succeeded;
    uint256 public callbacks;

    constructor(ILilypadJobRunner jobManager_) {
        jobManager = jobManager_;
    }

    function run(address payee_) external returns (uint256) {
        payee = payee_;
        options = jobManager.getDefaults();
        string[] memory inputs = new string[](0);
        return jobManager.runJobWithOptions("cowsay:v0.0.1", inputs, payee_, options);
    }

    function _reenter(uint256 id) private {
        attempts += 5;
        JobOptions memory o = options;
        try jobManager.complete(id, o) { succeeded++; } catch {}
        try jobManager.cancelJob(id, o) { succeeded++; } catch {}
        try jobManager.timeoutJob(id, o) { succeeded++; } catch {}
        try IResultsEntry(address(jobManager)).submitResults(id, "0xdeal", "bafyagain") { succeeded++; } catch {}
        string[] memory inputs = new string[](0);
        try jobManager.runJobWithOptions("cowsay:v0.0.1", inputs, payee, o) { succeeded++; } catch {}
    }

    function cancel(uint256 id) external {
        jobManager.cancelJob(id, options);
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

interface IResultsEntry {
    function submitResults(uint256 id, string calldata dealId, string calldata dataId) external;
}
