"""The solver server: it takes signed offers from job creators and resource
providers, pairs them into deals and serves the deals, results and input
files over HTTP.

* :mod:`~lilypad.solver.app` - :func:`~lilypad.solver.app.create_app`, the FastAPI
  application assembled from the routers of :mod:`~lilypad.solver.api` (one per
  concern: discovery, offers, deals, results, input files, events, status) and the
  one signed-upload path both archive uploads take;
* :mod:`~lilypad.solver.service` - :class:`~lilypad.solver.service.SolverCore`,
  the state machine without HTTP, and the API's views of offers and deals;
* :mod:`~lilypad.solver.rules` - who may upload or be served what, as pure functions
  the core applies;
* :mod:`~lilypad.solver.store` - its SQLite state;
* :mod:`~lilypad.solver.matching` - the matcher (pure logic);
* :mod:`~lilypad.solver.events` - the event bus behind ``/events``;
* :mod:`~lilypad.solver.watcher` - the chain watcher and the timeout keeper;
* :mod:`~lilypad.solver.status`, :mod:`~lilypad.solver.metrics` - the status
  page and Prometheus metrics (served by ``api/status.py``);
* :mod:`~lilypad.solver.guards`, :mod:`~lilypad.solver.limits` - request-size
  guards and the solver's own timeouts.

What the roles share with the solver (deals, offers, signing, request auth,
job inputs, CIDs, the module allowlist) is in :mod:`lilypad.protocol`; the
client of this API is :mod:`lilypad.client`, which imports nothing from here.
"""
