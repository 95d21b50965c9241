"""Every option that more than one ``lilypad`` command takes, defined once, and what
their values mean (comma-separated lists, trusted mediators, the signing key).

Each option has an environment twin shown in ``--help`` (``--solver-url`` and
``LILYPAD_SOLVER_URL``; the key is ``WEB3_PRIVATE_KEY``). Where commands
describe an option in their own words, the factory takes the ``help`` text;
the flag, its variable, type and default are fixed here. docs/configuration.md
lists every variable.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = [
    "DEFAULT_NETWORK",
    "DEFAULT_SOLVER_URL",
    "account_option",
    "data_dir_option",
    "env_option",
    "ipfs_options",
    "ipfs_sources",
    "mediation_chance_option",
    "mediators_option",
    "metrics_options",
    "network_option",
    "payment_collateral_option",
    "poll_interval_option",
    "price_option",
    "private_key_option",
    "required_private_key",
    "service_options",
    "signer",
    "solver_address_option",
    "solver_url_option",
    "split_csv",
    "trusted_mediators",
]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

DEFAULT_NETWORK = "ethereum:local:foundry"
DEFAULT_SOLVER_URL = "http://127.0.0.1:8080"


def env_option(*decls: str, envvar: str | list[str], **kwargs: Any) -> Decorator:
    """A click option read from ``envvar`` too (one name or several, first set wins), shown in ``--help``."""
    return click.option(*decls, envvar=envvar, show_envvar=True, **kwargs)


# --------------------------------------------------------------------------
# Where: the chain, the solver, local state
# --------------------------------------------------------------------------


def network_option(help: str = "ape network choice (ECOSYSTEM:NETWORK:PROVIDER).",
                   default: str = DEFAULT_NETWORK) -> Decorator:
    """``--network`` / ``LILYPAD_NETWORK``."""
    return env_option("--network", envvar="LILYPAD_NETWORK", default=default, show_default=True, help=help)


#: ``--solver-url`` / ``LILYPAD_SOLVER_URL``.
solver_url_option = env_option("--solver-url", envvar="LILYPAD_SOLVER_URL", default=DEFAULT_SOLVER_URL,
                               show_default=True, help="The solver's base URL.")


def solver_address_option(
        help: str = "The solver's address offers name (default: from the solver's /health).") -> Decorator:
    """``--solver-address`` / ``LILYPAD_SOLVER_ADDRESS``."""
    return env_option("--solver-address", envvar="LILYPAD_SOLVER_ADDRESS", default=None, help=help)


def data_dir_option(help: str) -> Decorator:
    """``--data-dir`` / ``LILYPAD_DATA_DIR`` (``None`` when not given: the command
    picks its directory under the settings' ``data_dir``)."""
    return env_option("--data-dir", envvar="LILYPAD_DATA_DIR", type=click.Path(file_okay=False, path_type=Path),
                      default=None, help=help)


# --------------------------------------------------------------------------
# Who signs
# --------------------------------------------------------------------------


def private_key_option(help: str, envvar: str | list[str] = "WEB3_PRIVATE_KEY") -> Decorator:
    """``--web3-private-key`` / ``WEB3_PRIVATE_KEY`` (never logged or printed)."""
    return env_option("--web3-private-key", envvar=envvar, default=None, help=help)


def account_option(help: str) -> Decorator:
    """``--account`` / ``LILYPAD_ACCOUNT``: an ape account alias, or ``TEST::n``."""
    return env_option("--account", envvar="LILYPAD_ACCOUNT", default=None, help=help)


def required_private_key(web3_private_key: str | None) -> str:
    """The key a daemon signs with; a clean error without one."""
    if not web3_private_key:
        raise click.ClickException("no private key: pass --web3-private-key or set WEB3_PRIVATE_KEY")
    return web3_private_key


def _private_key(web3_private_key: str | None, account: str | None) -> str:
    if web3_private_key:
        return web3_private_key.strip()
    if account:
        if account.upper().startswith("TEST::"):
            from lilypad.devnet.processes import dev_private_key

            try:
                return dev_private_key(int(account.split("::", 1)[1]))
            except ValueError:
                raise click.BadParameter(f"{account!r}: expected TEST::<number>", param_hint="--account") from None
        raise click.BadParameter(
            "signing offers needs the raw key; ape keyfile aliases are not supported yet: "
            "set WEB3_PRIVATE_KEY or pass --web3-private-key", param_hint="--account")
    raise click.UsageError("no key to sign with: set WEB3_PRIVATE_KEY, or pass --web3-private-key or --account")


def signer(web3_private_key: str | None, account: str | None) -> Any:
    """What signs for ``lilypad run`` and ``lilypad jobcreator``: a raw key
    (``--web3-private-key``, ``TEST::n``) or the unlocked ape account ``--account ALIAS``,
    which signs offers, cancels, uploads and transactions itself (its key never leaves ape)."""
    if web3_private_key or not account or account.upper().startswith("TEST::"):
        return _private_key(web3_private_key, account)
    from lilypad.exceptions import LilypadError
    from lilypad.protocol.accounts import load_ape_account

    try:
        return load_ape_account(account.strip())
    except LilypadError as exc:
        raise click.BadParameter(str(exc), param_hint="--account") from None


# --------------------------------------------------------------------------
# Deals: mediators and prices
# --------------------------------------------------------------------------


def mediators_option(*, repeatable: bool = False) -> Decorator:
    """``--mediators`` / ``LILYPAD_MEDIATORS``: one comma-separated list (the daemons),
    or ``repeatable`` (``lilypad run``: each value a list too)."""
    if repeatable:
        return env_option("--mediators", envvar="LILYPAD_MEDIATORS", multiple=True, metavar="ADDR[,ADDR...]",
                          help="Mediators you trust (repeatable or comma-separated).")
    return env_option("--mediators", envvar="LILYPAD_MEDIATORS", default="",
                      help="Trusted mediator addresses, comma-separated (at least one).")


def split_csv(text: str | None) -> tuple[str, ...]:
    """The non-empty, stripped items of a comma-separated value."""
    return tuple(p.strip() for p in (text or "").split(",") if p.strip())


def trusted_mediators(text: str | None) -> tuple[str, ...]:
    """The addresses of a daemon's ``--mediators``; a clean error when there are none or one is not an address."""
    from eth_utils import is_address

    trusted = split_csv(text)
    if not trusted:
        raise click.ClickException("name at least one trusted mediator: --mediators or LILYPAD_MEDIATORS")
    bad = [m for m in trusted if not is_address(m)]
    if bad:
        raise click.ClickException(f"not an address: {', '.join(bad)}")
    return trusted


def mediation_chance_option(help: str) -> Decorator:
    """``--mediation-chance`` / ``LILYPAD_MEDIATION_CHANCE``: a percentage."""
    return env_option("--mediation-chance", envvar="LILYPAD_MEDIATION_CHANCE", type=click.IntRange(0, 100),
                      default=0, show_default=True, help=help)


def price_option(help: str) -> Decorator:
    """``--price`` / ``LILYPAD_PRICE``: LP per instruction."""
    return env_option("--price", envvar="LILYPAD_PRICE", default="1", show_default=True, help=help)


def payment_collateral_option(help: str) -> Decorator:
    """``--payment-collateral`` / ``LILYPAD_PAYMENT_COLLATERAL``: LP."""
    return env_option("--payment-collateral", envvar="LILYPAD_PAYMENT_COLLATERAL", default="2", show_default=True,
                      help=help)


# --------------------------------------------------------------------------
# The daemons (resource-provider, mediator, jobcreator)
# --------------------------------------------------------------------------


def poll_interval_option(default: float, help: str) -> Decorator:
    """``--poll-interval`` / ``LILYPAD_POLL_INTERVAL``: seconds between a daemon's rounds."""
    return env_option("--poll-interval", envvar="LILYPAD_POLL_INTERVAL", type=click.FloatRange(min=0.05),
                      default=default, show_default=True, help=help)


def metrics_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--metrics-port`` / ``--metrics-host``: where a daemon serves ``/metrics`` and ``/health``."""
    func = env_option("--metrics-host", envvar="LILYPAD_METRICS_HOST", default="127.0.0.1", show_default=True,
                      help="Address the metrics server listens on (0.0.0.0: all).")(func)
    return env_option("--metrics-port", envvar="LILYPAD_METRICS_PORT", type=click.IntRange(0, 65535), default=None,
                      help="Serve Prometheus /metrics and /health on this port (default: off; the packaged "
                           "units use 9101 for a provider, 9102 for a mediator).")(func)


def service_options(role: str, state: str) -> Decorator:
    """``--network``, ``--solver-url``, ``--web3-private-key`` and ``--data-dir``,
    with their environment twins; ``role`` and ``state`` go into the help."""
    decorators = [
        network_option(),
        solver_url_option,
        private_key_option(f"The {role}'s private key (never logged)."),
        data_dir_option(f"State directory ({state})."),
    ]

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return apply


# --------------------------------------------------------------------------
# IPFS: an own kubo node, a gateway, peers
# --------------------------------------------------------------------------


def ipfs_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--ipfs-api`` / ``--ipfs-gateway`` / ``--ipfs-peer`` / ``--ipfs-timeout`` with their
    ``LILYPAD_IPFS_*`` twins (the values reach the command as ``ipfs_api``, ``ipfs_gateway``,
    ``ipfs_peers``, ``ipfs_timeout``)."""
    func = env_option("--ipfs-timeout", envvar="LILYPAD_IPFS_TIMEOUT", type=click.FloatRange(min=1), default=30.0,
                      show_default=True,
                      help="Seconds to wait on IPFS (an add, or for the next bytes of a fetch) before falling back "
                           "to the solver.")(func)
    func = env_option("--ipfs-peer", "ipfs_peers", envvar="LILYPAD_IPFS_PEERS", multiple=True,
                      help="Multiaddr (/ip4/.../tcp/.../p2p/PEER_ID) of a kubo node holding the content, e.g. the "
                           "provider's: the own node connects to it first (repeatable; the variable is "
                           "space-separated).")(func)
    func = env_option("--ipfs-gateway", envvar="LILYPAD_IPFS_GATEWAY", default=None,
                      help="An IPFS HTTP gateway (http://HOST:PORT) to fetch content from when the own node "
                           "cannot; what it serves is verified by its CID.")(func)
    return env_option("--ipfs-api", envvar="LILYPAD_IPFS_API", default=None,
                      help="RPC API of the own kubo node (http://127.0.0.1:5001): results and input files are "
                           "added and pinned there, or fetched through it (default: no IPFS, solver store "
                           "only).")(func)


def ipfs_sources(ipfs_api: str | None, ipfs_gateway: str | None, ipfs_peers: tuple[str, ...],
                 ipfs_timeout: float = 30.0) -> Any:
    """The :class:`~lilypad.ipfs.IpfsSources` of :func:`ipfs_options`' values (``None``: IPFS not used)."""
    from lilypad.ipfs.fetch import IpfsSources

    sources = IpfsSources.build(ipfs_api, ipfs_gateway, " ".join(ipfs_peers), timeout=ipfs_timeout)
    return sources if sources.enabled else None
