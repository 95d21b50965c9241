"""``lilypad devnet``: a whole local network (anvil, contracts, solver, providers, mediator,
bridge) in one data directory, supervised in the background.

    lilypad devnet up [--providers N] [--slots K] [--executor docker|bacalhau] [--foreground]
    lilypad devnet status [--json]
    lilypad devnet logs [COMPONENT] [-f] [-n N]
    lilypad devnet env
    lilypad devnet down [--purge]

The directory is ``--data-dir``, else ``LILYPAD_DEVNET_DIR``, else ``~/.lilypad/devnet``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from lilypad.cli._common import LilypadGroup, cli_settings

__all__ = ["devnet"]


def _data_dir(func: Any) -> Any:
    return click.option("--data-dir", envvar="LILYPAD_DEVNET_DIR", show_envvar=True, default=None,
                        type=click.Path(file_okay=False, path_type=Path),
                        help="The devnet's directory (default: ~/.lilypad/devnet).")(func)


def _root(data_dir: Path | None) -> Path:
    return (data_dir or cli_settings().devnet_dir).expanduser().resolve()


def _load(root: Path) -> Any:
    from lilypad.devnet.state import DevnetState

    state = DevnetState.load(root)
    if state is None:
        raise click.ClickException(f"no devnet in {root}: start one with `lilypad devnet up --data-dir {root}`")
    return state


@click.group("devnet", cls=LilypadGroup)
def devnet() -> None:
    """A complete local network of real processes, for development and demos."""


@devnet.command("up")
@_data_dir
@click.option("--providers", type=click.IntRange(1, 5), default=None,
              help="Resource providers to run (default 1; on resume: as before).")
@click.option("--slots", type=click.IntRange(min=1), default=None,
              help="Jobs each provider runs at once (default 2; on resume: as before).")
@click.option("--detach/--foreground", default=True, show_default=True,
              help="Return once healthy, leaving a supervisor in the background; or stay, stopping on Ctrl-C.")
@click.option("--timeout", type=click.FloatRange(min=1), default=300.0, show_default=True,
              help="Seconds to wait for every component to be healthy.")
@click.option("--executor", type=click.Choice(["docker", "bacalhau"]), default=None,
              help="Where the providers run jobs: the Docker engine, or a local Bacalhau cluster (an orchestrator "
                   "and two compute nodes, started too) (default docker; on resume: as before).")
def up(data_dir: Path | None, providers: int | None, slots: int | None, detach: bool, timeout: float,
       executor: str | None) -> None:
    """Start (or resume) the devnet and wait until every component is healthy."""
    import signal

    from lilypad.devnet import control
    from lilypad.devnet.state import summary_text

    root = _root(data_dir)
    state, proc = control.up(root, providers=providers, slots=slots, foreground=not detach, timeout=timeout,
                             progress=lambda m: click.echo(f"devnet: {m}", err=True), executor=executor)
    click.echo(summary_text(state))
    if detach:
        return
    click.echo("devnet: running in the foreground; Ctrl-C stops it", err=True)
    try:
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        proc.wait()


@devnet.command("status")
@_data_dir
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the recorded state plus each probe.")
def status(data_dir: Path | None, as_json: bool) -> None:
    """Each component's health, pid, port and address; exits non-zero unless all are healthy."""
    from dataclasses import asdict

    from lilypad.devnet import control
    from lilypad.devnet.state import render_table, summarise

    root = _root(data_dir)
    state = _load(root)
    supervisor = control.running_supervisor(state, root)
    if state.status in ("running", "starting", "stopping") and not supervisor:
        state.status = "crashed (supervisor gone)"
    probes = control.probe(state) if supervisor else {}
    verdict, code = summarise(list(probes.values()), state.status)
    if as_json:
        raw = json.loads(state.to_json())
        for comp in raw["components"]:
            p = probes.get(comp["name"])
            comp["health"] = p.state if p else "down"
            comp["probe"] = asdict(p) if p else None
        raw["healthy"], raw["verdict"] = code == 0, verdict
        click.echo(json.dumps(raw, indent=2))
    else:
        click.echo(f"{root}: {verdict}" + (f" (supervisor pid {supervisor})" if supervisor else ""))
        if state.error:
            click.echo(f"error: {state.error}")
        click.echo(f"rpc {state.rpc_url}   solver {state.solver_url}")
        click.echo(render_table(state, probes, time.time()))
    raise SystemExit(code)


@devnet.command("logs")
@_data_dir
@click.argument("component", required=False)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option("-n", "--lines", type=click.IntRange(min=0), default=50, show_default=True,
              help="Lines of each log to start with.")
def logs(data_dir: Path | None, component: str | None, follow: bool, lines: int) -> None:
    """Print (and follow) the logs of one component, or of all of them."""
    from lilypad.devnet.control import follow_logs, log_paths

    root = _root(data_dir)
    paths = log_paths(root)
    if not paths or not (root / "logs").is_dir():
        raise click.ClickException(f"no devnet logs in {root}")
    if component is not None:
        if component not in paths:
            raise click.ClickException(f"no component {component!r}; choose from: {', '.join(paths)}")
        paths = {component: paths[component]}
    try:
        for line in follow_logs(paths, lines=lines, follow=follow):
            click.echo(line)
    except KeyboardInterrupt:
        pass


@devnet.command("env")
@_data_dir
def env(data_dir: Path | None) -> None:
    """Print `export` lines for using the devnet as its job creator: eval "$(lilypad devnet env)"."""
    import shlex

    for key, value in _load(_root(data_dir)).client_env().items():
        click.echo(f"export {key}={shlex.quote(value)}")


@devnet.command("down")
@_data_dir
@click.option("--purge", is_flag=True, help="Also delete the data directory (chain, deployments, state, logs).")
def down(data_dir: Path | None, purge: bool) -> None:
    """Stop everything the devnet started (and nothing else)."""
    from lilypad.devnet import control

    notes = control.down(_root(data_dir), purge=purge)
    for note in notes:
        click.echo(f"devnet: {note}")
