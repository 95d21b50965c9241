"""Waking a daemon's loop when the solver announces a deal.

The daemons poll the solver every ``poll_interval`` seconds while they have
work in flight, and every ``idle_interval`` seconds without any while this
stream is open (:class:`~lilypad.service.loop.ServiceLoop`): the stream then
carries what starts new work (a deal made, a deal's state moved). A solver
that is down or restarting costs a reconnect every second, and the loop polls
at ``poll_interval`` meanwhile (``connected`` is clear).
"""

from __future__ import annotations

import threading

__all__ = ["EventWaker"]


class EventWaker:
    """Follows the solver's ``/events`` stream in a daemon thread and sets
    ``wake`` on every ``deal`` event (of deals naming ``party``, when given: the
    daemon's own), and when the stream (re)opens (what was published while it was
    closed is not replayed: a round reads it all); ``connected`` is set while the
    stream is open."""

    def __init__(self, solver_url: str, wake: threading.Event, stop: threading.Event,
                 connected: threading.Event | None = None, *, party: str | None = None) -> None:
        self.solver_url, self.wake, self.stop, self.party = solver_url, wake, stop, party
        self.connected = connected if connected is not None else threading.Event()
        self.thread = threading.Thread(target=self._run, name="solver-events", daemon=True)

    def start(self) -> EventWaker:
        self.thread.start()
        return self

    def _run(self) -> None:
        from lilypad.client import SolverClient

        client = SolverClient(self.solver_url, retries=0)
        while not self.stop.is_set():
            try:
                with client.events(read_timeout=30.0, party=self.party) as stream:
                    self.connected.set()
                    self.wake.set()
                    for event in stream:
                        if self.stop.is_set():
                            return
                        if event.type == "deal":
                            self.wake.set()
            except Exception:
                pass
            self.connected.clear()
            self.stop.wait(1.0)
