"""Kill campaign (issue #8, Faults): SIGKILL the long-running services at random points of a batch
of jobs, restart them, and check that nothing was lost, paid twice or delivered twice.

A real LocalNetwork (anvil, contracts, ``lilypad solver``, ``lilypad resource-provider --slots 4``,
``lilypad mediator``, ``lilypad jobcreator``); jobs are ``lilypad run cowsay:v0.0.1`` CLI
processes (some ``--mediate``) and contract jobs (``ExampleJobRunner.run``), submitted over time
while a chaos thread (seeded RNG, ``LILYPAD_FAULT_SEED``) SIGKILLs a random service every few
seconds and restarts it after a short pause. At the end the chain clock is pushed past every
window so the solver's timeout keeper (and, for on-chain jobs, anyone's ``complete`` or
``timeoutJob``) ends whatever the faults left hanging. Figures go to ``.cache/fault-tally.json``."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fault_support import ClientChain, containers_under, lilypad_run_args, push_time  # type: ignore[import-not-found]
from lilypad.devnet.network import LocalNetwork, address_of
from lilypad.protocol.deal import AgreementState
from lilypad.results.cid import directory_cid

pytestmark = pytest.mark.soak

SEED = int(os.environ.get("LILYPAD_FAULT_SEED", "8"))
ROUNDS = 20  # a submission round every ~5 s: 1 CLI job + 2 contract jobs
CONTRACT_PER_ROUND = 2
MEDIATE_EVERY = 5  # every 5th CLI job asks for mediation
SERVICES = ("solver", "provider", "mediator", "bridge")
MIN_KILLS = 3
JOB_COMPLETED, JOB_FAILED = 2, 3  # LilypadOnChainJobCreator.JobState
TALLY = Path(__file__).resolve().parents[2] / ".cache" / "fault-tally.json"
STRANGER = 8  # an account with no role: "anyone" may time out an abandoned on-chain job


class Chaos(threading.Thread):
    """Kill a random service (each at least MIN_KILLS times), wait, restart it; until told to stop."""

    def __init__(self, net: LocalNetwork, rng: random.Random) -> None:
        super().__init__(daemon=True, name="chaos")
        self.net, self.rng = net, rng
        self.kills: Counter[str] = Counter()
        self.stop_when_done = threading.Event()
        self.events: list[tuple[float, str]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not (self.stop_when_done.is_set() and min(self.kills[s] for s in SERVICES) >= MIN_KILLS):
                time.sleep(self.rng.uniform(2.5, 5.5))
                behind = [s for s in SERVICES if self.kills[s] < MIN_KILLS]
                name = self.rng.choice(behind if behind and self.rng.random() < 0.5 else SERVICES)
                proc = self.net.processes[name]
                proc.kill()  # SIGKILL to the process group
                self.kills[name] += 1
                self.events.append((time.monotonic(), f"kill {name}"))
                time.sleep(self.rng.uniform(0.5, 3.0))
                proc.start()  # the same command line, data dir and port
                self.events.append((time.monotonic(), f"start {name}"))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            self.error = exc


def test_kill_campaign(tmp_path, project, start_network):
    started = time.monotonic()
    rng = random.Random(SEED)
    net = start_network(match_timeout=60.0)  # stopped after the test, once the pool is shut down
    cli_pool = ThreadPoolExecutor(max_workers=3)
    try:
        net.add_provider("provider", "--slots", "4")
        net.add_mediator()
        net.add_bridge()
        chain = ClientChain(net, project)
        w3 = chain.w3
        runner = chain.deploy("ExampleJobRunner", chain.addresses["controller"])
        chain.authorise(runner)
        payments = chain.at("LilypadPayments", chain.addresses["payments"])
        storage = chain.at("LilypadStorage", chain.addresses["storage"])
        holders = [address_of(i) for i in range(10)] + list(chain.addresses.values()) + [runner.address]
        supply = chain.token.functions.totalSupply().call()
        before = {h: chain.balance(h) for h in holders}
        assert sum(before.values()) == supply, "every token is held by an account or contract we watch"

        # ---- the batch, submitted over time while the chaos thread kills services ----
        chaos = Chaos(net, random.Random(SEED + 1))
        chaos.start()
        cli_jobs: list[dict] = []
        contract_ids: list[int] = []

        def cli_job(n: int, mediate: bool) -> dict:
            data_dir = tmp_path / f"client-{n}"
            args = ["cowsay:v0.0.1", "-i", f"Message=chaos cli {n}", "--timeout", "240"]
            if mediate:
                args.append("--mediate")
            try:
                out = subprocess.run(lilypad_run_args(net, data_dir, *args), env=net.client_env(data_dir),
                                     capture_output=True, text=True, timeout=300)
                rc, text = out.returncode, out.stdout + out.stderr
            except subprocess.TimeoutExpired as exc:
                rc, text = -9, f"timed out: {exc}"
            return {"n": n, "mediate": mediate, "rc": rc, "output": text[-3000:], "data_dir": data_dir}

        futures = []
        for r in range(ROUNDS):
            futures.append(cli_pool.submit(cli_job, r, r % MEDIATE_EVERY == 2))
            for k in range(CONTRACT_PER_ROUND):
                receipt = chain.send(runner.functions.run("cowsay:v0.0.1", [f"Message=chaos contract {r}.{k}"]))
                contract_ids += chain.job_ids(receipt)
            time.sleep(rng.uniform(3.5, 6.5))
        chaos.stop_when_done.set()
        cli_jobs = [f.result(timeout=600) for f in futures]
        chaos.join(timeout=120)
        assert not chaos.is_alive() and chaos.error is None, f"chaos thread: {chaos.error!r}"
        assert min(chaos.kills[s] for s in SERVICES) >= MIN_KILLS, chaos.kills
        submitted_at = time.monotonic()

        # ---- let the restarted services finish on their own, then push the clock ----
        def job_state(i: int) -> int:
            return int(chain.job_creator.functions.getJob(i).call()[1])

        def solver_deals() -> list:
            from lilypad.client import SolverClient

            with SolverClient(net.solver_url) as client:
                return client.deals()

        def onchain_state(deal_id: str) -> AgreementState:
            return AgreementState(int(storage.functions.getAgreement(bytes.fromhex(deal_id[2:])).call()[0]))

        def open_work() -> tuple[list[int], list[str]]:
            jobs = [i for i in contract_ids if job_state(i) not in (JOB_COMPLETED, JOB_FAILED)]
            deals = [d.deal_id for d in solver_deals()
                     if onchain_state(d.deal_id) not in (AgreementState.NONE,) and
                     not onchain_state(d.deal_id).is_terminal]
            return jobs, deals

        natural_end = time.monotonic() + 150
        while time.monotonic() < natural_end and any(open_work()):
            time.sleep(3)
        left_naturally = open_work()
        pushes = 0
        timed_out_by_anyone = 0
        for _ in range(10):
            jobs, deals = open_work()
            if not jobs and not deals:
                break
            push_time(w3, 3 * 3600)  # past agree/submit/judge/mediate windows and the 2 h job timeout
            pushes += 1
            end = time.monotonic() + 30
            while time.monotonic() < end and any(open_work()):
                time.sleep(2)
            if pushes >= 2:  # the relayer had its chance: anyone may end an on-chain job
                for i in open_work()[0]:
                    options = chain.job_options(i)
                    for step in (chain.job_creator.functions.complete, chain.job_creator.functions.timeoutJob):
                        try:
                            chain.send(step(i, options), address_of(STRANGER))
                            timed_out_by_anyone += 1
                        except Exception:  # noqa: BLE001
                            pass  # not its turn, or ended by the relayer in between
        jobs_open, deals_open = open_work()
        services_alive = {name: net.processes[name].alive for name in SERVICES}

        # ---- the checks ----
        deals = solver_deals()
        deal_states = Counter(onchain_state(d.deal_id).name for d in deals)
        job_states = Counter({JOB_COMPLETED: "Completed", JOB_FAILED: "Failed"}.get(job_state(i), str(job_state(i)))
                             for i in contract_ids)
        completed = Counter(int(e.args.id) for e in chain.job_events("JobCompleted"))
        failed = Counter(int(e.args.id) for e in chain.job_events("JobFailed"))
        settled = Counter("0x" + bytes(e.args.dealId).hex() for e in payments.events.Settled().get_logs(from_block=0))
        callbacks = Counter(int(e.args.id) for e in runner.events.JobCompleted().get_logs(from_block=0))
        after = {h: chain.balance(h) for h in holders}
        job_offers = Counter(d.job_offer_id for d in deals)

        cli_ok, cli_verified = 0, 0
        for job in cli_jobs:
            if job["rc"] != 0:
                continue
            cli_ok += 1
            match = re.search(r"\b(bafy[a-z2-7]{55})\b", job["output"])
            downloaded = list((job["data_dir"] / "downloaded-files").iterdir())
            if match and len(downloaded) == 1 and directory_cid(downloaded[0]) == match.group(1) and \
                    f"chaos cli {job['n']}" in (downloaded[0] / "stdout").read_text():
                cli_verified += 1
        leftovers = containers_under(tmp_path)

        tally = {
            "seed": SEED,
            "jobs": {"total": len(cli_jobs) + len(contract_ids), "cli": len(cli_jobs),
                     "cli_mediate": sum(j["mediate"] for j in cli_jobs), "contract": len(contract_ids)},
            "kills": dict(chaos.kills),
            "cli_outcomes": {"succeeded": cli_ok, "verified_result": cli_verified, "failed": len(cli_jobs) - cli_ok},
            "cli_failures": [{"n": j["n"], "rc": j["rc"], "last_lines": j["output"].strip().splitlines()[-4:]}
                             for j in cli_jobs if j["rc"] != 0],
            "contract_job_states": dict(job_states),
            "deal_states_onchain": dict(deal_states),
            "deals": len(deals),
            "open_after_natural_wait": {"jobs": len(left_naturally[0]), "deals": len(left_naturally[1])},
            "clock_pushes": pushes, "jobs_timed_out_by_anyone": timed_out_by_anyone,
            "token_sum_before": sum(before.values()), "token_sum_after": sum(after.values()),
            "escrow_left": {"payments": after[chain.addresses["payments"]],
                            "job_creator": after[chain.addresses["job_creator"]]},
            "double_settlements": sum(1 for n in settled.values() if n > 1),
            "double_job_endings": sum(1 for i in contract_ids if completed[i] + failed[i] > 1),
            "double_callbacks": sum(1 for n in callbacks.values() if n > 1),
            "deals_per_job_offer_max": max(job_offers.values(), default=0),
            "containers_left": len(leftovers),
            "services_alive_at_end": services_alive,
            "seconds": {"submission_and_chaos": round(submitted_at - started), "total": round(time.monotonic() - started)},
        }
        TALLY.parent.mkdir(parents=True, exist_ok=True)
        TALLY.write_text(json.dumps(tally, indent=2, sort_keys=True))
        print("\nfault tally:", json.dumps(tally, indent=2, sort_keys=True))

        assert not jobs_open and not deals_open, f"not terminal: jobs {jobs_open}, deals {deals_open}\n{net.logs()}"
        assert tally["jobs"]["total"] >= 50
        assert all(services_alive.values()), f"a service died on its own: {services_alive}\n{net.logs()}"
        assert all(completed[i] + failed[i] == 1 for i in contract_ids), "each on-chain job ends exactly once"
        assert all(AgreementState[s].is_terminal or s == "NONE" for s in deal_states), deal_states
        assert sum(after.values()) == sum(before.values()) == supply, "no token created or lost"
        assert tally["escrow_left"] == {"payments": 0, "job_creator": 0}, "escrow empty once everything settled"
        assert tally["double_settlements"] == 0 and tally["double_callbacks"] == 0
        assert tally["deals_per_job_offer_max"] <= 1, "a job offer became one deal at most"
        for deal in deals:  # every deal that escrowed money was settled exactly once
            state = onchain_state(deal.deal_id)
            if state not in (AgreementState.NONE, AgreementState.TIMEOUT_AGREE):
                assert settled[deal.deal_id] == 1, (deal.deal_id, state.name)
        assert cli_verified == cli_ok, "every CLI run that said success has a verified result"
        assert cli_ok + job_states["Completed"] > 0, "the market kept working under the faults"
        assert leftovers == [], f"containers left behind: {leftovers}"
    finally:
        cli_pool.shutdown(wait=False, cancel_futures=True)
