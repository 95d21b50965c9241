"""``lilypad doctor``: check a node's setup and say what to fix.

:func:`run_doctor` runs the checks of :mod:`lilypad.doctor.checks` that the
node's ``role`` needs, in order, and returns one :class:`CheckResult` per
line: the Docker engine and GPUs (resource providers and mediators run
containers), the Go template helper (every role but the solver renders module
templates), the deployments file, the RPC endpoints (fail-over: the first
that answers on the deployment's chain id is used), code at every contract
address, and the account's ETH and LP balances and its allowance to the
Payments contract. Checks that depend on a failed one are skipped with a
line saying so. The private key is used only to derive the address.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lilypad.doctor.checks import (
    CheckResult,
    Status,
    check_allowance,
    check_balances,
    check_contracts,
    check_docker,
    check_gotemplate,
    check_gpu,
    check_kubo,
    check_mediator_stake,
    select_rpc,
)

__all__ = ["ROLES", "CheckResult", "DoctorConfig", "Status", "default_rpc_urls", "exit_code", "run_doctor"]

#: role -> (runs containers, needs LP)
ROLES: dict[str, tuple[bool, bool]] = {
    "resource-provider": (True, True),
    "mediator": (True, False),
    "solver": (False, False),
    "job-creator": (False, True),
    "jobcreator": (False, True),
}

#: Public endpoints of the networks lilypad knows (see ape-config.yaml).
_KNOWN_RPCS = {
    ("arbitrum", "sepolia"): "https://sepolia-rollup.arbitrum.io/rpc",
}


def default_rpc_urls(ecosystem: str, network: str) -> list[str]:
    """Where to look when no ``--rpc`` is given: ``APE_FOUNDRY_HOST`` (when a
    URL) or ``http://127.0.0.1:8545`` for a local network, else the network's
    public endpoint."""
    if network == "local":
        host = os.environ.get("APE_FOUNDRY_HOST", "")
        return [host if host.startswith(("http://", "https://")) else "http://127.0.0.1:8545"]
    known = _KNOWN_RPCS.get((ecosystem, network))
    return [known] if known else []


@dataclass
class DoctorConfig:
    """What to check: the deployment of ``ecosystem:network`` (in
    ``deployments_dir``, default the usual one), the RPC endpoints in fail-over
    order, the node's ``address`` (``None``: skip account checks) and ``role``."""

    ecosystem: str = "ethereum"
    network: str = "local"
    rpc_urls: list[str] = field(default_factory=list)
    address: str | None = None
    role: str = "resource-provider"
    deployments_dir: Path | None = None
    timeout: float = 5.0
    #: The node's kubo RPC API (``--ipfs-api``); ``None``: IPFS not used.
    ipfs_api: str | None = None
    bacalhau_api: str | None = None  # a provider with --executor bacalhau: check its cluster
    bacalhau_registry: str | None = None


def exit_code(results: list[CheckResult]) -> int:
    """1 when any check failed, else 0."""
    return 1 if any(r.failed for r in results) else 0


def _skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name, Status.WARN, f"not checked: {why}", "fix the failures above and run lilypad doctor again")


def run_doctor(config: DoctorConfig) -> list[CheckResult]:
    """Run every check the role needs; the results in report order."""
    from lilypad.exceptions import DeploymentNotFoundError
    from lilypad.protocol.deployments import deployment_path, load_deployment

    if config.role not in ROLES:
        raise ValueError(f"unknown role {config.role!r} (known: {', '.join(ROLES)})")
    containers, needs_lp = ROLES[config.role]
    results: list[CheckResult] = []
    if containers:
        results.append(check_docker(timeout=max(1, int(config.timeout))))
        results.append(check_gpu())
    if config.bacalhau_api:
        from lilypad.doctor.checks import check_bacalhau

        results.extend(check_bacalhau(config.bacalhau_api, config.bacalhau_registry, timeout=config.timeout))
    if config.role != "solver":
        results.append(check_gotemplate())
        results.extend(check_kubo(config.ipfs_api, timeout=config.timeout))

    path = deployment_path(config.ecosystem, config.network, config.deployments_dir)
    try:
        deployment = load_deployment(config.ecosystem, config.network, config.deployments_dir)
    except DeploymentNotFoundError:
        results.append(CheckResult(
            "deployment", Status.FAIL, f"no deployments file {path}",
            "deploy with `ape run deploy --network ECOSYSTEM:NETWORK:PROVIDER`, or set LILYPAD_DEPLOYMENTS_DIR "
            "to the folder holding the network's deployments file"))
        return results
    except ValueError as exc:  # pydantic's ValidationError, bad JSON
        results.append(CheckResult("deployment", Status.FAIL, f"{path} is not a deployments file ({exc})",
                                   "restore it from the deployer, or redeploy"))
        return results
    results.append(CheckResult("deployment", Status.OK,
                               f"{path}: chain id {deployment.chain_id}, {len(deployment.contracts)} contracts"))

    urls = config.rpc_urls or default_rpc_urls(config.ecosystem, config.network)
    choice = select_rpc(urls, deployment.chain_id, timeout=config.timeout)
    results.extend(choice.results)
    if choice.url is None:
        results.append(_skipped("contracts", "no working RPC endpoint"))
        return results
    contracts = check_contracts(choice.web3, deployment.contracts, deployments_file=str(path))
    results.append(contracts)

    if config.address is None:
        results.append(CheckResult("account", Status.WARN, "no account given: balances and allowance not checked",
                                   "set WEB3_PRIVATE_KEY (as the service does) or pass --address"))
        return results
    results.append(CheckResult("account", Status.OK, config.address))
    if contracts.failed:
        results.append(_skipped("balances", "the contracts are missing"))
        return results
    token, payments = deployment.contracts.get("token"), deployment.contracts.get("payments")
    if not token or not payments:
        results.append(CheckResult("balances", Status.FAIL, f"{path} names no token or payments contract",
                                   "redeploy: the deployments file is incomplete"))
        return results
    results.extend(check_balances(choice.web3, config.address, token, needs_lp=needs_lp))
    if needs_lp:
        results.append(check_allowance(choice.web3, config.address, token, payments))
    if config.role == "mediator":
        registry, controller = deployment.contracts.get("mediator_registry"), deployment.contracts.get("controller")
        if not registry or not controller:
            results.append(CheckResult("mediator-stake", Status.WARN, f"{path} names no mediator registry",
                                       "redeploy: this deployment predates the mediator registry"))
        else:
            results.append(check_mediator_stake(choice.web3, config.address, registry, controller))
    return results
