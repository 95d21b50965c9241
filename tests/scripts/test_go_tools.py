"""The Go-built programs: where ``lilypad.toolchain`` looks, and that ``make setup``'s
build script agrees with it and is idempotent (kubo is built by ``make setup``)."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

import pytest

from lilypad.exceptions import GoToolMissingError, LilypadError
from lilypad.toolchain import find_go_tool, go_tool_path, go_tools_dir

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "_toolchain" / "build-go-tools.sh"


def test_bin_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LILYPAD_BIN_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert go_tools_dir() == tmp_path / "home" / ".cache" / "lilypad" / "bin"
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # empty counts as unset, as in ${VAR:-default}
    assert go_tools_dir() == tmp_path / "home" / ".cache" / "lilypad" / "bin"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert go_tool_path("bacalhau") == tmp_path / "xdg" / "lilypad" / "bin" / "bacalhau"
    monkeypatch.setenv("LILYPAD_BIN_DIR", str(tmp_path / "bin"))
    assert go_tool_path("ipfs") == tmp_path / "bin" / "ipfs"
    with pytest.raises(ValueError, match="unknown Go-built program 'kubo'"):
        go_tool_path("kubo")


def test_missing_or_unusable_tool_names_its_make_target(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LILYPAD_BIN_DIR", str(tmp_path))
    with pytest.raises(GoToolMissingError, match="run `make kubo`") as info:
        find_go_tool("ipfs")
    assert isinstance(info.value, LilypadError)
    assert (info.value.name, info.value.path, info.value.make_target) == ("ipfs", str(tmp_path / "ipfs"), "kubo")
    (tmp_path / "bacalhau").write_bytes(b"not executable")
    with pytest.raises(GoToolMissingError, match="make bacalhau"):
        find_go_tool("bacalhau")
    (tmp_path / "bacalhau").chmod(0o755)
    assert find_go_tool("bacalhau") == tmp_path / "bacalhau"


def test_script_refuses_unknown_programs() -> None:
    done = subprocess.run(["bash", str(SCRIPT), "kubo"], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "unknown program 'kubo' (known:" in done.stderr


def test_built_ipfs_is_where_the_package_looks_and_a_rerun_only_checks() -> None:
    try:
        binary = find_go_tool("ipfs")
    except GoToolMissingError as exc:
        pytest.fail(f"{exc} (`make setup` builds it)")
    before = binary.stat().st_mtime_ns
    started = time.monotonic()
    done = subprocess.run(["bash", str(SCRIPT), "ipfs"], capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", "the stamp matched, so nothing should have been built"
    assert elapsed < 1.0
    assert binary.stat().st_mtime_ns == before
    module = ROOT / "scripts" / "_toolchain" / "go" / "kubo"
    pinned = b"".join(path.read_bytes() for path in (module / "go.mod", module / "go.sum", SCRIPT))
    assert (binary.parent / "ipfs.stamp").read_text().strip() == hashlib.sha256(pinned).hexdigest()
