"""Section 1: gas and calldata per job, every party's transactions, per path.

The happy path, mediation accept and mediation reject go through the real
services (``lilypad run`` as the job creator, ``lilypad resource-provider``,
``lilypad mediator``; reject with a provider started with the test-only
``LILYPAD_PROVIDER_FAULT=wrong-result``). The smart-contract path goes through
``ExampleClient.runCowsay`` and a real relayer (``lilypad jobcreator``). The
four timeouts need parties that stop acting, and the non-deterministic verdict
a job whose re-runs disagree, so they are driven directly on a chain of their
own (same contracts, ``evm_increaseTime``), each party sending exactly what the
services send (an exact approval before every escrow; the mediator fixes the
draw with ``assignMediator`` before its verdict, as ``lilypad mediator`` does).
The anti-cheating mechanisms' paths (a taxed happy path, a panel of three by
commit-reveal, a random audit) and their one-time steps are driven directly on
a third chain under the public-network protocol settings.

Every transaction mined while one job is in flight belongs to that job (one
job at a time; anvil mines each transaction in its own block).
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from statistics import median
from typing import Any

from web3.logs import DISCARD

from bench.chain import MAX_UINT, Chain
from bench.common import ChainLedger, Tx, cli_job, devnet, figure, finish_cli_job, section, start_cli_job

__all__ = ["REFERENCE", "run"]

#: Lilypad's own contracts, all parties' transactions on a local chain (issue #7).
REFERENCE = {"happy": 1_768_831, "mediation_accept": 2_013_250, "smart_contract": 2_159_341}
#: The targets per job: issue 20 (the happy path 20 % of Lilypad's, mediation 25 %) and issue 19
#: (the smart-contract path).
TARGET = {"happy": 354_000, "mediation_accept": 503_000, "smart_contract": 450_000}
_MODULE, _INPUTS = "cowsay:v0.0.1", {"Message": "gas"}
_CID = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"


def _parties() -> dict[str, str]:
    from lilypad.devnet.network import BRIDGE, JOB_CREATOR, MEDIATOR, PROVIDER, SOLVER, address_of

    return {address_of(JOB_CREATOR): "job creator", address_of(PROVIDER): "resource provider",
            address_of(MEDIATOR): "mediator", address_of(SOLVER): "solver", address_of(BRIDGE): "relayer"}


def _job_totals(txs: list[Tx]) -> dict[str, Any]:
    per_party: dict[str, int] = defaultdict(int)
    for tx in txs:
        per_party[tx.party] += tx.gas_used
    return {"gas": sum(t.gas_used for t in txs), "calldata": sum(t.calldata_bytes for t in txs),
            "calldata_nonzero": sum(t.calldata_nonzero for t in txs), "txs": len(txs), "per_party": dict(per_party)}


def _check_ok(name: str, txs: list[Tx]) -> None:
    bad = [t for t in txs if not t.ok]
    if bad:
        raise RuntimeError(f"{name}: reverted transactions {bad}")


class _Paths:
    """Collects, per path, the transactions of each job."""

    def __init__(self) -> None:
        self.jobs: dict[str, list[list[Tx]]] = defaultdict(list)
        self.once: dict[str, list[Tx]] = {}
        #: Per path, one job's transactions and where each one's gas went (bench.gas_profile).
        self.profiles: dict[str, list[tuple[Tx, dict[str, int]]]] = {}

    def add(self, path: str, txs: list[Tx]) -> None:
        _check_ok(path, txs)
        if not txs:
            raise RuntimeError(f"{path}: no transactions were mined for the job")
        self.jobs[path].append(txs)


# --------------------------------------------------------------------------
# Paths through the real services
# --------------------------------------------------------------------------


def _service_paths(paths: _Paths, repeats: int) -> list[str]:
    from lilypad.devnet.network import JOB_CREATOR, address_of

    notes = []
    with devnet("gas") as net:
        chain = Chain.of(net)
        ledger = ChainLedger(f"http://127.0.0.1:{net.rpc_port}", _parties(), chain.contract_names())
        net.add_provider()
        net.add_mediator()
        client_dir = net.root / "client"

        def job(path: str, *extra: str) -> None:
            mark = ledger.head()
            cli_job(net, client_dir, _MODULE, _INPUTS, *extra)
            paths.add(path, ledger.since(mark))

        for _ in range(repeats):
            job("happy")
        for _ in range(max(1, repeats - 1)):
            job("mediation_accept", "--mediate")

        # Smart-contract path: a client contract, a real relayer.
        net.add_bridge()
        payee = address_of(JOB_CREATOR)
        client = chain.deploy("ExampleClient", chain.addresses["controller"], sender=payee)
        mark = ledger.head()
        chain.send(chain.c["token"].functions.approve(chain.addresses["job_creator"], MAX_UINT), payee)
        chain.send(chain.c["job_creator"].functions.setCallerAllowance(client.address, MAX_UINT), payee)
        paths.once["smart_contract"] = ledger.since(mark)
        ledger.names[client.address.lower()] = "ExampleClient"
        for i in range(repeats):
            mark = ledger.head()
            receipt = chain.send(client.functions.runCowsay(f"gas {i}"), payee)
            (event,) = chain.c["job_creator"].events.JobAdded().process_receipt(receipt, errors=DISCARD)
            job_id = int(event.args.id)
            chain.wait_for(lambda: client.functions.results(job_id).call(), timeout=180,
                           what=f"the callback of job {job_id}", every=0.1)
            paths.add("smart_contract", ledger.since(mark))
        net.processes["bridge"].stop()

        # Mediation reject: the same provider key, now tampering with results.
        net.processes["provider"].stop()
        net.add_provider("provider-wrong", fault="wrong-result")
        mark = ledger.head()
        proc, before, started = start_cli_job(net, client_dir, _MODULE, _INPUTS, "--mediate")
        done = finish_cli_job(proc, client_dir, before, started)
        state = (done.record or {}).get("chain_state")
        if state != "MEDIATION_REJECTED":
            raise RuntimeError(f"mediation reject path ended in {state}:\n{done.output[-2000:]}\n{net.logs()}")
        paths.add("mediation_reject", ledger.since(mark))
    notes.append("happy path, mediation and smart-contract path: real services on one devnet, one job at a time")
    return notes


# --------------------------------------------------------------------------
# Timeouts and the non-deterministic verdict, on a chain of their own
# --------------------------------------------------------------------------


def _direct_paths(paths: _Paths, repeats: int) -> None:
    from lilypad.devnet.network import JOB_CREATOR, MEDIATOR, PROVIDER, SOLVER, address_of
    from lilypad.devnet.processes import deploy_contracts, dev_private_key, free_port, start_anvil
    from lilypad.protocol.deal import Deal, DealMembers, DealProtocol
    from lilypad.protocol.offers import DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS

    root = Path(tempfile.mkdtemp(prefix="lilypad-bench-timeouts-"))
    port = free_port()
    anvil = start_anvil(port, root / "anvil.log", steps_tracing=True)  # struct logs for the gas profile
    try:
        deploy_contracts(port, root / "deployments", root / "deploy.log")
        chain = Chain(f"http://127.0.0.1:{port}", root / "deployments")
        ledger = ChainLedger(f"http://127.0.0.1:{port}", _parties(), chain.contract_names())
        jc, rp, mediator = address_of(JOB_CREATOR), address_of(PROVIDER), address_of(MEDIATOR)
        ctl = chain.c["controller"].functions
        t = DEFAULT_TIMEOUTS
        protocol = DealProtocol(settings_version=int(ctl.getSettingsVersion().call()))  # as the solver names it

        def deal() -> Deal:
            return Deal(members=DealMembers(solver=address_of(SOLVER), job_creator=jc, resource_provider=rp,
                                            mediators=(address_of(MEDIATOR),)),
                        timeouts=DEFAULT_TIMEOUTS, pricing=DEFAULT_RESOURCE_PRICING, protocol=protocol)

        def check(d: Deal) -> None:
            # lilypad run --mediate: a permit for exactly the mediation fee, inside checkResult.
            chain.send(ctl.checkResultWithPermit(d.as_tuple(), *chain.permit_args(jc_key, d.pricing.mediation_fee)),
                       jc)

        jc_key = dev_private_key(JOB_CREATOR)
        provider_approved = False

        def jc_agree(d: Deal) -> None:
            # lilypad run: an EIP-2612 permit for exactly the deposit, inside agree.
            chain.send(ctl.agreeWithPermit(d.as_tuple(), *chain.permit_args(jc_key, d.job_creator_deposit)), jc)

        def agree_both(d: Deal) -> None:
            nonlocal provider_approved
            jc_agree(d)
            # The provider approves Payments once, for an unlimited amount, on its first deal.
            if not provider_approved:
                chain.approve_payments(rp, MAX_UINT)
                provider_approved = True
            chain.send(ctl.agree(d.as_tuple()), rp)

        def add_result(d: Deal) -> None:
            from lilypad.protocol.cid import cid_to_digest

            chain.send(ctl.addResult(d.as_tuple(), cid_to_digest(_CID), 1), rp)

        for _ in range(repeats):
            d = deal()
            mark = ledger.head()
            jc_agree(d)
            chain.advance(t.agree)
            chain.send(ctl.timeoutAgree(d.as_tuple()), jc)
            paths.add("timeout_agree", ledger.since(mark))

            d = deal()
            mark = ledger.head()
            agree_both(d)
            chain.advance(t.submit_results)
            chain.send(ctl.timeoutSubmitResult(d.as_tuple()), jc)
            paths.add("timeout_submit_result", ledger.since(mark))

            d = deal()
            mark = ledger.head()
            agree_both(d)
            add_result(d)
            chain.advance(t.judge_results)
            chain.send(ctl.timeoutJudgeResult(d.as_tuple()), rp)
            paths.add("timeout_judge_result", ledger.since(mark))

            d = deal()
            mark = ledger.head()
            agree_both(d)
            add_result(d)
            check(d)
            chain.advance(t.mediate_results)
            chain.send(ctl.timeoutMediateResult(d.as_tuple()), jc)
            paths.add("timeout_mediate_result", ledger.since(mark))

            # The mediator's own runs disagreed: the job is non-deterministic (its only mediator is drawn).
            d = deal()
            mark = ledger.head()
            agree_both(d)
            add_result(d)
            check(d)
            chain.send(ctl.assignMediator(d.as_tuple()), mediator)
            chain.send(ctl.mediationNonDeterministic(d.as_tuple()), mediator)
            paths.add("mediation_non_deterministic", ledger.since(mark))

        # The profile: a happy path and a mediation accept with the transactions the services send.
        d = deal()
        mark = ledger.head()
        agree_both(d)
        add_result(d)
        chain.send(ctl.acceptResult(d.as_tuple()), jc)
        paths.profiles["happy"] = _profile(ledger, ledger.since(mark))
        d = deal()
        mark = ledger.head()
        agree_both(d)
        add_result(d)
        check(d)
        chain.send(ctl.assignMediator(d.as_tuple()), mediator)
        chain.send(ctl.mediationAcceptResult(d.as_tuple()), mediator)
        paths.profiles["mediation_accept"] = _profile(ledger, ledger.since(mark))
    finally:
        anvil.stop()


def _profile(ledger: ChainLedger, txs: list[Tx]) -> list[tuple[Tx, dict[str, int]]]:
    from bench.gas_profile import breakdown

    _check_ok("profile", txs)
    return [(tx, breakdown(ledger.w3, tx.tx_hash)) for tx in txs]


def _profile_table(paths: _Paths) -> dict[str, Any]:
    from bench.gas_profile import CATEGORIES

    columns = ["path", "function", "gas", "intrinsic + calldata", "new slots (n)", "slot updates (n)",
               "slot reads", "logs", "calls (n)", "hashing", "execution", "refund"]
    rows: list[list[Any]] = []
    for path, profiled in paths.profiles.items():
        total = {c: 0 for c in (*CATEGORIES, "gas_used", "new_slots_n", "slot_updates_n", "calls_n")}
        for tx, b in profiled:
            for k in total:
                total[k] += b.get(k, 0)
            rows.append(_profile_row(path, tx.function, b))
        rows.append(_profile_row(path, "**the job**", total))
    return {"title": "Where the gas goes: one job per path, from anvil's opcode trace (debug_traceTransaction)",
            "columns": columns, "rows": rows}


def _profile_row(path: str, function: str, b: dict[str, int]) -> list[Any]:
    return [path, function, b["gas_used"], b["intrinsic"], f"{b['new_slots']:,} ({b.get('new_slots_n', 0)})",
            f"{b['slot_updates']:,} ({b.get('slot_updates_n', 0)})", b["slot_reads"], b["logs"],
            f"{b['calls']:,} ({b.get('calls_n', 0)})", b["hashing"], b["execution"], -b["refund"]]


# --------------------------------------------------------------------------
# The anti-cheating mechanisms (issue 17), driven directly
# --------------------------------------------------------------------------

#: The public-network settings ``ape run deploy`` applies (``NETWORK_SETTINGS``, docs/protocol.md);
#: audits are switched on separately so the happy path's draw is known.
def _public() -> dict[str, int]:
    from lilypad.protocol.settings import NETWORK_SETTINGS as n

    return {"tax": n.tax_bps, "treasury_share": n.treasury_share_bps, "audit": 0, "reward": n.reward_bps,
            "min_stake": n.min_mediator_stake, "slash": n.mediator_slash}


_PUBLIC = _public()
_PANEL_KEYS = (3, 5, 6)  # anvil test accounts: the devnet's mediator and two more


def _mechanism_paths(paths: _Paths, repeats: int) -> None:
    """A taxed happy path, a panel of three voting by commit-reveal, and a random audit, under
    the public-network settings on a chain of their own; the one-time steps (a mediator's
    register-and-stake, funding the jackpot, claiming the treasury) as ``once`` rows."""
    from eth_account import Account

    from lilypad.devnet.network import JOB_CREATOR, PROVIDER, SOLVER, address_of
    from lilypad.devnet.processes import deploy_contracts, dev_private_key, free_port, start_anvil
    from lilypad.mediator.panel import commitment
    from lilypad.protocol.cid import cid_to_digest
    from lilypad.protocol.deal import Deal, DealMembers, DealProtocol, Verdict
    from lilypad.protocol.offers import DEFAULT_RESOURCE_PRICING, DEFAULT_TIMEOUTS

    root = Path(tempfile.mkdtemp(prefix="lilypad-bench-mechanisms-"))
    port = free_port()
    anvil = start_anvil(port, root / "anvil.log")
    try:
        deploy_contracts(port, root / "deployments", root / "deploy.log")
        chain = Chain(f"http://127.0.0.1:{port}", root / "deployments")
        panel = [Account.from_key(dev_private_key(k)).address for k in _PANEL_KEYS]
        admin = Account.from_key(dev_private_key(0)).address
        parties = {**_parties(), **{m: f"mediator {i + 1}" for i, m in enumerate(panel)}, admin: "admin"}
        ledger = ChainLedger(f"http://127.0.0.1:{port}", parties, chain.contract_names())
        jc, rp = address_of(JOB_CREATOR), address_of(PROVIDER)
        ctl, token = chain.c["controller"].functions, chain.c["token"].functions
        registry = chain.at("LilypadMediatorRegistry", ctl.getMediatorRegistryAddress().call())
        mediation = chain.c["mediation"].functions
        digest = cid_to_digest(_CID)

        def settings(audit: int) -> DealProtocol:
            p = _PUBLIC
            chain.send(ctl.setProtocolSettings((p["tax"], p["treasury_share"], audit, p["reward"], p["min_stake"],
                                                p["slash"])), admin)
            return DealProtocol(settings_version=int(ctl.getSettingsVersion().call()))

        mark = ledger.head()
        chain.send(ctl.setTreasury(admin), admin)
        protocol = settings(0)
        paths.once["mechanisms: settings"] = ledger.since(mark)
        mark = ledger.head()
        for m in panel:  # each mediator once: approve the registry, register with the minimum stake
            chain.send(token.approve(registry.address, _PUBLIC["min_stake"]), m)
            chain.send(registry.functions.register(_PUBLIC["min_stake"]), m)
        paths.once["mechanisms: mediator stakes"] = ledger.since(mark)
        mark = ledger.head()
        chain.approve_payments(admin, MAX_UINT)
        chain.send(ctl.fundJackpot(20 * 10**18), admin)
        paths.once["mechanisms: fund the jackpot"] = ledger.since(mark)
        chain.approve_payments(rp, MAX_UINT)
        chain.approve_payments(jc, MAX_UINT)

        def deal(k: int, proto: DealProtocol) -> Deal:
            return Deal(members=DealMembers(solver=address_of(SOLVER), job_creator=jc, resource_provider=rp,
                                            mediators=tuple(panel[:k] if k > 1 else panel[:1])),
                        timeouts=DEFAULT_TIMEOUTS, pricing=DEFAULT_RESOURCE_PRICING,
                        protocol=proto.model_copy(update={"consortium_size": k}))

        def submitted(d: Deal) -> None:
            chain.send(ctl.agree(d.as_tuple()), jc)
            chain.send(ctl.agree(d.as_tuple()), rp)
            chain.send(ctl.addResult(d.as_tuple(), digest, 1), rp)

        for _ in range(repeats):
            d = deal(1, protocol)
            mark = ledger.head()
            submitted(d)
            chain.send(ctl.acceptResult(d.as_tuple()), jc)
            paths.add("mechanisms_happy_taxed", ledger.since(mark))

            d = deal(3, protocol)
            mark = ledger.head()
            submitted(d)
            chain.send(ctl.checkResult(d.as_tuple()), jc)
            chain.send(ctl.assignMediator(d.as_tuple()), panel[0])
            round_ = int(mediation.getPanel(d.deal_id).call()[0][1])
            salts = {m: bytes([i + 1]) * 32 for i, m in enumerate(panel)}
            for m in panel:
                chain.send(ctl.commitVerdict(d.as_tuple(), commitment(d.deal_id, round_, m, Verdict.ACCEPT, digest,
                                                                      salts[m])), m)
            for m in panel:
                chain.send(ctl.revealVerdict(d.as_tuple(), int(Verdict.ACCEPT), digest, salts[m]), m)
            chain.send(ctl.timeoutMediateResult(d.as_tuple()), panel[0])
            paths.add("mechanisms_consortium3_accept", ledger.since(mark))

        audited_protocol = settings(5_000)
        audits = 0
        for _ in range(64):  # at 50 % a deal is audited every other try
            if audits >= repeats:
                break
            d = deal(1, audited_protocol)
            mark = ledger.head()
            submitted(d)
            chain.send(ctl.acceptResult(d.as_tuple()), jc)
            if not mediation.getPanel(d.deal_id).call()[0][6]:
                continue  # not audited: settled as the taxed happy path
            chain.send(ctl.assignMediator(d.as_tuple()), panel[0])
            chain.send(ctl.mediationAcceptResult(d.as_tuple()), panel[0])
            paths.add("mechanisms_audit_accept", ledger.since(mark))
            audits += 1
        if audits < repeats:
            raise RuntimeError("no deal was audited in 64 tries at a 50 % audit rate")
        mark = ledger.head()
        chain.send(ctl.claimTreasury(), jc)
        paths.once["mechanisms: claim the treasury"] = ledger.since(mark)
    finally:
        anvil.stop()


# --------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------


def _rows(path: str, txs: list[Tx]) -> list[list[Any]]:
    return [[path, t.party, t.function, t.gas_used, t.calldata_bytes] for t in txs]


def run(quick: bool) -> dict[str, Any]:
    out = section("Gas and calldata per job")
    repeats = 1 if quick else 3
    paths = _Paths()
    out["notes"] += _service_paths(paths, repeats)
    _direct_paths(paths, 1 if quick else 2)
    _mechanism_paths(paths, 1 if quick else 2)
    out["notes"].append("timeouts: driven directly on a chain of their own (parties that stop acting), with the "
                        "approvals the services send; the timeout is sent by the party it pays")
    out["notes"].append("mediation_non_deterministic: driven directly on that chain (a job whose re-runs disagree), "
                        "with the transactions the services send: permits inside agree and check, the mediator's "
                        "assignMediator, then its verdict")
    out["notes"].append("mechanisms_*: driven directly on a chain of their own under the public-network settings "
                        f"(tax {_PUBLIC['tax'] / 100:g} %, treasury share {_PUBLIC['treasury_share'] / 100:g} %, "
                        f"reward {_PUBLIC['reward'] / 100:g} %, stake {_PUBLIC['min_stake'] // 10**18} LP, "
                        f"slash {_PUBLIC['slash'] // 10**18} LP): a taxed happy path, "
                        "a panel of three (assign, three commits, three reveals, the resolve), and a random audit "
                        "(audit rate 50 % so one is found fast; the audit's accept, assign and verdict); the "
                        "one-time steps are rows of the table")
    out["notes"].append("targets are judged on the median job; a provider's one-time unlimited approval of "
                        "Payments lands in its first job (the max of the spread)")
    table = {"title": "Transactions of one job (the first job of each path)",
             "columns": ["path", "party", "function", "gas", "calldata bytes"], "rows": []}
    for path, jobs in paths.jobs.items():
        totals = [_job_totals(txs) for txs in jobs]
        gas = [t["gas"] for t in totals]
        ref, target = REFERENCE.get(path), TARGET.get(path)
        fig = figure("gas", gas, target=f"<= {target:,} ({100 * target / ref:.0f}% of {ref:,})" if ref and target
                     else None, met=(median(gas) <= target) if target else None,
                     note=f"{totals[0]['txs']} transactions; per party (first job): "
                          + ", ".join(f"{p} {g:,}" for p, g in sorted(totals[0]["per_party"].items())))
        if ref:
            fig["ratio_to_reference"] = _ratio(gas, ref)
        out["figures"][f"gas_per_job.{path}"] = fig
        out["figures"][f"calldata_bytes_per_job.{path}"] = figure(
            "bytes", [t["calldata"] for t in totals],
            note=f"non-zero bytes {totals[0]['calldata_nonzero']}; L1 calldata gas "
                 f"{16 * totals[0]['calldata_nonzero'] + 4 * (totals[0]['calldata'] - totals[0]['calldata_nonzero']):,}")
        table["rows"] += _rows(path, jobs[0])
    once = paths.once.get("smart_contract", [])
    if once:
        one_time = sum(t.gas_used for t in once)
        table["rows"] += _rows("smart_contract (once per payee/client)", once)
        per_job = [_job_totals(txs)["gas"] for txs in paths.jobs["smart_contract"]]
        target = TARGET["smart_contract"]
        first = per_job[0] + one_time
        out["figures"]["gas_first_job_with_one_time_approvals.smart_contract"] = figure(
            "gas", value=first, target=f"<= {target:,}", met=first <= target,
            note=f"approve + setCallerAllowance ({one_time:,} gas) are sent once per payee and client")
    for name, txs in paths.once.items():
        if name.startswith("mechanisms:"):
            table["rows"] += _rows(f"{name} (once)", txs)
            out["figures"][f"gas_once.{name.split(': ', 1)[1].replace(' ', '_')}"] = figure(
                "gas", value=sum(t.gas_used for t in txs), note=f"{len(txs)} transactions")
    out["tables"].append(table)
    if paths.profiles:
        out["tables"].append(_profile_table(paths))
        out["notes"].append("the profile: a happy path and a mediation accept driven directly on the timeouts' "
                            "chain (anvil --steps-tracing), each transaction's gas sorted by what the EVM charged: "
                            "new slots are zero-to-non-zero SSTOREs (20,000 + cold access), calls count the "
                            "access and memory cost of calling another contract (the callee's own opcodes are "
                            "counted by kind; ecrecover whole), refund is what the EVM gives back at the end")
    return out


def _ratio(values: list[int], reference: int) -> float:
    """Median gas as a fraction of the reference figure."""
    import statistics

    return round(statistics.median(values) / reference, 4)
