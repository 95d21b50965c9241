"""Waking a daemon's loop when the solver announces a deal.

The daemons poll the solver every ``poll_interval`` seconds regardless; the
:class:`EventWaker` only makes them prompt, so a solver that is down or
restarting costs nothing but a reconnect every second.
"""

from __future__ import annotations

import threading

__all__ = ["EventWaker"]


class EventWaker:
    """Follows the solver's ``/events`` stream in a daemon thread and sets
    ``wake`` on every ``deal`` event (the loop polls anyway: this only makes it prompt)."""

    def __init__(self, solver_url: str, wake: threading.Event, stop: threading.Event) -> None:
        self.solver_url, self.wake, self.stop = solver_url, wake, stop
        self.thread = threading.Thread(target=self._run, name="solver-events", daemon=True)

    def start(self) -> EventWaker:
        self.thread.start()
        return self

    def _run(self) -> None:
        from lilypad.client import SolverClient

        client = SolverClient(self.solver_url, retries=0)
        while not self.stop.is_set():
            try:
                with client.events(read_timeout=30.0) as stream:
                    for event in stream:
                        if self.stop.is_set():
                            return
                        if event.type == "deal":
                            self.wake.set()
            except Exception:
                self.stop.wait(1.0)
