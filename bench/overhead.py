"""Section 2: end-to-end overhead of ``lilypad run cowsay`` against ``docker run``.

Both are measured interleaved in the same run (alternating which goes first),
on a devnet of real processes with anvil auto-mining: ``lilypad run
cowsay:v0.0.1 -i Message=...`` as a CLI user runs it, and ``docker run --rm
--network none IMAGE MESSAGE`` of the very image the provider ran. Where the
time goes comes from the job's own timestamps: the run record's
``stage_times`` (``lilypad run``), the provider's log (container started,
finished, result posted) and the process's start and exit.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, CliJob, cli_job, devnet, figure, section

__all__ = ["STAGES", "provider_events", "run", "stage_breakdown"]

_MODULE = "cowsay:v0.0.1"

#: (stage, what it covers), in order; each is the time from the previous mark.
STAGES = (
    ("cli_start", "process start -> connected to the chain (Python, imports, the lean client's checks)"),
    ("prepare_offer", "resolve + render the module, sign and post the job offer"),
    ("match", "offer posted -> the solver's deal seen"),
    ("agree", "the job creator's agree transaction (agreeWithPermit: deposit and permit in one)"),
    ("provider_agree", "the provider notices the deal, approves, agrees, starts the container"),
    ("container", "the container runs (provider: job started -> exited)"),
    ("upload_add_result", "the provider uploads the result and sends addResult"),
    ("client_notices", "addResult mined -> the client sees it"),
    ("download_accept", "download + verify the result, acceptResult"),
    ("finish", "read the final state, write the record"),
    ("cli_exit", "record written -> process exited"),
)


def _log_time(line: str) -> float | None:
    try:
        return _dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return None


def provider_events(log_path: Path) -> dict[str, dict[str, float]]:
    """deal id -> {"job_started", "ran", "result_posted"}: when the provider logged each."""
    out: dict[str, dict[str, float]] = {}
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        brace = line.find("{")
        if "lilypad.provider" not in line or brace < 0:
            continue
        try:
            event = json.loads(line[brace:])
        except ValueError:
            continue
        # Two log shapes: {"event": "deal_status", "deal_id", "status"} and
        # {"event": "state_change", "entity": "deal", "id", "new"}.
        at, deal = _log_time(line), event.get("deal_id") or event.get("id")
        if at is None or not deal:
            continue
        name = event.get("event")
        if name in ("deal_status", "state_change") and (event.get("status") or event.get("new")) == "ran":
            name = "ran"
        if name in ("job_started", "ran", "result_posted"):
            out.setdefault(deal, {}).setdefault(name, at)
    return out


def stage_breakdown(job: CliJob, provider: dict[str, float] | None) -> dict[str, float] | None:
    """Seconds spent in each of :data:`STAGES` for one run (None without stage times)."""
    st = (job.record or {}).get("stage_times") or {}
    p = provider or {}
    marks = [job.started_at, st.get("preparing"), st.get("offer posted"), st.get("matched"), st.get("agreed"),
             p.get("job_started"), p.get("ran"), p.get("result_posted"), st.get("results submitted"),
             st.get("accepted"), st.get("done"), job.ended_at]
    if any(m is None for m in marks):
        return None
    return {name: round(marks[i + 1] - marks[i], 4) for i, (name, _) in enumerate(STAGES)}


def _docker_run(image: str, message: str) -> float:
    started = time.perf_counter()
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, message],
                         capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if out.returncode != 0 or message not in out.stdout:
        raise RuntimeError(f"docker run {image} failed ({out.returncode}): {out.stderr[-1000:]}")
    return elapsed


def provider_image(module_dir: Path) -> str:
    """The image the provider built and ran for ``module_dir``: found in the engine by the
    build-context hash the provider labels its builds with (``org.lilypad.module-context``),
    not by a tag guessed here (the provider names the image after its module-cache checkout,
    ``lilypad-module/cowsay-<repo key>:<hash>``, which a fresh engine has only once it ran)."""
    import docker

    from lilypad.executor.docker_runner import module_image_tag

    context = module_image_tag(module_dir).rpartition(":")[2]
    client = docker.from_env()
    try:
        images = client.images.list(filters={"label": f"org.lilypad.module-context={context}"})
    finally:
        client.close()
    # The provider's own name first: the same image may also carry a registry's name (a
    # Bacalhau provider pushes its images to one), which sorts first but says less.
    tags = sorted((tag for image in images for tag in image.tags),
                  key=lambda tag: (not tag.startswith("lilypad-module/"), tag))
    if not tags:
        raise RuntimeError(f"no image labelled org.lilypad.module-context={context} after the warm-up job: "
                           f"the provider did not build {module_dir} from these files")
    return tags[0]


def rpc_per_transaction(net: Any) -> dict[str, dict[str, int]]:
    """JSON-RPC requests one transaction of the job creator costs, by method, through the lean
    client (:class:`lilypad.client.chain.JobCreatorChain`, what ``lilypad run`` uses) and through
    ape (:class:`lilypad.chain.contracts.LilypadContracts`, what it used before): the second of two
    ``approve`` transactions each (the first also reads the nonce; both clients cache it after)."""
    from lilypad.client.chain import job_creator_chain
    from lilypad.devnet.network import NETWORK
    from lilypad.devnet.processes import dev_private_key
    from lilypad.protocol.accounts import local_account_from_private_key

    url, deployments = f"http://127.0.0.1:{net.rpc_port}", net.root / "deployments"
    key = dev_private_key(5)  # funded by the devnet, used by none of its services
    out: dict[str, dict[str, int]] = {}
    with job_creator_chain(NETWORK, [url], deployments) as lean:
        account = local_account_from_private_key(key)
        lean.ensure_allowance(account, 1)
        before = lean.rpc_calls.copy()
        lean.ensure_allowance(account, 2)
        out["lean"] = dict(lean.rpc_calls - before)
    saved = os.environ.get("APE_FOUNDRY_HOST")
    os.environ["APE_FOUNDRY_HOST"] = url  # ape-foundry attaches to this anvil instead of starting one
    try:
        out["ape"] = _ape_requests(NETWORK, deployments, url, key)
    finally:
        if saved is None:
            os.environ.pop("APE_FOUNDRY_HOST", None)
        else:
            os.environ["APE_FOUNDRY_HOST"] = saved
    return out


def _ape_requests(network: str, deployments: Path, url: str, key: str) -> dict[str, int]:
    from collections import Counter

    from lilypad.chain.connect import connected
    from lilypad.protocol.accounts import account_from_private_key

    from web3 import HTTPProvider

    with connected(network, deployments, provider_settings={"host": url}) as contracts:
        account = account_from_private_key(key)
        calls: Counter[str] = Counter()
        original = HTTPProvider.make_request  # every web3 in this process: ape's, whatever it holds

        def counting(self: Any, method: Any, params: Any) -> Any:
            calls[str(method)] += 1
            return original(self, method, params)

        HTTPProvider.make_request = counting  # type: ignore[method-assign]
        from ape import networks

        # web3 caches each provider's request function (middlewares around the bound make_request)
        # on first use: drop it so ape's web3 picks up the counting one.
        networks.provider.web3.provider._request_func_cache = (None, None)
        try:
            contracts.ensure_allowance(account, 3)
            calls.clear()
            contracts.ensure_allowance(account, 4)
        finally:
            HTTPProvider.make_request = original  # type: ignore[method-assign]
    return dict(calls)


def run(quick: bool) -> dict[str, Any]:
    out = section("End-to-end overhead: lilypad run vs docker run (cowsay)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        out["skipped"] = "Docker is not available (docker info failed)"
        return out
    n = 3 if quick else 20
    lilypad_times, docker_times, diffs, breakdowns = [], [], [], []
    with devnet("overhead") as net:
        net.add_provider()
        net.add_mediator()
        data = net.root / "client"
        cli_job(net, data, _MODULE, {"Message": "warm-up"})  # builds the image, warms caches
        image = provider_image(ROOT / "modules" / "cowsay")
        _docker_run(image, "warm-up")
        for i in range(n):
            message = f"overhead run {i}"
            order = ("lilypad", "docker") if i % 2 == 0 else ("docker", "lilypad")
            got: dict[str, Any] = {}
            for which in order:
                if which == "docker":
                    got["docker"] = _docker_run(image, message)
                else:
                    got["lilypad"] = cli_job(net, data, _MODULE, {"Message": message})
            job = got["lilypad"]
            lilypad_times.append(job.wall)
            docker_times.append(got["docker"])
            diffs.append(job.wall - got["docker"])
            breakdowns.append((job, (job.record or {}).get("deal_id")))
        events = provider_events(net.root / "logs" / "provider.log")
        try:
            rpc = rpc_per_transaction(net)
        except Exception as exc:  # reported, never hides the timings
            rpc = {}
            out["notes"].append(f"RPC requests per transaction not measured: {type(exc).__name__}: {exc}")
    stages = [b for b in (stage_breakdown(job, events.get(deal or "")) for job, deal in breakdowns) if b]
    med_l, med_d = statistics.median(lilypad_times), statistics.median(docker_times)
    overhead = med_l - med_d
    f = out["figures"]
    f["lilypad_run_wall"] = figure("s", lilypad_times, note="lilypad run cowsay:v0.0.1, process start to exit")
    f["docker_run_wall"] = figure("s", docker_times, note=f"docker run --rm --network none {image}")
    f["overhead_median_difference"] = figure("s", value=round(overhead, 4), target="< 1.0 s", met=overhead < 1.0,
                                             note="median(lilypad run) - median(docker run)")
    f["overhead_paired_difference"] = figure("s", diffs, note="per interleaved pair: lilypad run - docker run")
    f["ratio_lilypad_to_docker"] = figure("ratio", value=round(med_l / med_d, 3),
                                          note="median(lilypad run) / median(docker run)")
    for client, calls in rpc.items():
        detail = ", ".join(f"{method} {count}" for method, count in sorted(calls.items()))
        f[f"rpc_requests_per_transaction.{client}"] = figure(
            "requests", value=sum(calls.values()),
            note=("lilypad.client.chain (lilypad run now)" if client == "lean" else "ape (lilypad run before)")
            + f": {detail}")
    out["stages"] = {}
    if stages:
        table = {"title": f"Where a lilypad run's time goes (medians over {len(stages)} runs)",
                 "columns": ["stage", "median s", "p90 s", "share of median total", "covers"], "rows": []}
        total = sum(statistics.median(s[name] for s in stages) for name, _ in STAGES)
        for name, what in STAGES:
            values = sorted(s[name] for s in stages)
            med = statistics.median(values)
            p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
            table["rows"].append([name, round(med, 3), round(p90, 3), f"{100 * med / total:.0f}%", what])
            out["stages"][name] = figure("s", values, note=what)
        out["tables"].append(table)
    else:
        out["notes"].append("no per-stage breakdown: the run records have no stage_times or the provider log "
                            "lacks its events")
    out["notes"].append(f"{n} interleaved pairs after one warm-up each; anvil auto-mines every transaction")
    return out
