"""The twin's measurements and report: does cheating pay, at which rates does it stop, what a
colluding pair earns per panel size. Seeded; writes ``twin.json``, ``twin.md`` and PNG plots
under the folder it is given.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lilypad.protocol.settings import NETWORK_DEAL_DEFAULTS, NETWORK_SETTINGS
from lilypad.twin.model import BPS, Terms
from lilypad.twin.strategies import LP, Market, Strategy, simulate

__all__ = ["DEFAULT_MARKET", "CHEATS", "Estimate", "advantage", "bandit", "run"]

#: The protocol defaults the twin judges: the public-network settings ``ape run deploy``
#: applies and the deal terms the CLI, provider and bridge default to under them (the smallest
#: results-collateral multiple an honest job creator accepts, which a cheat offers; the panel
#: size, the smallest a provider accepts, which a colluding job creator asks for), with job
#: creators that never check.
DEFAULT_MARKET = Market(
    terms=Terms(instruction_price=LP, payment_collateral=2 * LP, mediation_fee=LP, submit_collateral=1,
                judge_collateral=1, results_collateral_multiple=NETWORK_DEAL_DEFAULTS.results_collateral_multiple,
                k=NETWORK_DEAL_DEFAULTS.consortium_size),
    settings=NETWORK_SETTINGS)
#: Strategies that bribe listed mediators, measured with one and with two of the five bribed.
COLLUSIONS = (Strategy.COLLUDING_PAIR, Strategy.COLLUDING_CREATOR)
#: Each cheating strategy and the honest strategy of the same agent it is compared with.
CHEATS = {
    Strategy.FAKE_RESULT: Strategy.HONEST,
    Strategy.INFLATE: Strategy.HONEST,
    Strategy.LAZY: Strategy.HONEST,
    Strategy.COLLUDING_PAIR: Strategy.HONEST,
    Strategy.CHECK_NON_DETERMINISTIC: Strategy.HONEST_CREATOR,
    Strategy.REFUSE_TO_JUDGE: Strategy.HONEST_CREATOR,
    Strategy.COLLUDING_CREATOR: Strategy.HONEST_CREATOR,
    Strategy.LAZY_MEDIATOR: Strategy.HONEST_MEDIATOR,
}


#: Deals the fast model settled in this process's current run (the speed figure of the report).
_SIMULATED = [0]


@dataclass(frozen=True)
class Estimate:
    """Mean profit per deal of a strategy over its honest counterpart (LP), with a 95 % interval."""

    mean: float
    low: float
    high: float
    deals: int
    exact_sign: int = 0  # for a difference without spread: the sign of its exact (integer) total

    @property
    def pays(self) -> bool | None:
        """True: profitable with 95 % confidence; False: unprofitable with 95 % confidence."""
        if self.exact_sign:
            return self.exact_sign > 0
        return True if self.low > 0 else False if self.high < 0 else None


def advantage(cheat: Strategy, market: Market, deals: int, seed: int) -> Estimate:
    """Cheating's profit minus honesty's, deal by deal on the same random draws (common random
    numbers, so the difference is measured rather than two noisy means)."""
    honest = CHEATS.get(cheat, Strategy.HONEST)
    _SIMULATED[0] += 2 * deals
    diffs = []
    for i in range(deals):
        a, b = random.Random(seed * 1_000_003 + i), random.Random(seed * 1_000_003 + i)
        diffs.append(simulate(cheat, market, a) - simulate(honest, market, b))
    total = sum(diffs)  # exact, in base units: a 1-wei difference is still a difference
    mean = total / deals / LP
    half = 1.96 * (statistics.stdev(d / LP for d in diffs) / math.sqrt(deals) if deals > 1 else math.inf)
    if half == 0 and total != 0:  # no spread: the sign of the exact total decides
        return Estimate(mean, mean, mean, deals, exact_sign=1 if total > 0 else -1)
    return Estimate(mean, mean - half, mean + half, deals)


def _safe_rate(cheat: Strategy, market: Market, field: str, grid: list[float], deals: int, seed: int) -> float | None:
    """The smallest rate on ``grid`` at which ``cheat`` loses with 95 % confidence."""
    for rate in grid:
        m = (market.with_(check_rate=rate) if field == "check_rate"
             else market.with_(settings=market.settings.model_copy(update={"audit_bps": int(rate * 10_000)})))
        if advantage(cheat, m, deals, seed).pays is False:
            return rate
    return None


def bandit(market: Market, rounds: int, seed: int, arms: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0),
           epsilon: float = 0.1) -> dict[str, Any]:
    """A learning provider: epsilon-greedy over cheating probabilities, learning from what each
    deal earned it. Returns the mean earning of each arm and the arm it settled on."""
    rng = random.Random(seed)
    _SIMULATED[0] += rounds
    totals, counts = [0.0] * len(arms), [0] * len(arms)
    for t in range(rounds):
        if t < len(arms):
            i = t
        elif rng.random() < epsilon:
            i = rng.randrange(len(arms))
        else:
            i = max(range(len(arms)), key=lambda j: totals[j] / counts[j])
        strategy = Strategy.FAKE_RESULT if rng.random() < arms[i] else Strategy.HONEST
        totals[i] += simulate(strategy, market, rng) / LP
        counts[i] += 1
    means = {str(a): totals[i] / counts[i] for i, a in enumerate(arms)}
    best = max(range(len(arms)), key=lambda j: totals[j] / counts[j])
    return {"arms": means, "plays": dict(zip(map(str, arms), counts, strict=True)), "settled_on": arms[best]}


def run(out: Path, *, quick: bool = False, seed: int = 18, onchain: int = 0) -> dict[str, Any]:
    """Measure, write ``twin.json`` / ``twin.md`` / plots under ``out``; returns the results.
    ``onchain``: also play that many deals (per panel size 1 and 3) through the contracts on
    anvil at the default settings, each checked against the fast model, and report the
    on-chain engine's speed and any mismatch."""
    started = time.perf_counter()
    _SIMULATED[0] = 0
    deals = 400 if quick else 4_000
    # The verdicts at the defaults get more deals: a 2.5 % audit that costs 41 job costs is a rare,
    # large loss, and deciding its sign at 95 % needs thousands of deals (~1.5 s per 10,000 here).
    verdict_deals = 10_000 if quick else 40_000
    out.mkdir(parents=True, exist_ok=True)
    market = DEFAULT_MARKET
    results: dict[str, Any] = {"seed": seed, "mode": "quick" if quick else "full", "deals_per_estimate": deals,
                               "deals_per_verdict_at_defaults": verdict_deals,
                               "market": _describe(market)}
    at_defaults = {s.value: advantage(s, market, verdict_deals, seed) for s in CHEATS}
    at_defaults |= {f"{s.value} (two of five bribed)": advantage(s, market.with_(colluders=2), verdict_deals, seed)
                    for s in COLLUSIONS}
    results["at_defaults"] = {name: asdict(e) | {"pays": e.pays} for name, e in at_defaults.items()}
    # How robust: a fake result when the work it skips is most of the price (a provider pricing at cost).
    results["fake_result_by_work_share"] = {w: asdict(advantage(Strategy.FAKE_RESULT, market.with_(work_share=w),
                                                                verdict_deals, seed)) for w in (0.25, 0.5, 0.75, 0.95)}
    results["jackpot"] = _jackpot_flow(market)
    multiples = [1, 2, 5, 10, 20, 40] if not quick else [2, 10, 40]
    grid = [i / 100 for i in range(0, 101, 5 if quick else 1)]
    results["safe_check_rate"] = {m: _safe_rate(Strategy.FAKE_RESULT, market.with_(
        terms=_multiple(market.terms, m), settings=market.settings.model_copy(update={"audit_bps": 0})),
        "check_rate", grid, deals, seed) for m in multiples}
    results["safe_audit_rate"] = {m: _safe_rate(Strategy.FAKE_RESULT, market.with_(terms=_multiple(market.terms, m)),
                                                "audit_rate", [g for g in grid if g <= 0.5], deals, seed)
                                  for m in multiples}
    results["collusion_by_k"] = {
        k: {stake: advantage(Strategy.COLLUDING_PAIR, market.with_(
            terms=Terms(**{**asdict(market.terms), "k": k}), stake=stake * LP,
            settings=market.settings.model_copy(update={"mediator_slash": stake * LP}), check_rate=0.5),
            deals, seed).mean for stake in (10, 100)} for k in (1, 3, 5)}
    results["collusion_by_k_two_bribed"] = {
        k: {stake: advantage(Strategy.COLLUDING_PAIR, market.with_(
            terms=Terms(**{**asdict(market.terms), "k": k}), stake=stake * LP, colluders=2,
            settings=market.settings.model_copy(update={"mediator_slash": stake * LP}), check_rate=0.5),
            deals, seed).mean for stake in (10, 100)} for k in (3, 5)}
    results["learning_provider"] = bandit(market, 500 if quick else 5_000, seed)
    heat = _heat(market, deals // 4, seed, quick)
    results["heat_fake_result"] = heat
    results["seconds"] = round(time.perf_counter() - started, 2)
    if onchain:
        results["onchain"] = _onchain(market, onchain, seed)
    results["deals_simulated"] = _SIMULATED[0]
    results["deals_per_second"] = round(_SIMULATED[0] / results["seconds"])
    (out / "twin.json").write_text(json.dumps(results, indent=2, default=str))
    _plots(out, heat, results["collusion_by_k"])
    (out / "twin.md").write_text(_markdown(results))
    return results


def _onchain(market: Market, deals: int, seed: int) -> dict[str, Any]:
    from lilypad.twin.onchain import OnChainTwin, check_parity, random_plans

    out: dict[str, Any] = {}
    for k in (1, 3):
        terms = Terms(**{**asdict(market.terms), "k": k})
        # Stakes well above the minimum, so slashes leave a panel to draw for every deal.
        with OnChainTwin(market.settings, terms, stake=9 * market.stake) as twin:
            parity = check_parity(twin, random_plans(terms, random.Random(seed + k), deals))
            out[str(k)] = {"deals": parity.deals, "seconds": round(parity.seconds, 1),
                           "deals_per_second": round(parity.deals_per_second, 1),
                           "mismatches": list(parity.mismatches)}
            if terms == market.terms:  # the defaults' panel: the agents themselves drive the contracts
                out["strategies"] = _onchain_strategies(twin, market, max(4, min(deals // 10, 20)), seed)
    return out


def _onchain_strategies(twin: Any, market: Market, deals: int, seed: int) -> dict[str, Any]:
    from lilypad.twin.onchain import play_strategy

    # Job creators check half their results, so that a few dozen deals see mediation at work
    # (at the defaults' 2.5 % audits they would mostly not); the fast model's estimate of the
    # same market beside each.
    checking = market.with_(check_rate=0.5)
    played: dict[str, Any] = {}
    for cheat, honest in CHEATS.items():
        twin.top_up()
        p = play_strategy(twin, cheat, honest, checking, deals, seed)
        model = advantage(cheat, checking, 4_000, seed)
        played[cheat.value] = {"deals": p.deals, "mean": p.mean, "low": p.low, "high": p.high,
                               "model_mean": model.mean, "seconds": round(p.seconds, 1),
                               "mismatches": list(p.mismatches)}
    return played


def _jackpot_flow(market: Market) -> dict[str, float]:
    """What an honest deal adds to the jackpot (tax) and takes from it (audits' fees), per deal
    in LP, and the job cost above which audits pay for themselves: audits stop while the jackpot
    cannot pay a fee, so a market whose audits outspend its tax loses them."""
    s, t = market.settings, market.terms
    job_cost = t.instruction_price * market.instructions
    tax_in = job_cost * s.tax_bps // BPS
    tax_in -= tax_in * s.treasury_share_bps // BPS
    audits_out = t.mediation_fee * s.audit_bps / BPS
    share = s.tax_bps * (BPS - s.treasury_share_bps) / BPS / BPS
    return {"tax_in": tax_in / LP, "audit_fees_out": audits_out / LP, "net": (tax_in - audits_out) / LP,
            "break_even_job_cost_in_fees": (s.audit_bps / BPS) / share if share else math.inf}


def _multiple(terms: Terms, m: int) -> Terms:
    return Terms(**{**asdict(terms), "results_collateral_multiple": m})


def _describe(market: Market) -> dict[str, Any]:
    return {"terms": asdict(market.terms), "settings": market.settings.model_dump(), "check_rate": market.check_rate,
            "listed_mediators": market.listed, "stake": market.stake, "jackpot": market.jackpot,
            "work_share": market.work_share}


def _heat(market: Market, deals: int, seed: int, quick: bool) -> dict[str, Any]:
    rates = [0.0, 0.1, 0.2, 0.3, 0.5, 0.8] if not quick else [0.0, 0.3, 0.8]
    multiples = [1, 2, 5, 10, 20, 40] if not quick else [1, 5, 40]
    no_audit = market.settings.model_copy(update={"audit_bps": 0})
    grid = [[advantage(Strategy.FAKE_RESULT, market.with_(check_rate=r, terms=_multiple(market.terms, m),
                                                          settings=no_audit), deals, seed).mean
             for m in multiples] for r in rates]
    return {"check_rates": rates, "multiples": multiples, "profit": grid}


def _plots(out: Path, heat: dict[str, Any], collusion: dict[int, dict[int, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    values = [v for row in heat["profit"] for v in row]
    norm = TwoSlopeNorm(vcenter=0.0, vmin=min(min(values), -1e-9), vmax=max(max(values), 1e-9))
    fig, ax = plt.subplots(figsize=(6, 4))
    image = ax.imshow(heat["profit"], origin="lower", cmap="RdYlGn_r", norm=norm, aspect="auto")
    ax.set_xticks(range(len(heat["multiples"])), [str(m) for m in heat["multiples"]])
    ax.set_yticks(range(len(heat["check_rates"])), [f"{r:.0%}" for r in heat["check_rates"]])
    ax.set_xlabel("results collateral multiple")
    ax.set_ylabel("check rate")
    ax.set_title("fake result: profit over honesty (LP per deal)")
    for i, row in enumerate(heat["profit"]):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(image)
    fig.tight_layout()
    fig.savefig(out / "heat_fake_result.png", dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for stake in (10, 100):
        ks = sorted(collusion)
        ax.plot(ks, [collusion[k][stake] for k in ks], marker="o", label=f"stake {stake} LP")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("panel size k")
    ax.set_ylabel("pair's profit over honesty (LP per deal)")
    ax.set_title("provider + one bribed mediator, check rate 50 %")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "collusion_by_k.png", dpi=100)
    plt.close(fig)


def _markdown(r: dict[str, Any]) -> str:
    lines = ["# Does cheating pay? The twin's report", "",
             (f"Mode {r['mode']}, seed {r['seed']}, {r['deals_per_verdict_at_defaults']:,} deals per verdict at "
              f"the defaults, {r['deals_per_estimate']:,} per other estimate, "
              f"{r['seconds']} s ({r['deals_per_second']:,} simulated deals per second, fast model). "
              "Gas is not counted. Profit is over the honest strategy of the same agent, LP per deal, "
              "with a 95 % confidence interval."), "",
             "## At the defaults", "", "| strategy | profit over honesty | 95 % interval | verdict |",
             "|---|---|---|---|"]
    for name, e in r["at_defaults"].items():
        verdict = {True: "**pays**", False: "does not pay", None: "not decided at this sample size"}[e["pays"]]
        lines.append(f"| {name} | {e['mean']:+.3f} | [{e['low']:+.3f}, {e['high']:+.3f}] | {verdict} |")
    lines += ["", "## The smallest rate at which a fake result stops paying", "",
              "| results collateral multiple | check rate (no audits) | audit rate (nobody checks) |", "|---|---|---|"]
    for m, rate in r["safe_check_rate"].items():
        audit = r["safe_audit_rate"].get(m)
        lines.append(f"| {m} | {_pct(rate)} | {_pct(audit)} |")
    lines += ["", "## A fake result, by the share of the price the skipped work costs", "",
              "| work share | profit over honesty | 95 % interval |", "|---|---|---|"]
    for w, e in r["fake_result_by_work_share"].items():
        lines.append(f"| {w} | {e['mean']:+.3f} | [{e['low']:+.3f}, {e['high']:+.3f}] |")
    j = r["jackpot"]
    lines += ["", "## Do audits pay for themselves?", "",
              (f"An honest deal of the default job cost adds {j['tax_in']:.4f} LP of tax to the jackpot and takes "
               f"{j['audit_fees_out']:.4f} LP of audit fees from it (net {j['net']:+.4f} LP): audits fund "
               f"themselves for jobs costing at least {j['break_even_job_cost_in_fees']:.2f} times their mediation "
               "fee. "
               "Below that the jackpot drains, and audits stop while it cannot pay a fee: fund it "
               "(`fundJackpot`) or raise the tax.")]
    lines += ["", "## A provider and bribed mediators (check rate 50 %; an offence slashes the whole stake)", "",
              ("| k | one bribed, stake 10 LP | one bribed, stake 100 LP | two bribed, stake 10 LP | "
               "two bribed, stake 100 LP |"), "|---|---|---|---|---|"]
    two = r["collusion_by_k_two_bribed"]
    for k, by_stake in r["collusion_by_k"].items():
        pair = two.get(k)
        cells = f"{pair[10]:+.3f} | {pair[100]:+.3f}" if pair else "- | -"
        lines.append(f"| {k} | {by_stake[10]:+.3f} | {by_stake[100]:+.3f} | {cells} |")
    if "onchain" in r:
        lines += ["", "## The two engines", ""]
        for k, o in r["onchain"].items():
            if k == "strategies":
                continue
            lines.append(f"- k = {k}: {o['deals']} deals played through the contracts on anvil at "
                         f"{o['deals_per_second']} deals per second (one transaction per block), each settled by the "
                         f"fast model: {len(o['mismatches'])} mismatches.")
        played = r["onchain"].get("strategies", {})
        if played:
            lines += ["", ("Each strategy's agents driving the contracts at the defaults, with job creators "
                           "checking half their results (pairs of deals: the strategy's and its honest "
                           "counterpart's; the chain draws audits and panels; each deal also settled by the fast "
                           "model). Few deals, so wide intervals; the fast model's estimate of the same market "
                           "beside it:"), "",
                      ("| strategy | deal pairs | on-chain profit over honesty | 95 % interval | fast model | "
                       "mismatches |"), "|---|---|---|---|---|---|"]
            for name, p in played.items():
                lines.append(f"| {name} | {p['deals']} | {p['mean']:+.3f} | [{p['low']:+.3f}, {p['high']:+.3f}] | "
                             f"{p['model_mean']:+.3f} | {len(p['mismatches'])} |")
    lb = r["learning_provider"]
    lines += ["", "## A learning provider", "",
              f"An epsilon-greedy provider choosing its cheating probability settled on {lb['settled_on']}; "
              "mean earning per arm: " + ", ".join(f"p={a}: {v:+.3f}" for a, v in lb["arms"].items()) + ".", "",
              "Plots: `heat_fake_result.png`, `collusion_by_k.png`.", ""]
    return "\n".join(lines)


def _pct(rate: float | None) -> str:
    return "never, on the grid" if rate is None else f"{rate:.0%}"
