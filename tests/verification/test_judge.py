"""The mediator's entry point (lilypad.verification.verdicts.judge_result) on real runs of the
built-in modules: honest variation is accepted, forgeries and inflated instruction counts are
rejected, and a module whose own runs disagree is non-deterministic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docker
import pytest

from lilypad.executor.docker_runner import RunResult, run_module
from lilypad.modules.spec import ModuleSpec, render_spec
from lilypad.results.cid import directory_cid
from lilypad.verification.comparators import compare_under
from lilypad.verification.spec import VerificationSpec
from lilypad.verification.verdicts import Verdict, judge_result

MODULES = Path(__file__).resolve().parents[2] / "modules"


def render(name: str, **inputs: str) -> ModuleSpec:
    return render_spec((MODULES / name / "lilypad_module.json.tmpl").read_text(), inputs)


def runs(name: str, spec: ModuleSpec, where: Path, client: docker.DockerClient, count: int) -> list[RunResult]:
    return [run_module(spec, module_dir=MODULES / name, work_dir=where / f"run{index}", client=client)
            for index in range(count)]


def forge(result: RunResult, where: Path, rel: str, change) -> Path:
    copy = where / "forged"
    shutil.copytree(result.result_dir, copy)
    path = copy / rel
    path.write_text(change(path.read_text()))
    return copy


@pytest.fixture(scope="module")
def jitter(tmp_path_factory: pytest.TempPathFactory, client: docker.DockerClient) -> list[RunResult]:
    return runs("jitter", render("jitter"), tmp_path_factory.mktemp("jitter"), client, 3)


def test_jitter_runs_differ_yet_are_equal_under_its_comparator(jitter: list[RunResult]) -> None:
    spec = render("jitter").verification
    assert len({run.cid for run in jitter}) == 3  # never byte-identical (the log, the noise)
    for other in jitter[1:]:
        assert compare_under(spec.comparator, jitter[0].result_dir, other.result_dir).equal


def test_jitter_honest_provider_is_accepted(jitter: list[RunResult]) -> None:
    spec = render("jitter").verification
    provider = jitter[2]
    claim = spec.metering.claim(provider.duration_s)
    judgement = judge_result(spec, jitter[:2], provider.result_dir, provider.cid, claim, module_dir=None)
    assert judgement.verdict is Verdict.ACCEPT, judgement.reason


def test_jitter_forged_result_is_rejected(jitter: list[RunResult], tmp_path: Path) -> None:
    spec = render("jitter").verification

    def off_by_one(text: str) -> str:
        data = json.loads(text)
        data["mean"] += 1.0
        return json.dumps(data)

    forged = forge(jitter[2], tmp_path, "outputs/result.json", off_by_one)
    judgement = judge_result(spec, jitter[:2], forged, directory_cid(forged), 1, module_dir=None)
    assert judgement.verdict is Verdict.REJECT
    assert "outputs/result.json" in judgement.reason


def test_jitter_inflated_instruction_count_is_rejected(jitter: list[RunResult]) -> None:
    spec = render("jitter").verification
    allowed = spec.metering.allowed([run.duration_s for run in jitter[:2]])
    assert allowed == 3 * max(spec.metering.claim(run.duration_s) for run in jitter[:2])  # 200 % tolerance
    provider = jitter[2]
    ok = judge_result(spec, jitter[:2], provider.result_dir, provider.cid, allowed, module_dir=None)
    assert ok.verdict is Verdict.ACCEPT
    judgement = judge_result(spec, jitter[:2], provider.result_dir, provider.cid, allowed + 1, module_dir=None)
    assert judgement.verdict is Verdict.REJECT
    assert judgement.reason == f"claimed {allowed + 1} instructions, the mediator measured at most {allowed}"


def test_a_missing_provider_result_is_rejected_when_files_are_needed(jitter: list[RunResult]) -> None:
    spec = render("jitter").verification
    judgement = judge_result(spec, jitter[:2], None, jitter[2].cid, 1, module_dir=None)
    assert judgement.verdict is Verdict.REJECT and "unavailable" in judgement.reason


def test_verified_sort_is_judged_by_its_verifier(tmp_path: Path, client: docker.DockerClient) -> None:
    spec = render("verified-sort")
    reruns = runs("verified-sort", spec, tmp_path, client, 3)
    for other in reruns[1:]:
        assert compare_under(spec.verification.comparator, reruns[0].result_dir, other.result_dir,
                             module_dir=MODULES / "verified-sort", docker_client=client).equal
    provider = reruns[2]
    honest = judge_result(spec.verification, reruns[:2], provider.result_dir, provider.cid, 1,
                          module_dir=MODULES / "verified-sort", docker_client=client)
    assert honest.verdict is Verdict.ACCEPT, honest.reason
    forged = forge(provider, tmp_path, "outputs/sorted.txt", lambda text: text.replace("fox", "cat"))
    judgement = judge_result(spec.verification, reruns[:2], forged, directory_cid(forged), 1,
                             module_dir=MODULES / "verified-sort", docker_client=client)
    assert judgement.verdict is Verdict.REJECT and "the words differ" in judgement.reason


def test_nondeterministic_module_is_the_job_creators_fault(tmp_path: Path, client: docker.DockerClient) -> None:
    spec = render("nondeterministic")
    assert spec.verification == VerificationSpec()  # the default: exact, 2 reruns, 1 instruction a job
    reruns = runs("nondeterministic", spec, tmp_path, client, 2)
    judgement = judge_result(spec.verification, reruns, None, "bafy-provider", 1, module_dir=None)
    assert judgement.verdict is Verdict.NON_DETERMINISTIC
    assert "disagree with each other" in judgement.reason


def test_exact_module_compares_cids_without_the_providers_files(tmp_path: Path,
                                                                client: docker.DockerClient) -> None:
    spec = render("stats", Numbers="3,1,4")
    reruns = runs("stats", spec, tmp_path, client, 2)
    cid = reruns[0].cid
    accepted = judge_result(spec.verification, reruns, None, cid, 1, module_dir=None)
    assert accepted.verdict is Verdict.ACCEPT
    rejected = judge_result(spec.verification, reruns, None, cid[:-2] + "aa", 1, module_dir=None)
    assert rejected.verdict is Verdict.REJECT
    over = judge_result(spec.verification, reruns, None, cid, 2, module_dir=None)
    assert over.verdict is Verdict.REJECT and "claimed 2 instructions" in over.reason
    with pytest.raises(ValueError, match="at least two runs"):
        judge_result(spec.verification, reruns[:1], None, cid, 1, module_dir=None)
