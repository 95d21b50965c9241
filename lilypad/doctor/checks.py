"""The checks ``lilypad doctor`` runs, one function each.

Every check returns one or more :class:`CheckResult` (``ok`` / ``warn`` /
``FAIL`` with what to fix) and never raises for the condition it checks: an
unreachable Docker engine, a missing GPU, a dead RPC endpoint are results, not
exceptions. Checks talk to the real things (the Docker engine through the
Docker SDK, NVML through ``pynvml``, RPC endpoints through ``web3`` with a
short timeout); nothing here needs ape, so the doctor stays quick.

RPC fail-over: :func:`select_rpc` tries the endpoints in order and picks the
first that answers with the deployment's chain id; every endpoint gets its own
line (a dead endpoint is a warning when another one works, a failure when none
does).
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ERC20_ABI",
    "CheckResult",
    "RpcChoice",
    "Status",
    "check_allowance",
    "check_bacalhau",
    "check_balances",
    "check_contracts",
    "check_docker",
    "check_gotemplate",
    "check_gpu",
    "check_kubo",
    "check_mediator_stake",
    "connect_rpc",
    "select_rpc",
]


class Status:
    """A check's outcome; ``FAIL`` makes ``lilypad doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class CheckResult:
    """One line of the doctor's report: ``name``, ``status``, what was found
    (``detail``) and, unless ``ok``, what to do about it (``fix``)."""

    name: str
    status: str
    detail: str
    fix: str = ""

    @property
    def failed(self) -> bool:
        return self.status == Status.FAIL

    def line(self) -> str:
        """``[ok  ] name: detail`` (and ``-> fix`` when there is one)."""
        text = f"[{self.status:<4}] {self.name}: {self.detail}"
        return f"{text}\n       fix: {self.fix}" if self.fix else text


#: The two ERC-20 reads the doctor needs.
ERC20_ABI = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "allowance", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
]

_TOKEN = 10**18


def _lp(amount: int) -> str:
    """Token base units as LP with up to 6 decimals."""
    whole, frac = divmod(int(amount), _TOKEN)
    text = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    return text if len(text.partition(".")[2]) <= 6 else f"{amount / _TOKEN:.6f}"


def _short(exc: BaseException, limit: int = 160) -> str:
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------
# Docker and GPUs
# --------------------------------------------------------------------------


def check_docker(*, timeout: int = 5) -> CheckResult:
    """The Docker engine of ``DOCKER_HOST`` (or the default socket) answers a ping."""
    import os

    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        import docker

        client = docker.from_env(timeout=timeout)
        try:
            client.ping()
            version = client.version().get("Version", "?")
        finally:
            client.close()
    except Exception as exc:  # DockerException, requests errors, a bad DOCKER_HOST...
        return CheckResult(
            "docker", Status.FAIL, f"the Docker engine at {host} does not answer ({_short(exc)})",
            "start the engine (`systemctl start docker`, or `make setup` on a dev machine); if DOCKER_HOST is "
            "set, check it points at the engine; the user running lilypad must be able to use the socket "
            "(root, or the `docker` group)",
        )
    return CheckResult("docker", Status.OK, f"engine {version} answers at {host}")


def check_bacalhau(api_url: str, registry: str | None = None, *, timeout: float = 5.0) -> list[CheckResult]:
    """For ``--executor bacalhau``: the orchestrator's API answers (and its version), it has
    CONNECTED compute nodes (their summed capacity is what the provider offers), and the
    image registry the nodes pull from answers its ``/v2/`` endpoint."""
    import httpx

    from lilypad.exceptions import BacalhauUnavailableError
    from lilypad.executor.bacalhau.api import BacalhauClient

    fix = ("start the cluster (`lilypad devnet up --executor bacalhau` on a dev machine) or point "
           "--bacalhau-api at its orchestrator")
    results = []
    with BacalhauClient(api_url, timeout=timeout) as client:
        try:
            version = client.version()
            nodes = client.compute_nodes()
        except BacalhauUnavailableError as exc:
            return [CheckResult("bacalhau", Status.FAIL, f"the Bacalhau API at {api_url} does not answer "
                                                         f"({_short(exc)})", fix)]
    if version == "v1.9.3":
        results.append(CheckResult("bacalhau", Status.OK, f"orchestrator {version} answers at {api_url}"))
    else:
        results.append(CheckResult("bacalhau", Status.WARN, f"orchestrator {version or '?'} at {api_url}",
                                   "lilypad is tested with Bacalhau v1.9.3 (`make bacalhau`)"))
    connected = [n for n in nodes if n.connected]
    if not connected:
        results.append(CheckResult("bacalhau-nodes", Status.FAIL, f"no connected compute node ({len(nodes)} known)",
                                   "start compute nodes joined to this orchestrator; nothing can run"))
    else:
        cpu = sum(n.cpu for n in connected)
        memory = sum(n.memory for n in connected) >> 20
        detail = (f"{len(connected)} connected compute node(s) ({', '.join(n.node_id for n in connected)}): "
                  f"{cpu:g} CPU, {memory} MiB, {sum(n.gpu for n in connected)} GPU offered")
        lost = len(nodes) - len(connected)
        results.append(CheckResult("bacalhau-nodes", Status.WARN if lost else Status.OK,
                                   detail + (f"; {lost} disconnected" if lost else ""),
                                   "restart the disconnected compute nodes" if lost else ""))
    if registry is None:
        results.append(CheckResult("bacalhau-registry", Status.WARN, "no --bacalhau-registry given: not checked",
                                   "name the registry the compute nodes pull images from"))
        return results
    url = f"http://{registry}/v2/"
    try:
        answer = httpx.get(url, timeout=timeout, trust_env=False)
        ok = answer.status_code == 200
        found = f"HTTP {answer.status_code}"
    except httpx.HTTPError as exc:
        ok, found = False, _short(exc)
    if ok:
        results.append(CheckResult("bacalhau-registry", Status.OK, f"the image registry answers at {url}"))
    else:
        results.append(CheckResult("bacalhau-registry", Status.FAIL, f"the image registry at {url}: {found}",
                                   "start it (`docker-registry serve CONFIG`; `make setup` installs Debian's "
                                   "docker-registry): compute nodes only run images with a registry digest"))
    return results


def _nvml_text(value: Any) -> str:
    return value.decode("utf-8", "replace").rstrip("\x00") if isinstance(value, bytes) else str(value)


def check_gpu(*, nvml: Any | None = None) -> CheckResult:
    """NVIDIA GPUs and their driver through NVML. No GPU is a warning (the node
    offers CPU only), never a failure. ``nvml`` replaces ``pynvml`` (tests)."""
    no_gpu_fix = ("nothing to do for a CPU-only node; for GPU jobs install the NVIDIA driver "
                  "(`nvidia-smi` must work) and the NVIDIA container toolkit, then restart lilypad")
    module: Any = nvml
    if module is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                import pynvml as module  # type: ignore[no-redef]
        except Exception as exc:
            return CheckResult("gpu", Status.WARN, f"no NVML bindings ({_short(exc)}): CPU-only offers",
                               no_gpu_fix)
    try:
        module.nvmlInit()
    except Exception as exc:  # library missing, driver not loaded
        return CheckResult("gpu", Status.WARN, f"no usable NVIDIA driver ({_short(exc)}): CPU-only offers",
                           no_gpu_fix)
    try:
        driver = _nvml_text(module.nvmlSystemGetDriverVersion())
        count = int(module.nvmlDeviceGetCount())
        names = []
        for index in range(count):
            handle = module.nvmlDeviceGetHandleByIndex(index)
            vram = int(module.nvmlDeviceGetMemoryInfo(handle).total) >> 20
            names.append(f"{_nvml_text(module.nvmlDeviceGetName(handle))} ({vram} MiB)")
    except Exception as exc:
        return CheckResult("gpu", Status.WARN, f"NVML initialised but a query failed ({_short(exc)})",
                           "check `nvidia-smi`; reinstall the driver if it fails too")
    finally:
        with contextlib.suppress(Exception):
            module.nvmlShutdown()
    if count == 0:
        return CheckResult("gpu", Status.WARN, f"driver {driver} loaded but no GPU found: CPU-only offers",
                           no_gpu_fix)
    return CheckResult("gpu", Status.OK, f"{count} GPU(s), driver {driver}: " + ", ".join(names))


# --------------------------------------------------------------------------
# The Go template helper
# --------------------------------------------------------------------------


def check_gotemplate() -> CheckResult:
    """The Go template helper that renders module templates (Go's text/template):
    there and rendering. Not built but Go installed is a warning (the first
    render builds it); neither is a failure. Never builds it itself."""
    from lilypad.exceptions import LilypadError
    from lilypad.modules.gotemplate_helper import find_go, helper_override, helper_path
    from lilypad.modules.template import render_template

    build_fix = ("run `make setup` in the lilypad checkout (it installs Go with apt if needed and builds the helper "
                 "into ${XDG_CACHE_HOME:-~/.cache}/lilypad/bin of the user running it), or set LILYPAD_GOTEMPLATE "
                 "to a helper built with `python -m lilypad.modules.gotemplate_helper`")
    try:
        path = helper_path(build=False)
    except LilypadError as exc:
        go = find_go()
        if go is not None and helper_override() is None:
            return CheckResult("gotemplate", Status.WARN,
                               f"not built yet; the first module render builds it with {go} (minutes the first "
                               "time, while Go compiles its standard library)", build_fix)
        return CheckResult("gotemplate", Status.FAIL, f"{_short(exc, 240)}; no module template can be rendered",
                           build_fix)
    try:
        rendered = render_template('{{ .Probe | printf "%s" }}', {"Probe": "ok"})
    except LilypadError as exc:
        return CheckResult("gotemplate", Status.FAIL, f"{path} does not render ({_short(exc, 240)})", build_fix)
    if rendered != '"ok"':
        return CheckResult("gotemplate", Status.FAIL, f"{path} rendered {rendered[:40]!r}, expected '\"ok\"'",
                           build_fix)
    return CheckResult("gotemplate", Status.OK, f"{path} renders module templates with Go's text/template")


# --------------------------------------------------------------------------
# kubo (IPFS)
# --------------------------------------------------------------------------


def check_kubo(api: str | None, *, timeout: float = 5.0) -> list[CheckResult]:
    """kubo's ``ipfs`` binary (present, its version) and, with ``api`` (the
    node's RPC API, ``--ipfs-api``), the node: it answers, and a small file
    added there comes back by ``cat`` with the CID :mod:`lilypad.results.cid`
    computes. Without ``api`` IPFS is not used (results stay in the solver's
    store only): a missing binary is then a warning, not a failure."""
    import os
    import subprocess
    import tempfile

    from lilypad.exceptions import GoToolMissingError, LilypadError
    from lilypad.toolchain import find_go_tool

    fix_build = "run `make setup` (or `make kubo`) in the lilypad checkout"
    results: list[CheckResult] = []
    try:
        binary = find_go_tool("ipfs")
        with tempfile.TemporaryDirectory(prefix="lilypad-doctor-ipfs-") as repo:  # reads no one's repository
            done = subprocess.run([str(binary), "version", "--number"], capture_output=True, text=True,
                                  timeout=max(5.0, timeout), check=False,
                                  env={**os.environ, "IPFS_PATH": repo, "IPFS_TELEMETRY": "off"})
        version = done.stdout.strip() if done.returncode == 0 else ""
        if version:
            results.append(CheckResult("kubo", Status.OK, f"{binary}: kubo {version}"))
        else:
            results.append(CheckResult("kubo", Status.FAIL, f"{binary} does not run ({done.stderr.strip()[:160]})",
                                       fix_build))
    except (GoToolMissingError, OSError, subprocess.SubprocessError) as exc:
        results.append(CheckResult("kubo", Status.FAIL if api else Status.WARN,
                                   f"{_short(exc, 200)}" + ("" if api else "; IPFS is not used"), fix_build))
    if not api:
        results.append(CheckResult("ipfs-api", Status.WARN, "no kubo node given: results and input files go to the "
                                                            "solver's store only",
                                   "run a kubo node and pass --ipfs-api http://127.0.0.1:5001 (LILYPAD_IPFS_API) "
                                   "to lilypad doctor and to the service (docs/resource-provider.md, IPFS)"))
        return results
    from lilypad.ipfs.client import KuboClient
    from lilypad.results.cid import bytes_cid

    fix_node = f"start the node (`ipfs daemon`) and check that its RPC API listens on {api}"
    probe = b"lilypad doctor probe\n"
    try:
        with KuboClient(api, timeout=timeout) as client:
            version = client.version()
            cid = client.add_bytes(probe, "lilypad-doctor-probe")
            back = client.cat(cid)
    except LilypadError as exc:
        results.append(CheckResult("ipfs-api", Status.FAIL, str(exc)[:300], fix_node))
        return results
    if cid != bytes_cid(probe) or back != probe:
        results.append(CheckResult("ipfs-api", Status.FAIL, f"{api} (kubo {version}) added the probe as {cid}, "
                                   f"expected {bytes_cid(probe)}; cat gave {len(back)} bytes",
                                   "use kubo with its default import settings (docs/infra-notes.md)"))
    else:
        results.append(CheckResult("ipfs-api", Status.OK, f"{api}: kubo {version}, add + cat of a small file give "
                                                          f"back its CID {cid}"))
    return results


# --------------------------------------------------------------------------
# RPC endpoints
# --------------------------------------------------------------------------


@dataclass
class RpcChoice:
    """What :func:`select_rpc` found: the chosen endpoint (``None`` if none
    works), its connected ``web3`` and one result per endpoint plus a summary."""

    url: str | None
    web3: Any
    results: list[CheckResult]


def connect_rpc(url: str, *, timeout: float = 5.0) -> Any:
    """A ``web3.Web3`` over HTTP(S) or WebSocket-less HTTP for ``url``."""
    from web3 import Web3

    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


def select_rpc(urls: list[str], expected_chain_id: int | None, *, timeout: float = 5.0) -> RpcChoice:
    """Try ``urls`` in order; the first that answers with ``expected_chain_id``
    wins (any answering endpoint when it is ``None``). Every endpoint is
    probed, so the report shows which of the fall-backs work too."""
    if not urls:
        return RpcChoice(None, None, [CheckResult(
            "rpc", Status.FAIL, "no RPC endpoint configured",
            "pass --rpc URL (repeatable) or set LILYPAD_RPC_URLS=url1,url2")])
    probes: list[tuple[str, str, str, str]] = []  # url, verdict (ok/dead/wrong), detail, fix
    chosen, chosen_w3, chosen_index = None, None, -1
    for url in urls:
        w3 = connect_rpc(url, timeout=timeout)
        try:
            chain_id = int(w3.eth.chain_id)
            head = int(w3.eth.block_number)
        except Exception as exc:  # connection refused, timeout, not JSON-RPC...
            probes.append((url, "dead", f"{url} does not answer ({_short(exc)})",
                           (f"check the node at {url} is running and reachable from this machine "
                           "(URL, port, firewall, API key)")))
            continue
        if expected_chain_id is not None and chain_id != expected_chain_id:
            probes.append((url, "wrong", (f"{url} serves chain id {chain_id}, the deployment is on chain id "
                                         f"{expected_chain_id}"),
                           (f"use an RPC endpoint of chain {expected_chain_id}, or pick the matching deployment "
                           "with --network")))
            continue
        probes.append((url, "ok", f"{url} answers: chain id {chain_id}, head block {head}", ""))
        if chosen is None:
            chosen, chosen_w3, chosen_index = url, w3, len(probes) - 1
    results = []
    for index, (_url, verdict, detail, fix) in enumerate(probes, start=1):
        name = f"rpc[{index}]"
        if verdict == "ok":
            note = " (in use)" if index - 1 == chosen_index else " (fall-back)"
            results.append(CheckResult(name, Status.OK, detail + note))
        else:
            # A dead fall-back is worth a warning while another endpoint works.
            results.append(CheckResult(name, Status.WARN if chosen else Status.FAIL, detail, fix))
    if chosen is None:
        results.append(CheckResult("rpc", Status.FAIL, f"none of the {len(urls)} RPC endpoint(s) serves chain id "
                                                       f"{expected_chain_id}",
                                   "fix one of the endpoints above; they are tried in order (--rpc / "
                                   "LILYPAD_RPC_URLS)"))
    else:
        results.append(CheckResult("rpc", Status.OK, f"using {chosen}"))
    return RpcChoice(chosen, chosen_w3, results)


# --------------------------------------------------------------------------
# Contracts and the node's account
# --------------------------------------------------------------------------


def check_contracts(w3: Any, contracts: dict[str, str], *, deployments_file: str) -> CheckResult:
    """Code at every contract address of the deployments file."""
    missing = []
    try:
        for key, address in contracts.items():
            if not bytes(w3.eth.get_code(w3.to_checksum_address(address))):
                missing.append(f"{key} at {address}")
    except Exception as exc:
        return CheckResult("contracts", Status.FAIL, f"could not read contract code ({_short(exc)})",
                           "check the RPC endpoint")
    if missing:
        return CheckResult(
            "contracts", Status.FAIL, "no code at " + ", ".join(missing),
            f"{deployments_file} does not describe this chain (wrong file or endpoint, or a local chain restarted "
            "since deploying): redeploy with `ape run deploy --network ...` or point LILYPAD_DEPLOYMENTS_DIR at "
            "the right deployments file",
        )
    return CheckResult("contracts", Status.OK, f"code at all {len(contracts)} addresses of {deployments_file}")


def check_balances(w3: Any, address: str, token: str, *, needs_lp: bool = True) -> list[CheckResult]:
    """ETH (for gas) and LP (for collateral or payment) of ``address``; zero ETH
    fails, zero LP fails when ``needs_lp`` (providers and job creators)."""
    try:
        eth = int(w3.eth.get_balance(w3.to_checksum_address(address)))
        contract = w3.eth.contract(address=w3.to_checksum_address(token), abi=ERC20_ABI)
        lp = int(contract.functions.balanceOf(w3.to_checksum_address(address)).call())
    except Exception as exc:
        return [CheckResult("balances", Status.FAIL, f"could not read the balances of {address} ({_short(exc)})",
                            "check the RPC endpoint and the contracts check above")]
    results = []
    if eth == 0:
        results.append(CheckResult("eth-balance", Status.FAIL, f"{address} has no ETH to pay gas",
                                   f"send ETH to {address} on this chain (every agree, result and timeout is a "
                                   "transaction)"))
    else:
        results.append(CheckResult("eth-balance", Status.OK, f"{address} has {_lp(eth)} ETH"))
    if lp == 0:
        status = Status.FAIL if needs_lp else Status.WARN
        results.append(CheckResult("lp-balance", status, f"{address} has no LP tokens",
                                   f"get LP (the LilypadToken at {token}) into {address}: providers lock it as "
                                   "collateral, job creators pay with it"))
    else:
        results.append(CheckResult("lp-balance", Status.OK, f"{address} has {_lp(lp)} LP"))
    return results


def check_allowance(w3: Any, address: str, token: str, payments: str) -> CheckResult:
    """The LP allowance ``address`` gives the Payments contract. None is a
    warning: the services approve Payments once, for an unlimited amount, on
    their first deal, and ``lilypad run`` sends a permit inside each ``agree``."""
    try:
        contract = w3.eth.contract(address=w3.to_checksum_address(token), abi=ERC20_ABI)
        allowed = int(contract.functions.allowance(w3.to_checksum_address(address),
                                                   w3.to_checksum_address(payments)).call())
    except Exception as exc:
        return CheckResult("allowance", Status.FAIL, f"could not read the allowance ({_short(exc)})",
                           "check the RPC endpoint and the contracts check above")
    if allowed == 0:
        return CheckResult(
            "allowance", Status.WARN, f"{address} allows the Payments contract {payments} no LP",
            "nothing is required (the services approve Payments once, on their first deal; lilypad run "
            "signs a permit for each deal's exact deposit); to pre-approve: "
            f"token {token} approve({payments}, AMOUNT)",
        )
    return CheckResult("allowance", Status.OK, f"{address} allows Payments {payments} {_lp(allowed)} LP")


#: The reads of LilypadMediatorRegistry and the controller the mediator's stake check needs.
_STAKE_ABI = [
    {"name": "getStake", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "mediator", "type": "address"}],
     "outputs": [{"name": "", "type": "tuple", "components": [
         {"name": "amount", "type": "uint96"}, {"name": "unbondingSince", "type": "uint40"}]}]},
    {"name": "UNBONDING_DELAY", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "getMinMediatorStake", "type": "function", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint256"}]},
]


def check_mediator_stake(w3: Any, address: str, registry: str, controller: str) -> CheckResult:
    """The mediator's stake in the registry, its unbonding state and the protocol
    minimum. With a minimum above zero, a stake below it (or unbonding) fails:
    no new deal can name this mediator."""
    try:
        reg = w3.eth.contract(address=w3.to_checksum_address(registry), abi=_STAKE_ABI)
        ctl = w3.eth.contract(address=w3.to_checksum_address(controller), abi=_STAKE_ABI)
        amount, since = reg.functions.getStake(w3.to_checksum_address(address)).call()
        delay = int(reg.functions.UNBONDING_DELAY().call())
        minimum = int(ctl.functions.getMinMediatorStake().call())
    except Exception as exc:
        return CheckResult("mediator-stake", Status.FAIL, f"could not read the mediator registry ({_short(exc)})",
                           "check the RPC endpoint and the contracts check above")
    need = f"protocol minimum {_lp(minimum)} LP" + (" (no stake required)" if minimum == 0 else "")
    if since:
        status = Status.FAIL if minimum else Status.WARN
        return CheckResult("mediator-stake", status,
                           f"{address} is unbonding {_lp(amount)} LP (withdrawable from unix time {since + delay}); "
                           f"{need}", "new deals cannot name an unbonding mediator: withdraw once the delay has "
                           "passed, then register again (`lilypad mediator --stake LP`)")
    if amount == 0 and minimum == 0:
        return CheckResult("mediator-stake", Status.OK, f"{address} is not registered; {need}")
    if amount < minimum:
        return CheckResult("mediator-stake", Status.FAIL, f"{address} has {_lp(amount)} LP staked; {need}",
                           f"stake at least {_lp(minimum)} LP: `lilypad mediator --stake {_lp(minimum)}` "
                           "(needs that much LP in the account)")
    return CheckResult("mediator-stake", Status.OK, f"{address} has {_lp(amount)} LP staked, bonded; {need}")
