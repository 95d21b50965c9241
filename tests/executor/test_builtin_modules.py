"""The built-in modules in ``modules/``, rendered with ``render_spec`` and run on the real engine.

Each module's image is built once per session (``images`` fixture) from its
``Dockerfile``; images are tagged by the hash of the module's files, so later
sessions reuse them. Without a reachable engine these tests fail, telling you
to run ``make setup``.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from lilypad.exceptions import DockerUnavailableError, GPUUnavailableError
from lilypad.executor.docker_runner import (
    JOB_LABEL,
    RunResult,
    docker_client,
    ensure_image,
    module_image_tag,
    required_gpus,
    run_module,
)
from lilypad.executor.gpu import detect_gpus
from lilypad.modules.spec import ModuleSpec, parse_spec, render_spec
from lilypad.results.cid import directory_cid

MODULES = Path(__file__).resolve().parents[2] / "modules"
BUILTIN = ("cowsay", "stats", "gpu-probe", "nondeterministic", "jitter", "verified-sort")
LOCAL_BASES = ("lilypad/busybox:1", "lilypad/python:3-bookworm")
SESSION = f"builtin-{uuid.uuid4().hex[:8]}-"

COW = r"""        \   ^__^
         \  (oo)\_______
            (__)\       )\/\
                ||----w |
                ||     ||
"""


@pytest.fixture(scope="session")
def client() -> docker.DockerClient:
    try:
        engine = docker_client()
    except DockerUnavailableError as exc:
        pytest.fail(f"{exc}", pytrace=False)
    missing = []
    for base in LOCAL_BASES:
        try:
            engine.images.get(base)
        except docker.errors.ImageNotFound:
            missing.append(base)
    if missing:
        pytest.fail(f"local base images missing: {missing}; run `make setup`", pytrace=False)
    return engine


@pytest.fixture(scope="session")
def images(client: docker.DockerClient) -> dict[str, str]:
    """Each built-in module's image (built now if this content was never built)."""
    built = {}
    for name in BUILTIN:
        started = time.monotonic()
        built[name] = ensure_image(f"lilypad-module/{name}:v0.0.1", MODULES / name, client)
        print(f"image {built[name]}: {time.monotonic() - started:.2f}s")
    return built


def render(name: str, **inputs: str) -> ModuleSpec:
    return render_spec((MODULES / name / "lilypad_module.json.tmpl").read_text(), inputs)


def run(name: str, spec: ModuleSpec, work_dir: Path, client: docker.DockerClient, **kwargs: Any) -> RunResult:
    job_id = SESSION + uuid.uuid4().hex
    result = run_module(spec, module_dir=MODULES / name, work_dir=work_dir, client=client, job_id=job_id, **kwargs)
    assert client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"}) == []
    return result


def text(result: RunResult, name: str) -> str:
    return (result.result_dir / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------
# Shape of every module
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN)
def test_module_directory_shape(name: str) -> None:
    directory = MODULES / name
    for required in ("lilypad_module.json.tmpl", "Dockerfile", "VERSION", "README.md"):
        assert (directory / required).is_file(), f"{name} lacks {required}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", (directory / "VERSION").read_text().strip())
    froms = re.findall(r"(?im)^\s*FROM\s+(\S+)", (directory / "Dockerfile").read_text())
    assert froms and all(base in LOCAL_BASES for base in froms), froms  # no registry image
    spec = render(name)  # renders and validates without any input
    assert spec.job.spec.network.type == "None"
    assert spec.job.spec.timeout and spec.job.spec.timeout <= 60
    assert module_image_tag(directory).startswith(f"lilypad-module/{name}:")


def test_images_are_built_from_local_bases(images: dict[str, str], client: docker.DockerClient) -> None:
    for name, tag in images.items():
        assert tag == module_image_tag(MODULES / name)
        assert client.images.get(tag).labels.get("org.lilypad.module-context") == tag.rpartition(":")[2]


# --------------------------------------------------------------------------
# cowsay
# --------------------------------------------------------------------------


def test_cowsay_moo(images: dict[str, str], client: docker.DockerClient, tmp_path: Path) -> None:
    result = run("cowsay", render("cowsay", Message="moo"), tmp_path / "work", client)
    assert result.exit_code == 0
    assert result.image == images["cowsay"]
    assert text(result, "stdout") == " _____\n< moo >\n -----\n" + COW
    assert text(result, "stderr") == ""
    assert text(result, "exitCode") == "0"
    assert list((result.result_dir / "outputs").iterdir()) == []
    # The CID is that of exactly this layout, built by hand.
    expected = tmp_path / "expected"
    (expected / "outputs").mkdir(parents=True)
    (expected / "stdout").write_text(" _____\n< moo >\n -----\n" + COW)
    (expected / "stderr").write_text("")
    (expected / "exitCode").write_text("0")
    assert result.cid == directory_cid(expected)


def test_cowsay_default_long_and_hostile_messages(images: dict[str, str], client: docker.DockerClient,
                                                  tmp_path: Path) -> None:
    default = run("cowsay", render("cowsay"), tmp_path / "default", client)
    assert text(default, "stdout").startswith(" _________________\n< Hello, Lilypad! >\n")
    message = "the quick brown fox jumps over the lazy dog, and then does it all over again, twice"
    wrapped = run("cowsay", render("cowsay", Message=message), tmp_path / "long", client)
    lines = text(wrapped, "stdout").splitlines()
    assert lines[1] == "/ the quick brown fox jumps over the lazy \\"
    assert lines[2] == "| dog, and then does it all over again,   |"
    assert lines[3] == "\\ twice                                   /"
    assert lines[4] == " " + "-" * 41
    hostile = '"]; $(id) `id` ; rm -rf / # \\'
    quoted = run("cowsay", render("cowsay", Message=hostile), tmp_path / "hostile", client)
    assert f"< {hostile} >" in text(quoted, "stdout")  # JSON-encoded input, no shell: printed verbatim


def test_cowsay_is_deterministic(images: dict[str, str], client: docker.DockerClient, tmp_path: Path) -> None:
    first = run("cowsay", render("cowsay", Message="same"), tmp_path / "one", client)
    second = run("cowsay", render("cowsay", Message="same"), tmp_path / "two", client)
    assert first.cid == second.cid
    other = run("cowsay", render("cowsay", Message="different"), tmp_path / "three", client)
    assert other.cid != first.cid


# --------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------


def test_stats_numbers_and_text(images: dict[str, str], client: docker.DockerClient, tmp_path: Path) -> None:
    spec = render("stats", Numbers="3,1,4,1,5,9,2,6", Text="The cat and the hat. The END!")
    result = run("stats", spec, tmp_path / "work", client)
    assert result.exit_code == 0, text(result, "stderr")
    numbers = json.loads(text(result, "outputs/numbers.json"))
    assert numbers["count"] == 8
    assert numbers["sum"] == 31
    assert numbers["mean"] == 3.875
    assert numbers["median"] == 3.5
    assert (numbers["min"], numbers["max"]) == (1, 9)
    assert numbers["sorted"] == [1, 1, 2, 3, 4, 5, 6, 9]
    assert numbers["pstdev"] == pytest.approx(math.sqrt(52.875 / 8), rel=1e-15)  # sum of squared deviations / n
    words = json.loads(text(result, "outputs/words.json"))
    assert words["words"] == 7
    assert words["unique_words"] == 5
    assert words["top_words"][0] == {"word": "the", "count": 3}
    assert words["frequencies"] == {"and": 1, "cat": 1, "end": 1, "hat": 1, "the": 3}
    assert text(result, "stdout").startswith("numbers: count=8 sum=31.0 mean=3.875 median=3.5")


def test_stats_reads_input_files_and_is_deterministic(images: dict[str, str], client: docker.DockerClient,
                                                      tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "numbers.txt").write_text("10 20\n30\n")
    (inputs / "text.txt").write_text("red green red\n")
    spec = render("stats", Numbers="5")
    first = run("stats", spec, tmp_path / "one", client, inputs_dir=inputs)
    second = run("stats", spec, tmp_path / "two", client, inputs_dir=inputs)
    assert json.loads(text(first, "outputs/numbers.json"))["sorted"] == [5, 10, 20, 30]
    assert json.loads(text(first, "outputs/words.json"))["frequencies"] == {"green": 1, "red": 2}
    assert first.cid == second.cid
    assert (first.result_dir / "outputs" / "words.json").read_bytes() == \
        (second.result_dir / "outputs" / "words.json").read_bytes()


def test_stats_bad_input_is_a_failed_result(images: dict[str, str], client: docker.DockerClient,
                                            tmp_path: Path) -> None:
    result = run("stats", render("stats", Numbers="1,two,3"), tmp_path / "bad", client)
    assert result.exit_code == 2
    assert text(result, "stderr") == "stats: not a number: 'two'\n"
    assert text(result, "exitCode") == "2"
    nothing = run("stats", render("stats"), tmp_path / "nothing", client)
    assert nothing.exit_code == 2
    assert "nothing to do" in text(nothing, "stderr")


# --------------------------------------------------------------------------
# nondeterministic
# --------------------------------------------------------------------------


def test_nondeterministic_differs_every_run(images: dict[str, str], client: docker.DockerClient,
                                            tmp_path: Path) -> None:
    spec = render("nondeterministic")
    first = run("nondeterministic", spec, tmp_path / "one", client)
    second = run("nondeterministic", spec, tmp_path / "two", client)
    assert first.exit_code == second.exit_code == 0
    assert first.cid != second.cid
    for result in (first, second):
        assert len((result.result_dir / "outputs" / "random.bin").read_bytes()) == 32
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\n",
                            text(result, "outputs/uuid.txt"))
    assert text(first, "outputs/uuid.txt") != text(second, "outputs/uuid.txt")


# --------------------------------------------------------------------------
# gpu-probe
# --------------------------------------------------------------------------


def test_gpu_probe_declares_a_gpu() -> None:
    spec = render("gpu-probe")
    assert spec.machine.gpu == 1
    assert spec.job.spec.resources.gpu_count == 1
    assert required_gpus(spec) == 1


def test_gpu_probe_refused_without_gpus(client: docker.DockerClient, tmp_path: Path) -> None:
    job_id = SESSION + uuid.uuid4().hex
    with pytest.raises(GPUUnavailableError) as caught:
        run_module(render("gpu-probe"), module_dir=MODULES / "gpu-probe", work_dir=tmp_path / "work",
                   gpus=[], client=client, job_id=job_id)
    assert (caught.value.required, caught.value.available) == (1, 0)
    assert not (tmp_path / "work").exists()
    assert client.containers.list(all=True, filters={"label": f"{JOB_LABEL}={job_id}"}) == []


@pytest.mark.skipif(bool(detect_gpus()), reason="covers the refusal on a machine without a GPU, and NVML finds one "
                                                 "here (test_gpu_probe_on_a_gpu_provider runs instead)")
def test_gpu_probe_refused_on_this_machine_by_detection(tmp_path: Path) -> None:
    with pytest.raises(GPUUnavailableError, match="no NVIDIA GPU was detected"):
        run_module(render("gpu-probe"), module_dir=MODULES / "gpu-probe", work_dir=tmp_path / "work")  # gpus=None


def test_gpu_probe_image_reports_no_gpu_when_run_without_one(images: dict[str, str], client: docker.DockerClient,
                                                             tmp_path: Path) -> None:
    """The probe itself, in its container, with the GPU requirement stripped from the spec."""
    data = render("gpu-probe").model_dump(mode="json", by_alias=True, exclude_none=True)
    data["machine"].update(gpu=0, gpus=[])
    data["job"]["Spec"].pop("Resources")
    result = run("gpu-probe", parse_spec(data), tmp_path / "work", client)
    assert result.exit_code == 1
    assert "no NVIDIA GPU is visible in this container" in text(result, "stderr")
    assert text(result, "stdout") == ""


@pytest.mark.skipif(not detect_gpus(), reason="needs a GPU: NVML finds none on this machine")
def test_gpu_probe_on_a_gpu_provider(images: dict[str, str], client: docker.DockerClient, tmp_path: Path) -> None:
    gpus = detect_gpus()
    result = run("gpu-probe", render("gpu-probe"), tmp_path / "work", client, gpus=gpus)
    assert result.exit_code == 0, text(result, "stderr")
    assert f"GPU 0: {gpus[0].name}" in text(result, "stdout")
    probed = json.loads(text(result, "outputs/gpus.json"))
    assert probed[0]["name"] == gpus[0].name
