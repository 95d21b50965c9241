"""``lilypad twin``: the digital twin of the market — does cheating pay at our defaults?"""

from __future__ import annotations

from pathlib import Path

import click

from lilypad.cli._common import LilypadCommand

__all__ = ["twin"]


@click.group("twin")
def twin() -> None:
    """The market's digital twin: each cheating strategy's profit over honesty."""


@twin.command("run", cls=LilypadCommand)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for twin.json, twin.md and the plots (created if missing).")
@click.option("--quick", is_flag=True, help="Fewer deals per estimate and a coarser grid (seconds; for CI).")
@click.option("--seed", type=int, default=18, show_default=True, help="Seed of every random draw.")
@click.option("--onchain", type=click.IntRange(min=0), default=0, show_default=True,
              help="Also play this many deals per panel size through the contracts on anvil, each checked against "
                   "the fast model (needs `make compile` and anvil); exit 1 on any mismatch.")
def run_twin(out: Path, quick: bool, seed: int, onchain: int) -> None:
    """Measure every listed strategy with the fast model and write the report."""
    from lilypad.twin.report import run

    results = run(out, quick=quick, seed=seed, onchain=onchain)
    paying = [name for name, e in results["at_defaults"].items() if e["pays"]]
    click.echo(f"twin: {results['deals_simulated']:,} deals in {results['seconds']} s; report in {out / 'twin.md'}")
    click.echo("twin: at the defaults, " + (f"these still pay: {', '.join(paying)}" if paying
                                            else "no listed cheating strategy pays"))
    onchain_results = dict(results.get("onchain", {}))
    played = onchain_results.pop("strategies", {})
    for k, o in onchain_results.items():
        click.echo(f"twin: on-chain, k={k}: {o['deals']} deals at {o['deals_per_second']} deals/s, "
                   f"{len(o['mismatches'])} mismatches with the fast model")
        if o["mismatches"]:
            raise click.ClickException(f"the fast model differs from the contracts: {o['mismatches'][0]}")
    for name, p in played.items():
        click.echo(f"twin: on-chain, {name}: {p['deals']} deal pairs, {p['mean']:+.3f} LP/deal over honesty, "
                   f"{len(p['mismatches'])} mismatches")
        if p["mismatches"]:
            raise click.ClickException(f"the fast model differs from the contracts: {p['mismatches'][0]}")
