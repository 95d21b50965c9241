"""The twin's quick report (issue 18): written where asked, reproducible from its seed, and a
guard on the protocol defaults: the set of cheating strategies that pay at the defaults is
empty (docs/twin.md, "The defaults"): a change of a default that makes a listed strategy pay
fails here."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from lilypad.twin.report import CHEATS, DEFAULT_MARKET, advantage
from lilypad.twin.strategies import Strategy



def test_lilypad_twin_run_quick_writes_the_report(tmp_path: Path) -> None:
    from lilypad.cli import main

    out = tmp_path / "twin"
    result = CliRunner().invoke(main, ["twin", "run", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"twin.json", "twin.md", "heat_fake_result.png",
                                               "collusion_by_k.png"}
    r = json.loads((out / "twin.json").read_text())
    two = {f"{s.value} (two of five bribed)" for s in (Strategy.COLLUDING_PAIR, Strategy.COLLUDING_CREATOR)}
    assert set(r["at_defaults"]) == {s.value for s in CHEATS} | two
    # At the defaults every listed cheating strategy loses, with 95 % confidence.
    assert {name: e["pays"] for name, e in r["at_defaults"].items() if e["pays"] is not False} == {}
    # Even when the skipped work is most of the price, a fake result does not pay on average.
    assert all(e["mean"] < 0 for e in r["fake_result_by_work_share"].values())
    # The jackpot's tax covers the audits' fees at the default job cost (or audits would stop).
    assert r["jackpot"]["net"] > 0
    # More collateral never needs a higher check rate to stop a fake result.
    rates = [r["safe_check_rate"][m] for m in ("2", "10", "40")]
    assert None not in rates and rates[2] <= rates[1] <= rates[0]
    # A larger panel never makes the provider + one bribed mediator pair earn more.
    by_k = r["collusion_by_k"]
    assert by_k["1"]["100"] >= by_k["3"]["100"] >= by_k["5"]["100"]
    assert (out / "heat_fake_result.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = tmp_path / "again"
    CliRunner().invoke(main, ["twin", "run", "--quick", "--out", str(again)])
    first, second = (json.loads((d / "twin.json").read_text()) for d in (out, again))
    for volatile in ("seconds", "deals_per_second"):
        first.pop(volatile), second.pop(volatile)
    assert first == second  # seeded: the same figures on every run


def test_the_honest_baselines_and_the_losing_strategies() -> None:
    # A provider that never delivers loses the submit collateral and saves half the job cost of work.
    lazy = advantage(Strategy.LAZY, DEFAULT_MARKET, 200, seed=1)
    assert lazy.pays is False
    # A job creator that makes its job non-deterministic and checks pays the fee and its judging collateral.
    nondet = advantage(Strategy.CHECK_NON_DETERMINISTIC, DEFAULT_MARKET, 200, seed=1)
    fee, judge = DEFAULT_MARKET.terms.mediation_fee, DEFAULT_MARKET.terms.judge_collateral
    assert nondet.low == nondet.high == -(fee + judge) / 10**18
    # At a check rate of 100 % and no audits, a fake result always loses its results collateral.
    always = DEFAULT_MARKET.with_(check_rate=1.0)
    fake = advantage(Strategy.FAKE_RESULT, always, 100, seed=1)
    assert fake.pays is False and fake.high < -1.0
