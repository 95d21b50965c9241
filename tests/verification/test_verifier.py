"""The verifier container (lilypad.verification.verifier) on the real engine: it decides
equivalence, and a verifier that hangs, floods its output, tries the network or tries to
write the results it is given cannot hurt the mediator."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from lilypad.exceptions import VerifierContextError
from lilypad.executor.docker_runner import JOB_LABEL, run_sandboxed
from lilypad.verification.spec import VerificationSpec, VerifierComparator
from lilypad.verification.verifier import VERIFIER_LIMITS, build_verifier, run_verifier

MakeResult = Callable[..., Path]  # the make_result fixture (conftest.py)
MakeVerifier = Callable[[str], Path]  # the make_verifier fixture

MODULES = Path(__file__).resolve().parents[2] / "modules"
SORT = MODULES / "verified-sort"


def verifier(context: str = "verifier", timeout: int = 60) -> VerifierComparator:
    spec = VerificationSpec.model_validate({"comparator": {"type": "verifier", "context": context,
                                                           "timeoutSeconds": timeout}})
    assert isinstance(spec.comparator, VerifierComparator)
    return spec.comparator


def no_containers_left(client: docker.DockerClient, image: str) -> bool:
    return not [c for c in client.containers.list(all=True, filters={"label": JOB_LABEL})
                if c.attrs.get("Config", {}).get("Image") == image]


def sorted_result(make_result: MakeResult, name: str, words: list[str]) -> Path:
    return make_result(name, outputs={"sorted.txt": "".join(w + "\n" for w in words).encode()},
                       stdout=b"verified-sort: sorted 4 words by length into outputs/sorted.txt\n")


def test_verified_sort_verifier_accepts_equal_length_reorderings(make_result: MakeResult,
                                                                client: docker.DockerClient) -> None:
    a = sorted_result(make_result, "a", ["ox", "cat", "dog", "horse"])
    honest = sorted_result(make_result, "b", ["ox", "dog", "cat", "horse"])
    verdict = run_verifier(verifier(), a, honest, module_dir=SORT, client=client)
    assert verdict.equal, verdict.reason
    assert "verifier container says equivalent" in verdict.reason


@pytest.mark.parametrize(("words", "why"), [
    (["ox", "cat", "cow", "horse"], "the words differ"),
    (["cat", "ox", "dog", "horse"], "not sorted by length"),
    (["ox", "cat", "dog"], "the words differ"),
])
def test_verified_sort_verifier_rejects_forgeries(make_result: MakeResult, client: docker.DockerClient,
                                                 words: list[str], why: str) -> None:
    a = sorted_result(make_result, "a", ["ox", "cat", "dog", "horse"])
    forged = sorted_result(make_result, "b", words)
    verdict = run_verifier(verifier(), a, forged, module_dir=SORT, client=client)
    assert not verdict.equal
    assert "exited with status 1" in verdict.reason and why in verdict.reason


def test_a_hanging_verifier_is_killed_at_its_timeout(make_result: MakeResult, make_verifier: MakeVerifier,
                                                    client: docker.DockerClient) -> None:
    module = make_verifier("sleep 1000\n")
    a, b = make_result("a"), make_result("b", stdout=b"other\n")
    image = build_verifier(verifier(timeout=2), module, client)
    started = time.monotonic()
    verdict = run_verifier(verifier(timeout=2), a, b, module_dir=module, client=client)
    elapsed = time.monotonic() - started
    assert not verdict.equal
    assert verdict.reason == "not equivalent: the verifier failed (killed at its 2s timeout)"
    assert elapsed < 20, elapsed
    assert no_containers_left(client, image)


def test_a_verifier_flooding_its_output_is_capped(make_result: MakeResult, make_verifier: MakeVerifier,
                                                 client: docker.DockerClient, tmp_path: Path) -> None:
    module = make_verifier("head -c 50000000 /dev/zero; head -c 50000000 /dev/zero >&2; exit 0\n")
    a, b = make_result("a"), make_result("b", stdout=b"other\n")
    image = build_verifier(verifier(), module, client)
    run = run_sandboxed(image, work_dir=tmp_path / "run", read_only_mounts={"/results/a": a, "/results/b": b},
                        timeout=60, limits=VERIFIER_LIMITS, client=client)
    assert run.exit_code == 0 and run.stdout_truncated and run.stderr_truncated
    assert os.path.getsize(tmp_path / "run" / "stdout") == VERIFIER_LIMITS.max_log_bytes
    assert os.path.getsize(tmp_path / "run" / "stderr") == VERIFIER_LIMITS.max_log_bytes
    assert run_verifier(verifier(), a, b, module_dir=module, client=client).equal  # it said 0: its call


def test_a_verifier_has_no_network(make_result: MakeResult, make_verifier: MakeVerifier,
                                   client: docker.DockerClient, tmp_path: Path) -> None:
    script = ("ls /sys/class/net\n"
              "if wget -q -T 3 -O /dev/null http://1.1.1.1/ || nc -w 3 8.8.8.8 53 </dev/null; then exit 0; fi\n"
              "echo 'no network' >&2; exit 7\n")
    module = make_verifier(script)
    a, b = make_result("a"), make_result("b", stdout=b"other\n")
    image = build_verifier(verifier(), module, client)
    run = run_sandboxed(image, work_dir=tmp_path / "run", read_only_mounts={"/results/a": a, "/results/b": b},
                        timeout=60, limits=VERIFIER_LIMITS, client=client)
    assert (tmp_path / "run" / "stdout").read_text() == "lo\n"  # only the loopback interface
    assert run.exit_code == 7
    verdict = run_verifier(verifier(), a, b, module_dir=module, client=client)
    assert not verdict.equal and verdict.reason == "not equivalent: the verifier exited with status 7: no network"


def test_the_results_are_mounted_read_only(make_result: MakeResult, make_verifier: MakeVerifier,
                                           client: docker.DockerClient) -> None:
    script = ("ls /results/a/outputs/x.txt /results/b/stdout >/dev/null || exit 3\n"
              "if echo forged > /results/b/outputs/x.txt || touch /results/a/new; then exit 0; fi\n"
              "echo 'read-only' >&2; exit 4\n")
    module = make_verifier(script)
    a = make_result("a", outputs={"x.txt": b"mine"})
    b = make_result("b", outputs={"x.txt": b"theirs"})
    verdict = run_verifier(verifier(), a, b, module_dir=module, client=client)
    assert not verdict.equal and "status 4: read-only" in verdict.reason
    assert (b / "outputs" / "x.txt").read_bytes() == b"theirs"
    assert not (a / "new").exists()


def test_a_verifier_context_must_stay_inside_the_module(tmp_path: Path, make_verifier: MakeVerifier,
                                                       client: docker.DockerClient) -> None:
    module = make_verifier("exit 0\n")
    (module / "escape").symlink_to(tmp_path)  # a link out of the module directory
    with pytest.raises(VerifierContextError, match="outside the module directory"):
        build_verifier(verifier("escape"), module, client)
    with pytest.raises(VerifierContextError, match="no Dockerfile"):
        build_verifier(verifier("."), module, client)
    with pytest.raises(VerifierContextError, match="no module directory"):
        build_verifier(verifier(), None, client)
