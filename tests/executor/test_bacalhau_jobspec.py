"""The Bacalhau executor's pure parts: spec -> Job, inputs sources, result layout, safe
unpacking, image references, API value parsing (no cluster needed)."""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from pathlib import Path

import pytest

from lilypad.exceptions import ResultArchiveError, ResultLayoutError, SpecError
from lilypad.executor.bacalhau.api import Execution, NodeCapacity, parse_memory
from lilypad.executor.bacalhau.jobspec import arrange_result, bacalhau_job, inputs_source, result_paths
from lilypad.executor.bacalhau.runner import Capacity, _safe_extract, registry_reference
from lilypad.executor.docker_runner import ExecutorLimits
from lilypad.modules.spec import ModuleSpec


def spec(**body) -> ModuleSpec:
    base = {"Engine": "Docker", "Docker": {"Image": "lilypad/busybox:1", "Entrypoint": ["true"]}}
    return ModuleSpec.model_validate({"job": {"APIVersion": "V1beta1", "Spec": {**base, **body}}})


def task(module: ModuleSpec, **options) -> dict:
    return bacalhau_job(module, image="127.0.0.1:5000/x@sha256:" + "a" * 64, job_id="0x01", **options)["Tasks"][0]


def test_network_is_none_unless_full_or_http():
    assert task(spec())["Network"] == {"Type": "None"}
    assert task(spec(Network={"Type": "Full"}))["Network"] == {"Type": "Full"}
    assert task(spec(Network={"Type": "HTTP", "Domains": ["example.com"]}))["Network"] == {"Type": "Full"}


def test_resources_default_and_are_capped_by_the_largest_node():
    limits = ExecutorLimits(default_cpu_millis=500, default_memory_bytes=256 << 20)
    assert task(spec(), limits=limits)["Resources"] == {"CPU": "500m", "Memory": str(256 << 20)}
    asked = spec(Resources={"CPU": "4", "Memory": "8Gi", "GPU": "1"})
    assert task(asked, max_cpu_millis=2000, max_memory_bytes=1 << 30)["Resources"] == {
        "CPU": "2000m", "Memory": str(1 << 30), "GPU": "1"}


def test_timeout_is_the_smaller_of_the_spec_and_the_cap():
    assert task(spec(Timeout=30))["Timeouts"] == {"ExecutionTimeout": 30}
    assert task(spec(Timeout=30), limits=ExecutorLimits(max_timeout=10))["Timeouts"] == {"ExecutionTimeout": 10}


def test_declared_outputs_become_result_paths_and_system_paths_are_refused():
    module = spec(Outputs=[{"Name": "outputs", "Path": "/outputs"}, {"Name": "models", "Path": "/models"}])
    assert result_paths(module) == [{"Name": "outputs", "Path": "/outputs"}, {"Name": "models", "Path": "/models"}]
    with pytest.raises(SpecError, match="cannot be an output directory"):
        result_paths(spec(Outputs=[{"Name": "x", "Path": "/inputs/x"}]))
    with pytest.raises(SpecError, match="plain file name"):
        result_paths(spec(Outputs=[{"Name": "stdout", "Path": "/o"}]))


def test_inputs_go_inline_as_a_gzipped_tar_or_local_when_large_or_asked(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub" / "b.txt").write_text("b")
    inline = inputs_source(tmp_path)
    assert (inline["Target"], inline["Source"]["Type"]) == ("/inputs", "inline")
    url = inline["Source"]["Params"]["URL"]
    assert url.startswith("data:application/gzip;base64,")
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(url.split(",", 1)[1])), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == ["a.txt", "sub", "sub/b.txt"]  # relative: unpacked at /inputs
    for local in (inputs_source(tmp_path, inline_limit=10), inputs_source(tmp_path, local=True)):
        assert local["Source"] == {"Type": "local", "Params": {"SourcePath": str(tmp_path.resolve()),
                                                                "ReadWrite": False}}


def test_a_result_gets_lilypads_layout_or_is_refused(tmp_path):
    module = spec(Outputs=[{"Name": "models", "Path": "/models"}])
    for name in ("stdout", "exitCode"):
        (tmp_path / name).write_text("0")
    (tmp_path / "outputs").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.bin").write_text("m")
    arrange_result(tmp_path, module)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exitCode", "outputs", "stderr", "stdout"]
    assert (tmp_path / "outputs" / "models" / "m.bin").read_text() == "m"
    (tmp_path / "extra").write_text("?")
    with pytest.raises(ResultLayoutError, match="exactly"):
        arrange_result(tmp_path, module)


def _archive(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            archive.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def test_unpacking_refuses_links_escapes_and_oversize(tmp_path):
    link = tarfile.TarInfo("outputs/evil")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(ResultArchiveError, match="not a file or directory"):
        _safe_extract(_archive(tmp_path / "l.tar.gz", link), tmp_path / "l", 1 << 20)
    escape = tarfile.TarInfo("../escaped")
    escape.size = 1
    with pytest.raises(ResultArchiveError):
        _safe_extract(_archive(tmp_path / "e.tar.gz", escape), tmp_path / "e", 1 << 20)
    assert not (tmp_path / "escaped").exists()
    big = tarfile.TarInfo("stdout")
    big.size = 2048
    with pytest.raises(ResultArchiveError, match="more than 1024 bytes"):
        _safe_extract(_archive(tmp_path / "b.tar.gz", big), tmp_path / "b", 1024)
    (tmp_path / "junk.tar.gz").write_bytes(gzip.compress(b"not a tar"))
    with pytest.raises(ResultArchiveError):
        _safe_extract(tmp_path / "junk.tar.gz", tmp_path / "j", 1024)


def test_image_references_move_into_the_registry():
    assert registry_reference("127.0.0.1:5000", "lilypad/busybox:1") == "127.0.0.1:5000/lilypad/busybox:1"
    assert registry_reference("r:1", "lilypad-module/cowsay:abc") == "r:1/lilypad-module/cowsay:abc"
    assert registry_reference("r:1", "busybox") == "r:1/busybox:latest"
    assert registry_reference("r:1", "docker.io/library/busybox:1.36") == "r:1/library/busybox:1.36"
    assert registry_reference("r:1", "localhost:5000/x/y@sha256:" + "b" * 64) == "r:1/x/y:latest"


def test_api_values_parse():
    assert parse_memory(1024) == 1024
    assert parse_memory("512Mi") == 512 << 20
    assert parse_memory("2Gi") == 2 << 30
    assert parse_memory("1GB") == 10**9
    with pytest.raises(ValueError):
        parse_memory("lots")
    node = NodeCapacity.from_api({"Info": {"NodeID": "c1", "NodeType": "Compute", "ComputeNodeInfo": {
        "MaxCapacity": {"CPU": 1.5, "Memory": 1 << 30, "Disk": 5 << 30, "GPUs": [{}, {}]},
        "AvailableCapacity": {"CPU": 0.5}}}, "Connection": "CONNECTED"})
    assert (node.node_id, node.connected, node.cpu, node.gpu, node.available_cpu) == ("c1", True, 1.5, 2, 0.5)
    capacity = Capacity.of([node, node])
    assert (capacity.cpu_millis, capacity.ram_mb, capacity.gpu, capacity.max_node_cpu_millis) == (3000, 2048, 4, 1500)
    execution = Execution.from_api({"ID": "e-1", "NodeID": "c2", "JobVersion": 2,
                                    "ComputeState": {"StateType": 9}, "DesiredState": {"StateType": 2},
                                    "RunOutput": {"ExitCode": 3}, "PublishedResult": {"Params": {"URL": "u"}}})
    assert (execution.state, execution.desired, execution.exit_code, execution.job_version,
            execution.result_url) == ("Completed", "Stopped", 3, 2, "u")
