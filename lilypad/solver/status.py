"""The solver's status page, as HTML: :func:`render_status_page`.

A self-contained page (no scripts, no external CSS or fonts: nothing outside
may be reachable) that refreshes itself every ``refresh_s`` seconds: open
offers, deals by state and queue, providers with their offered hardware,
slots in use and on-chain reputation, the protocol's jackpot, treasury and
settings, the mediators' stakes, recent verdicts (who judged, audited or
checked, the panel's votes), recent deals and recent results, all from one
:func:`~lilypad.solver.metrics.snapshot` and the cached chain reads of
:class:`~lilypad.solver.metrics.StatusSources`. The solver serves it at
``/status`` (and ``/``), beside ``/health`` and ``/metrics``
(:mod:`lilypad.solver.api.status`).

Everything shown is escaped; addresses and ids are shown in full (they are
what operators grep for).
"""

from __future__ import annotations

import datetime as _dt
import html
import time
from typing import Any

from lilypad.solver.metrics import StatusSources

__all__ = ["DEFAULT_REFRESH_S", "render_status_page"]

DEFAULT_REFRESH_S = 5

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#f6f8fa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:2px solid #2f81f7}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:.5em}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#dbe9ff}td.num{text-align:right}code{font:12px ui-monospace,monospace;word-break:break-all}
.cards{display:flex;flex-wrap:wrap;gap:.6em}.card{background:#fff;border:1px solid #d0d7de;border-left:5px solid
#2f81f7;padding:.4em .8em;min-width:9em}.card b{display:block;font-size:1.5em}
.s-ResultsAccepted,.s-MediationAccepted{color:#1a7f37;font-weight:600}
.s-MediationNonDeterministic{color:#9a6700;font-weight:600}
.s-MediationRejected,.s-TimeoutSubmitResults,.s-TimeoutAgree,.s-TimeoutJudgeResults,.s-TimeoutMediateResults
{color:#cf222e;font-weight:600}.muted{color:#656d76}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _when(stamp: float | None) -> str:
    if not stamp:
        return "-"
    return _dt.datetime.fromtimestamp(float(stamp), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _lp(units: int) -> str:
    whole, frac = divmod(int(units), 10**18)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".")


def _spec(spec: Any) -> str:
    parts = [f"{spec.cpu} mCPU", f"{spec.ram} MB RAM"]
    if spec.gpu:
        vram = f" ({max(spec.vram)} MB VRAM)" if spec.vram else ""
        parts.append(f"{spec.gpu} GPU{vram}")
    if spec.disk:
        parts.append(f"{spec.disk} MB disk")
    return ", ".join(parts)


def _table(headers: list[str], rows: list[str], empty: str, table_id: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(rows) or f'<tr><td colspan="{len(headers)}" class="muted">{_e(empty)}</td></tr>'
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _reputation(rep: Any) -> str:
    if rep is None:
        return '<span class="muted">not connected to a chain</span>'
    return (f"agreed {rep.deals_agreed}, submitted {rep.results_submitted}, accepted {rep.results_accepted}, "
            f"checked {rep.results_checked}, mediation passed {rep.mediations_passed} / failed "
            f"{rep.mediations_failed}, timeouts {rep.submit_timeouts + rep.other_timeouts}; "
            f"value paid {_lp(rep.value_paid)} LP, verified {_lp(rep.value_verified)} LP")


def _providers(snap: dict[str, Any], sources: StatusSources) -> list[str]:
    latest: dict[str, Any] = {}
    for record in snap["open_offers"]["resource"]:
        offer = record.signed.offer
        key = offer.resource_provider.lower()
        if key not in latest or offer.created_at > latest[key].created_at:
            latest[key] = offer
    for deal in snap["recent_deals"]:
        latest.setdefault(deal["resource_provider"].lower(), None)
    rows = []
    for key, offer in sorted(latest.items()):
        address = offer.resource_provider if offer is not None else key
        hardware = _e(_spec(offer.spec)) if offer is not None else '<span class="muted">no open offer</span>'
        slots = f"{snap['usage'].get(key, 0)} / {offer.slots}" if offer is not None else str(snap["usage"].get(key, 0))
        price = _e(_lp(offer.pricing.instruction_price)) + " LP" if offer is not None else "-"
        rows.append(f'<tr class="provider" data-address="{_e(address)}"><td><code>{_e(address)}</code></td>'
                    f"<td>{hardware}</td><td class=num>{_e(slots)}</td><td class=num>{price}</td>"
                    f"<td>{_reputation(sources.reputation_of(address))}</td></tr>")
    return rows


_VERDICT_NAMES = {0: "-", 1: "accept", 2: "reject", 3: "non-deterministic"}
_MEDIATED = ("MediationAccepted", "MediationRejected", "MediationNonDeterministic", "TimeoutMediateResults",
             "ResultsChecked")


def _protocol(sources: StatusSources) -> str:
    view = sources.protocol_view()
    if view is None:
        return '<p class="muted">not connected to a chain</p>'
    st = view.settings
    rows = [("jackpot", f"{_lp(view.jackpot)} LP"), ("treasury (unclaimed)", f"{_lp(view.treasury)} LP"),
            ("settings version", str(view.settings_version)),
            ("tax", (f"{st.tax_bps / 100:g} % of the job cost "
                    f"({st.treasury_share_bps / 100:g} % of it to the treasury)")),
            ("random audits", f"{st.audit_bps / 100:g} % of unchecked results"),
            ("catch reward", f"{st.reward_bps / 100:g} % of the jackpot"),
            ("minimum mediator stake", f"{_lp(st.min_mediator_stake)} LP" if st.min_mediator_stake else "off"),
            ("slash per offence", f"{_lp(st.mediator_slash)} LP")]
    body = "".join(f'<tr class="protocol"><td>{_e(k)}</td><td>{_e(v)}</td></tr>' for k, v in rows)
    return f'<table id="protocol"><tbody>{body}</tbody></table>'


def _mediators(snap: dict[str, Any], sources: StatusSources) -> list[str]:
    rows = []
    for address in snap.get("mediators", []):
        stake = sources.stake_of(address)
        if stake is None:
            text = '<span class="muted">unknown</span>'
        elif not stake.amount:
            text = "not registered"
        else:
            text = _e(f"{_lp(stake.amount)} LP" + (" (unbonding)" if stake.unbonding_since else ""))
        rows.append(f'<tr class="mediator" data-address="{_e(address)}"><td><code>{_e(address)}</code></td>'
                    f"<td>{text}</td></tr>")
    return rows


def _verdicts(snap: dict[str, Any], sources: StatusSources) -> list[str]:
    from lilypad.protocol.deal import AgreementState, state_name

    rows = []
    for d in snap["recent_deals"]:
        state = state_name(AgreementState(int(d["state"])))
        if state not in _MEDIATED:
            continue
        panel = sources.panel_of(d["deal_id"])
        if panel is None or not panel.round:
            how, votes = "-", '<span class="muted">unknown</span>'
        else:
            how = "audit" if panel.audited else "checked"
            votes = ", ".join(f"{m[:10]}…: {_VERDICT_NAMES.get(int(v), '?')}" for m, v in panel.votes) or "-"
            votes = _e(f"round {panel.round}, panel of {panel.size}: {votes}")
        rows.append(f'<tr class="verdict" id="verdict-{_e(d["deal_id"])}" data-state="{_e(state)}"><td><code>'
                    f'{_e(d["deal_id"])}</code></td><td class="s-{_e(state)}">{_e(state)}</td><td>{_e(how)}</td>'
                    f"<td>{votes}</td></tr>")
    return rows


def render_status_page(snap: dict[str, Any], sources: StatusSources, *, title: str = "lilypad solver",
                       solver: str | None = None, chain_id: Any = None, refresh_s: int = DEFAULT_REFRESH_S) -> str:
    """The status page's HTML for a :func:`~lilypad.solver.metrics.snapshot`."""
    resource, job = snap["open_offers"]["resource"], snap["open_offers"]["job"]
    head = snap["head"]
    chain = "not watching a chain" if head is None else (
        f"head block {head[0]}, {max(0, int(time.time() - head[1]))} s old")
    cards = [("open resource offers", len(resource)), ("open job offers", len(job)),
             ("deals", sum(snap["deal_counts"].values())), ("results stored", snap["results_stored"])]
    card_html = "".join(f'<div class="card"><b>{_e(n)}</b>{_e(label)}</div>' for label, n in cards)

    offer_rows = []
    for record in resource + job:
        offer = record.signed.offer
        what = (f"{offer.slots} slot(s), {_lp(offer.pricing.instruction_price)} LP/instruction"
                if record.kind == "resource" else f"module {offer.module.ref}")
        offer_rows.append(
            f'<tr class="offer" id="offer-{_e(record.id)}" data-kind="{_e(record.kind)}"><td><code>{_e(record.id)}'
            f"</code></td><td>{_e(record.kind)}</td><td><code>{_e(record.signer)}</code></td>"
            f"<td>{_e(_spec(offer.spec))}</td><td>{_e(what)}</td><td>{_e(_when(record.accepted_at))}</td></tr>")
    state_rows = [f'<tr class="deal-state" data-state="{_e(s)}"><td class="s-{_e(s)}">{_e(s)}</td>'
                  f"<td class=num>{n}</td></tr>" for s, n in snap["deal_counts"].items()]
    queue_rows = [f"<tr><td>{_e(q.replace('_', ' '))}</td><td class=num>{n}</td></tr>"
                  for q, n in snap["queues"].items()]
    from lilypad.protocol.deal import AgreementState, state_name

    deal_rows = []
    for d in snap["recent_deals"]:
        state = state_name(AgreementState(int(d["state"])))
        deal_rows.append(
            f'<tr class="deal" id="deal-{_e(d["deal_id"])}" data-state="{_e(state)}"><td><code>{_e(d["deal_id"])}'
            f'</code></td><td class="s-{_e(state)}">{_e(state)}</td><td><code>{_e(d["resource_provider"])}</code>'
            f"</td><td><code>{_e(d['result_cid'] or '-')}</code></td><td>{_e(_when(d['updated_at']))}</td></tr>")
    result_rows = [
        f'<tr class="result"><td><code>{_e(r["deal_id"])}</code></td><td><code>{_e(r["cid"])}</code></td>'
        f"<td class=num>{_e(r['size'])}</td><td>{_e(_when(r['uploaded_at']))}</td></tr>"
        for r in snap["recent_results"]]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{int(refresh_s)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">solver <code>{_e(solver or 'any')}</code> &middot; chain id {_e(chain_id)} &middot; {_e(chain)}
&middot; updated {_e(_when(snap['taken_at']))} &middot; refreshes every {int(refresh_s)} s</p>
<div class="cards">{card_html}</div>
<h2>Open offers</h2>
{_table(["offer id", "kind", "signer", "hardware", "terms", "accepted"], offer_rows, "no open offers", "offers")}
<h2>Deals by state</h2>
{_table(["state", "deals"], state_rows, "no deals yet", "deal-states")}
<h2>Queues</h2>
{_table(["queue", "depth"], queue_rows, "", "queues")}
<h2>Providers</h2>
{_table(["provider", "hardware offered", "slots in use", "price", "reputation (on-chain)"],
        _providers(snap, sources), "no providers yet", "providers")}
<h2>Protocol</h2>
{_protocol(sources)}
<h2>Mediators</h2>
{_table(["mediator", "stake (registry)"], _mediators(snap, sources), "no mediators yet", "mediators")}
<h2>Recent verdicts</h2>
{_table(["deal id", "state", "how", "panel and votes"], _verdicts(snap, sources), "no mediations yet", "verdicts")}
<h2>Recent deals</h2>
{_table(["deal id", "state", "provider", "result CID (on-chain)", "updated"], deal_rows, "no deals yet", "deals")}
<h2>Recent results</h2>
{_table(["deal id", "CID", "bytes", "uploaded"], result_rows, "no results yet", "results")}
</body></html>
"""
