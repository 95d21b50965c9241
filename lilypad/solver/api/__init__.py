"""The solver's HTTP API (docs/solver-api.md): one FastAPI router per concern.

:func:`lilypad.solver.app.create_app` mounts :data:`API_ROUTERS` under
:data:`API_PREFIX` and the operators' router at the root:

* :mod:`~lilypad.solver.api.discovery` - ``/health`` and ``/domain``;
* :mod:`~lilypad.solver.api.offers` - resource and job offers: post, list, get, cancel;
* :mod:`~lilypad.solver.api.deals` - deals and the job a deal's provider runs;
* :mod:`~lilypad.solver.api.results` - a deal's result: signed upload, download once on-chain;
* :mod:`~lilypad.solver.api.inputs` - a job offer's input files: signed upload, download;
* :mod:`~lilypad.solver.api.events` - the server-sent event stream;
* :mod:`~lilypad.solver.api.status` - ``/``, ``/status``, ``/health`` and ``/metrics`` (not under the prefix).

Handlers only parse a request, call the :class:`~lilypad.solver.service.SolverCore`
(whose rules are :mod:`lilypad.solver.rules`) and map its answer or refusal
to a response. :mod:`~lilypad.solver.api.deps` gives them the core, stores
and limits from ``app.state``; :mod:`~lilypad.solver.api.errors` answers
errors as ``{"error", "detail"}``; :mod:`~lilypad.solver.api.archives` is the
one signed upload stream and the archive download both uploads share.
"""

from __future__ import annotations

from fastapi import APIRouter

from lilypad.solver.api import deals, discovery, events, inputs, offers, results

__all__ = ["API_PREFIX", "API_ROUTERS"]

API_PREFIX = "/api/v1"

#: The routers under :data:`API_PREFIX`, in the order their routes are matched and documented.
API_ROUTERS: tuple[APIRouter, ...] = (
    discovery.router, offers.router, deals.router, results.router, inputs.router, events.router,
)
