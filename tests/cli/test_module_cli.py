"""`lilypad module render|run|check`, as a module author uses them (real git, real Docker)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lilypad.cli import main
from lilypad.results.cid import directory_cid


@pytest.fixture
def run_cli(tmp_path):
    runner = CliRunner()

    def invoke(*args: str, env: dict | None = None):
        return runner.invoke(main, [*args, "--data-dir", str(tmp_path / "data")], env=env or {},
                             catch_exceptions=False)

    return invoke


def test_render_prints_the_validated_spec(run_cli):
    out = run_cli("module", "render", "cowsay:v0.0.1", "-i", 'Message=moo", "rm -rf /')
    assert out.exit_code == 0, out.output
    # line 1 (stderr, mixed in by the runner) names the resolved module; the rest is the spec
    first, _, body = out.output.partition("\n")
    assert first.startswith("# builtin:cowsay@")
    spec = json.loads(body)
    # the input stays one argument: JSON-encoding before substitution stops injection
    assert spec["job"]["Spec"]["Docker"]["Entrypoint"] == ["cowsay", 'moo", "rm -rf /']


def test_render_error_names_the_construct_and_line(run_cli, tmp_path):
    module = tmp_path / "broken"
    module.mkdir()
    (module / "lilypad_module.json.tmpl").write_text('{\n  "job": {{range .Items}}x{{end}}\n}\n')
    out = run_cli("module", "render", str(module))
    assert out.exit_code != 0
    assert "line 2" in out.output and "range" in out.output
    assert "Traceback" not in out.output


def test_inputs_mean_what_the_shell_user_typed(tmp_path):
    # Through a real shell: one -i is one input, its value everything after the first '='.
    module = tmp_path / "echo"
    module.mkdir()
    (module / "lilypad_module.json.tmpl").write_text(
        '{"job": {"Spec": {"Docker": {"Image": "busybox", "Entrypoint": ["echo", {{ .Message }}, {{ .Other }}]}}}}')
    lilypad = shutil.which("lilypad") or str(Path(sys.executable).parent / "lilypad")
    line = (f"{shlex.quote(lilypad)} module render {shlex.quote(str(module))} --data-dir {shlex.quote(str(tmp_path))}"
            """ -i Message="hi there" -i 'Other=a=b,c=d'""")
    out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["job"]["Spec"]["Docker"]["Entrypoint"] == ["echo", "hi there", "a=b,c=d"]


def test_render_shows_a_spec_that_loads_but_cannot_run_and_says_why(run_cli, tmp_path):
    module = tmp_path / "noimage"
    module.mkdir()
    (module / "lilypad_module.json.tmpl").write_text('{"job": {"Spec": {"Docker": {"Entrypoint": ["true"]}}}}')
    out = run_cli("module", "render", str(module))
    assert out.exit_code == 0, out.output
    assert "warning: this spec loads but cannot run" in out.output and "job.Spec.Docker.Image" in out.output
    run = run_cli("module", "run", str(module))
    assert run.exit_code != 0 and "no container image" in run.output


def test_bad_input_and_unknown_version_are_clear_errors(run_cli):
    bad = run_cli("module", "render", "cowsay:v0.0.1", "-i", "=nokey")
    assert bad.exit_code != 0 and "Error:" in bad.output and "Traceback" not in bad.output
    unknown = run_cli("module", "render", "cowsay:v9.9.9")
    assert unknown.exit_code != 0 and "v0.0.1" in unknown.output  # lists what exists


def test_allowlist_refuses_before_anything_runs(run_cli, tmp_path):
    out = run_cli("module", "run", "stats:v0.0.1", env={"OFFER_MODULES": "cowsay:v0.0.1"})
    assert out.exit_code != 0
    assert "not allowed" in out.output.lower() or "allowlist" in out.output.lower()
    assert not (tmp_path / "data" / "results").exists()


def test_run_stores_the_result_by_cid(run_cli, tmp_path):
    out = run_cli("module", "run", "cowsay:v0.0.1", "-i", "Message=hello lilypad")
    assert out.exit_code == 0, out.output
    cid = next(line.split()[-1] for line in out.output.splitlines() if line.startswith("data CID:"))
    stored = tmp_path / "data" / "results" / cid
    assert directory_cid(stored) == cid
    assert "hello lilypad" in (stored / "stdout").read_text()
    assert (stored / "exitCode").read_text() == "0"
    assert sorted(p.name for p in stored.iterdir()) == ["exitCode", "outputs", "stderr", "stdout"]


def test_check_tells_deterministic_from_nondeterministic(run_cli):
    same = run_cli("module", "check", "stats:v0.0.1", "-i", "Numbers=3,1,4,1,5")
    assert same.exit_code == 0, same.output
    assert "reproducible" in same.output
    assert "under the module's exact comparator: equal" in same.output
    differs = run_cli("module", "check", "nondeterministic:v0.0.1")
    assert differs.exit_code == 1
    assert "outputs/" in differs.output  # says where the results differ
    assert "under the module's exact comparator: NOT equal" in differs.output
    # ... and suggests the comparator its differences would pass, as JSON to paste into the spec
    snippet = json.loads(differs.output[differs.output.index("paste into the module spec:\n") + 28:])
    assert snippet["verification"]["comparator"]["type"] == "exact"
    assert {"outputs/random.bin", "outputs/time.txt", "outputs/uuid.txt", "stdout"} <= set(
        snippet["verification"]["comparator"]["ignore"])


def test_check_judges_by_the_declared_comparator(run_cli):
    # jitter's results never share a CID, but its numeric comparator accepts them: exit 0
    jitter = run_cli("module", "check", "jitter:v0.0.1", "-i", "Numbers=1,2,3")
    assert jitter.exit_code == 0, jitter.output
    assert "NOT reproducible" in jitter.output
    assert "under the module's numeric comparator: equal" in jitter.output
    # verified-sort's verifier container decides for it (8 words of one length: 8! orders, so two
    # runs are byte-identical once in 40320)
    ordered = run_cli("module", "check", "verified-sort:v0.0.1", "-i", "Words=aa bb cc dd ee ff gg hh")
    assert ordered.exit_code == 0, ordered.output
    assert "under the module's verifier comparator: equal (the verifier container says equivalent" in ordered.output
