"""The differential tests' oracle: ``go_oracle/`` (plain Go ``text/template``, as
the original Lilypad loads a module), built once per session with the Go that
``make setup`` installed, sharing its build cache with the template helper.
``conftest.py`` makes :func:`go_oracle` a fixture of this folder."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from lilypad.modules.gotemplate_helper import find_go

ORACLE_SOURCE = Path(__file__).resolve().parent / "go_oracle"


@dataclass(frozen=True)
class OracleResult:
    """What plain Go did: ``output`` (the rendered text, bytes that are not UTF-8
    as U+FFFD, as Go's JSON decoder reads them) or an error at ``line``."""

    output: str | None
    line: int = 0
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.output is None


Oracle = Callable[[str, Mapping[str, str]], OracleResult]


@pytest.fixture(scope="session")
def go_oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    go = find_go()
    if go is None:
        pytest.fail("the differential tests need Go: run `make setup` (it installs golang-go)", pytrace=False)
    binary = tmp_path_factory.mktemp("go-oracle") / "gooracle"
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "", "GOWORK": "off",
           "GOPROXY": "off"}
    built = subprocess.run([go, "build", "-trimpath", "-buildvcs=false", "-o", str(binary), "."], cwd=ORACLE_SOURCE,
                           env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert built.returncode == 0, built.stderr

    def render(template: str, inputs: Mapping[str, str]) -> OracleResult:
        request = json.dumps({"template": template, "inputs": dict(inputs)}).encode()
        proc = subprocess.run([str(binary)], input=request, capture_output=True, timeout=60, check=False)
        if proc.returncode == 0:
            return OracleResult(proc.stdout.decode("utf-8", errors="replace"))
        assert proc.returncode == 1, proc.stderr
        failure = json.loads(proc.stdout)
        return OracleResult(None, int(failure["line"]), str(failure["message"]))

    return render
