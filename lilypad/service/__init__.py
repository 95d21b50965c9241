"""The service kit: what lilypad's long-running processes share.

The resource provider, the mediator and the bridge are built from these
pieces; the solver's chain watcher and timeout keeper run on the same loop,
and every SQLite file of the package is opened by the same opener. Each role
keeps only its own decisions.

* :mod:`lilypad.service.loop` - :class:`ServiceLoop`, the one loop: rounds
  every interval until stopped, woken early, failed rounds reported, the
  metrics server started and stopped;
* :mod:`lilypad.service.state` - :func:`open_sqlite`, the one SQLite opener,
  and :class:`DealStateStore`, a daemon's per-deal state;
* :mod:`lilypad.service.waker` - :class:`EventWaker`, the solver's ``/events``
  stream waking a daemon's loop;
* :mod:`lilypad.service.heads` - :class:`HeadWaker`, the chain's new blocks
  (``eth_subscribe``) waking the loops that follow the chain;
* :mod:`lilypad.service.deals` - :func:`deals_to_visit`, the deals a daemon's
  round looks at (open ones, and its own unfinished ones once more);
* :mod:`lilypad.service.chain_metrics` - :func:`read_chain_metrics`, the chain
  figures of a daemon's ``/metrics``;
* :mod:`lilypad.service.containers` - :func:`remove_leftover_containers` after
  a killed run;
* :func:`log_event` - one structured log line, secrets left out (it lives in
  :mod:`lilypad.observability.logs`, beside the state-change line).

Importing the kit imports neither ape nor Docker nor the HTTP client: each
piece imports what it needs when used.
"""

from __future__ import annotations

from lilypad.observability.logs import log_event
from lilypad.service.chain_metrics import read_chain_metrics
from lilypad.service.containers import remove_leftover_containers
from lilypad.service.deals import deals_to_visit
from lilypad.service.heads import HeadWaker, websocket_url
from lilypad.service.loop import ServiceLoop
from lilypad.service.state import BUSY_TIMEOUT_S, DealStateStore, open_sqlite
from lilypad.service.waker import EventWaker

__all__ = [
    "BUSY_TIMEOUT_S",
    "DealStateStore",
    "EventWaker",
    "HeadWaker",
    "ServiceLoop",
    "log_event",
    "open_sqlite",
    "deals_to_visit",
    "read_chain_metrics",
    "remove_leftover_containers",
    "websocket_url",
]
