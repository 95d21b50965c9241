"""The bridge: smart-contract jobs, ``runJob`` in, ``submitResults`` out (``lilypad jobcreator``).

* :mod:`lilypad.bridge.logic` - local job states, reconciling with the chain, verdicts, backoff; pure;
* :mod:`lilypad.bridge.store` - the per-job state in SQLite;
* :mod:`lilypad.bridge.daemon` - :class:`~lilypad.bridge.daemon.Bridge`, the I/O loop.
"""

__all__: list[str] = []
