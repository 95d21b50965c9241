"""``lilypad module``: render, run and check modules locally (no chain involved)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click

from lilypad.cli._common import LilypadGroup, cli_settings
from lilypad.cli.options import data_dir_option

__all__ = ["module"]

_inputs_option = click.option(
    "-i", "--input", "inputs", multiple=True, metavar="KEY=VALUE",
    help="A module input; repeat for several. Split on the first '='.",
)
_inputs_path_option = click.option(
    "--inputs-path", type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory mounted read-only at /inputs.",
)
_data_dir_option = data_dir_option("lilypad's local state (module cache, results). Default /tmp/lilypad/data.")


def _prepare(ref: str, inputs: tuple[str, ...], data_dir: Path | None) -> tuple[Any, Any, Any, dict[str, str]]:
    """Resolve the module and render its spec (a LilypadError is a clean error: see ``_common``)."""
    from lilypad.modules.inputs import parse_inputs
    from lilypad.modules.resolve import ModuleResolver
    from lilypad.protocol.allowlist import Allowlist

    settings = cli_settings()
    if data_dir:
        settings = settings.model_copy(update={"data_dir": data_dir})
    values = parse_inputs(inputs)
    resolver = ModuleResolver(settings.module_cache_dir, allowlist=Allowlist.parse(settings.offer_modules))
    resolved = resolver.resolve(ref)
    spec = resolved.render(values)
    return settings, resolved, spec, values


@click.group(cls=LilypadGroup)
def module() -> None:
    """Render, run and check modules on this machine, without a chain."""


@module.command()
@click.argument("ref")
@_inputs_option
@_data_dir_option
def render(ref: str, inputs: tuple[str, ...], data_dir: Path | None) -> None:
    """Print REF's rendered, validated spec as JSON (or the error and its line)."""
    from lilypad.exceptions import SpecError
    from lilypad.modules.spec import check_runnable

    _, resolved, spec, _ = _prepare(ref, inputs, data_dir)
    click.echo(f"# {resolved.canonical}", err=True)
    click.echo(json.dumps(spec.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))
    try:
        check_runnable(spec)
    except SpecError as err:  # it loads, as in the original, but no provider can run it
        click.echo(f"# warning: this spec loads but cannot run: {err}", err=True)


def _run_once(settings: Any, resolved: Any, spec: Any, inputs_path: Path | None, work_dir: Path) -> Any:
    from lilypad.executor import ExecutorLimits, detect_gpus, run_module

    limits = ExecutorLimits(max_timeout=settings.max_job_seconds, max_output_bytes=settings.max_output_bytes)
    return run_module(spec, module_dir=resolved.path, work_dir=work_dir, inputs_dir=inputs_path,
                      limits=limits, gpus=detect_gpus())


@module.command()
@click.argument("ref")
@_inputs_option
@_inputs_path_option
@_data_dir_option
def run(ref: str, inputs: tuple[str, ...], inputs_path: Path | None, data_dir: Path | None) -> None:
    """Run REF locally in a sandboxed container; print the result directory and its CID."""
    from lilypad.results.store import ResultsStore

    settings, resolved, spec, _ = _prepare(ref, inputs, data_dir)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="run-", dir=settings.runs_dir))
    result = _run_once(settings, resolved, spec, inputs_path, work_dir)
    cid = ResultsStore(settings.results_dir).put(result.result_dir)
    stored = settings.results_dir / cid
    click.echo(f"module:    {resolved.canonical}")
    click.echo(f"exit code: {result.exit_code}{' (timed out)' if result.timed_out else ''}")
    click.echo(f"duration:  {result.duration_s:.2f}s")
    click.echo(f"results:   {stored}")
    click.echo(f"data CID:  {cid}")
    click.echo(f"  cat {stored}/stdout")
    click.echo(f"  ls {stored}/outputs")


@module.command()
@click.argument("ref")
@_inputs_option
@_inputs_path_option
@_data_dir_option
def check(ref: str, inputs: tuple[str, ...], inputs_path: Path | None, data_dir: Path | None) -> None:
    """Run REF twice; report whether the results are equal, byte for byte and under the
    module's declared comparator (exit 1 if not), and suggest a comparator when they differ.

    Mediation re-runs a job and compares the results under the module's
    ``verification.comparator`` (default: byte equality), so a module must
    give equivalent results every run to survive it.
    """
    from lilypad.results.compare import compare_results
    from lilypad.verification.comparators import compare_under
    from lilypad.verification.suggest import suggest_comparator

    settings, resolved, spec, _ = _prepare(ref, inputs, data_dir)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for attempt in (1, 2):
        work_dir = Path(tempfile.mkdtemp(prefix=f"check{attempt}-", dir=settings.runs_dir))
        results.append(_run_once(settings, resolved, spec, inputs_path, work_dir))
        click.echo(f"run {attempt}: {results[-1].cid} (exit {results[-1].exit_code})")
    a, b = results[0].result_dir, results[1].result_dir
    diff = compare_results(a, b)
    click.echo(diff.summary())
    comparator = spec.verification.comparator
    verdict = compare_under(comparator, a, b, module_dir=resolved.path)
    click.echo(f"under the module's {comparator.type} comparator: {'equal' if verdict.equal else 'NOT equal'} "
               f"({verdict.reason})")
    if verdict.equal:
        return
    suggestion = suggest_comparator(a, b)
    if suggestion is not None:
        click.echo(f"suggested comparator ({suggestion.explanation}); paste into the module spec:")
        click.echo(suggestion.snippet())
    raise click.exceptions.Exit(1)
