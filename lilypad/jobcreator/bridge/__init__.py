"""The bridge: smart-contract jobs, ``runJob`` in, ``submitResults`` out (``lilypad jobcreator``).

The job creator of :mod:`lilypad.jobcreator` driven by ``JobAdded`` events instead of a
person: it takes the same steps (:mod:`lilypad.jobcreator.steps`), and adds what a
long-running relay needs: a job store, reconciliation with the chain after a crash, backoff.

* :mod:`lilypad.jobcreator.bridge.logic` - local job states, reconciling with the chain, verdicts, backoff; pure;
* :mod:`lilypad.jobcreator.bridge.store` - the per-job state in SQLite;
* :mod:`lilypad.jobcreator.bridge.daemon` - :class:`~lilypad.jobcreator.bridge.daemon.Bridge`, the I/O loop.
"""

__all__: list[str] = []
