"""The client side of the market: what the CLI, the bridge, the daemons and
applications use to talk to a solver. It imports nothing of the solver
server (:mod:`lilypad.solver`); what both sides share is :mod:`lilypad.protocol`.

* :mod:`lilypad.client.solver` - :class:`SolverClient`, a synchronous client
  of the solver's HTTP API with retries, safe result and input-file transfer,
  and the ``/events`` stream (:class:`EventStream`, :class:`SolverEvent`);
  :func:`resolve_solver_address`, the solver address an offer names (given,
  or as the solver reports it);
* :mod:`lilypad.client.views` - the typed answers it returns
  (:class:`DealView`, :class:`OfferView`, :class:`DealJob`, ...).
"""

from __future__ import annotations

from lilypad.client.solver import EventStream, SolverClient, SolverEvent, resolve_solver_address
from lilypad.client.views import (
    AgreementTimestamps,
    DealJob,
    DealView,
    OfferView,
    SolverDomain,
    SolverHealth,
    StoredInputs,
    StoredResult,
    UploadedResult,
)

__all__ = [
    "AgreementTimestamps",
    "DealJob",
    "DealView",
    "EventStream",
    "OfferView",
    "SolverClient",
    "SolverDomain",
    "SolverEvent",
    "SolverHealth",
    "StoredInputs",
    "StoredResult",
    "UploadedResult",
    "resolve_solver_address",
]
