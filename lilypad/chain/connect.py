"""Connect to a network and get the deployed system's wrappers.

    with connected("arbitrum:sepolia:node") as contracts:
        contracts.agree(deal, account)

The network choice is ape's ``ecosystem:network:provider``. The deployments
file is ``<deployments_dir>/<ecosystem>-<network>.json`` (see
:mod:`lilypad.protocol.deployments`); it is read before connecting, so a
missing file fails fast without starting or dialling a node.

A local anvil that is already running (the devnet) is reached with
``ethereum:local:foundry`` and ``APE_FOUNDRY_HOST=http://127.0.0.1:PORT``:
ape-foundry attaches to it instead of starting one. Do not use
``ethereum:local:http://...`` for anvil: ape then picks its geth "node"
provider, which signs for chain id 1337; :func:`connected` refuses it with a
message saying so.

**RPC fail-over.** ``rpc_urls`` (default: ``LILYPAD_RPC_URLS``, comma-separated)
is a list of endpoints tried in order when connecting: the first that answers
with the deployment's chain id is used (``host`` for ape-foundry, ``uri`` for
ape's node providers such as ``arbitrum:sepolia:node``). A service that loses
its endpoint later retries it with backoff; restarted (systemd does this), it
fails over to the next endpoint that answers.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lilypad.chain.contracts import LilypadContracts
from lilypad.exceptions import ChainConnectionError, DeploymentMismatchError
from lilypad.protocol.deployments import Deployment, deployment_path, load_deployment

__all__ = [
    "RPC_URLS_ENV",
    "check_deployment",
    "connected",
    "node_chain_id",
    "pick_rpc",
    "provider_from_choice",
    "rpc_urls_from_env",
]

#: The environment variable listing RPC endpoints to fail over between.
RPC_URLS_ENV = "LILYPAD_RPC_URLS"


#: Providers built straight from their class: ape's ``get_provider_from_choice``
#: first lists every plugin's providers, which imports ape-test's in-memory
#: chain (py-evm), ~0.7 s of every command's start that these choices never use.
#: Same class, name, network and settings as ape's ``NetworkAPI.get_provider``;
#: ``foundry`` only for a ``local`` network and ``node`` only for a live one
#: (where those plugins register them); anything else goes through ape.
_DIRECT_PROVIDERS = {"foundry": ("ape_foundry", "FoundryProvider"), "node": ("ape_node", "Node")}


def provider_from_choice(network_choice: str, provider_settings: dict | None = None) -> Any:
    """The (unconnected) ape provider for ``network_choice``
    (``ecosystem:network:provider``), as ``networks.get_provider_from_choice``
    gives it; raises ape's errors for an unknown choice."""
    from ape import networks
    from ape.api.networks import LOCAL_NETWORK_NAME

    parts = network_choice.split(":")
    if len(parts) == 3 and all(parts) and parts[2] in _DIRECT_PROVIDERS:
        ecosystem_name, network_name, provider_name = parts
        if ecosystem_name in networks.ecosystem_names:
            network = networks.get_ecosystem(ecosystem_name).get_network(network_name)
            local = network.name == LOCAL_NETWORK_NAME
            if not network.is_fork and not network.is_adhoc and local == (provider_name == "foundry"):
                module, class_name = _DIRECT_PROVIDERS[provider_name]
                provider_class = getattr(importlib.import_module(module), class_name)
                return provider_class(name=provider_name, network=network,
                                      provider_settings=dict(provider_settings or {}))
    return networks.get_provider_from_choice(network_choice, provider_settings=provider_settings)


def rpc_urls_from_env() -> list[str]:
    """The endpoints in ``LILYPAD_RPC_URLS`` (comma- or space-separated), in order."""
    from lilypad.settings import get_settings

    return get_settings().rpc_url_list


def pick_rpc(urls: Sequence[str], chain_id: int, *, timeout: float = 5.0) -> tuple[str | None, list[str]]:
    """The first of ``urls`` that answers JSON-RPC with ``chain_id``, and what
    was wrong with each endpoint tried before it."""
    from web3 import Web3

    problems: list[str] = []
    for url in urls:
        try:
            served = int(Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout})).eth.chain_id)
        except Exception as exc:  # refused, timed out, not JSON-RPC
            problems.append(f"{url}: no answer ({type(exc).__name__})")
            continue
        if served == chain_id:
            return url, problems
        problems.append(f"{url}: chain id {served}, not {chain_id}")
    return None, problems


def node_chain_id(provider: Any) -> int:
    """The chain id the node itself reports (``eth_chainId``), not ape's idea of it."""
    result = provider.make_request("eth_chainId", [])
    return result if isinstance(result, int) else int(result, 16)


def check_deployment(deployment: Deployment, provider: Any) -> list[str]:
    """What does not match between ``deployment`` and the chain ``provider`` serves
    (empty: fine): the chain id, and code at every contract address."""
    chain_id = node_chain_id(provider)
    if chain_id != deployment.chain_id:
        return [f"the node serves chain id {chain_id}, the deployment is for chain id {deployment.chain_id}"]
    problems = []
    for key, address in deployment.contracts.items():
        if not provider.get_code(address):
            problems.append(f"no code at the {key} address {address}")
    return problems


def _reusable(active: Any, wanted: Any, network_choice: str, provider_settings: dict | None) -> bool:
    """Whether the already-connected provider is the one asked for (as under
    ``ape test`` or ``ape run --network``): a named provider, same network."""
    if active is None or provider_settings or "://" in network_choice:
        return False
    try:
        return bool(active.is_connected) and active.network_choice == wanted.network_choice
    except Exception:  # an ad-hoc provider without a choice string
        return False


@contextmanager
def connected(
    network_choice: str,
    deployments_dir: Path | str | None = None,
    *,
    project: Any | None = None,
    provider_settings: dict | None = None,
    retries: int = 3,
    rpc_urls: Sequence[str] | None = None,
) -> Iterator[LilypadContracts]:
    """Connect to ``network_choice`` and yield the deployed system's :class:`LilypadContracts`.

    Raises :class:`~lilypad.exceptions.DeploymentNotFoundError` when there is no
    deployments file for the network,
    :class:`~lilypad.exceptions.ChainConnectionError` when the choice is not a
    known network, its node cannot be reached or ape would sign for another
    chain than the node serves, and
    :class:`~lilypad.exceptions.DeploymentMismatchError` when the node serves
    another chain than the deployment's or the contracts have no code there.

    If ape is already connected to that network with that provider (under
    ``ape test``, ``ape run --network``, or inside another ``connected``),
    that connection is used and left as it was; otherwise the connection is
    ape's ``parse_network_choice`` context, entered here and exited on leaving.
    """
    from ape import networks
    from ape.api.networks import ProviderContextManager
    from ape.exceptions import ApeException

    directory = Path(deployments_dir) if deployments_dir is not None else None
    try:
        # What networks.parse_network_choice does (faster: provider_from_choice),
        # keeping the provider to read its network before connecting.
        wanted = provider_from_choice(network_choice, provider_settings)
        ecosystem_name, network_name = wanted.network.ecosystem.name, wanted.network.name
    except (ApeException, ValueError) as exc:
        raise ChainConnectionError(network_choice, f"not a usable network choice ({exc})") from exc

    deployment = load_deployment(ecosystem_name, network_name, directory)
    urls = list(rpc_urls) if rpc_urls is not None else rpc_urls_from_env()
    if urls and not provider_settings:
        url, problems = pick_rpc(urls, deployment.chain_id)
        if url is None:
            raise ChainConnectionError(
                network_choice, f"none of the RPC endpoints serves chain id {deployment.chain_id}: "
                + "; ".join(problems))
        provider_settings = {"host" if wanted.name == "foundry" else "uri": url}
        wanted = provider_from_choice(network_choice, provider_settings)
    active = networks.active_provider
    context: ProviderContextManager | None = None
    if _reusable(active, wanted, network_choice, provider_settings):
        provider = active
    else:
        context = ProviderContextManager(provider=wanted)
        try:
            provider = context.__enter__()
        except Exception as exc:  # ape, web3 and requests all raise their own types
            raise ChainConnectionError(network_choice, f"{type(exc).__name__}: {exc}") from exc
    try:
        try:
            real = node_chain_id(provider)
            assumed = int(provider.chain_id)
            problems = check_deployment(deployment, provider)
        except Exception as exc:
            raise ChainConnectionError(
                network_choice, f"the node does not answer ({type(exc).__name__}: {exc})"
            ) from exc
        if assumed != real:
            raise ChainConnectionError(
                network_choice,
                f"ape's {provider.name!r} provider assumes chain id {assumed} but the node serves {real}, "
                "so transactions would be signed for the wrong chain (for an anvil node use "
                "'ethereum:local:foundry' with APE_FOUNDRY_HOST=<its URL>)",
            )
        if problems:
            raise DeploymentMismatchError(deployment_path(ecosystem_name, network_name, directory), problems)
        yield LilypadContracts(deployment, project=project, retries=retries)
    finally:
        if context is not None:
            context.__exit__(None, None, None)
