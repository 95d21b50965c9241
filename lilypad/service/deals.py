"""Which deals a daemon's round looks at: :func:`deals_to_visit`.

The resource provider and the mediator each go over their deals every round. Asking the
solver for every deal that ever named the daemon made a round cost more with each deal
it ever had (a provider with ten thousand ended deals read them all, every round): a round
now reads the deals the solver shows still open (not in a final state) and, once each,
those the daemon has not finished that the solver no longer lists as open - they ended
since the last round, and the daemon reads the final state to finish them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["deals_to_visit"]


def deals_to_visit(client: Any, party: str, store: Any, finished: Iterable[str]) -> list[Any]:
    """The solver's views of the deals naming ``party`` that a round must look at (see the
    module docstring): the open ones, then each deal ``store`` (a
    :class:`~lilypad.service.state.DealStateStore`) holds with a status not in ``finished``
    that is not among them. A deal the solver no longer knows (404) is left out."""
    from lilypad.exceptions import SolverRequestError
    from lilypad.protocol.deal import AgreementState

    views = list(client.deals(party=party, state=[s for s in AgreementState if not s.is_terminal]))
    listed = {v.deal_id.lower() for v in views}
    for deal_id in store.unfinished(finished):
        if deal_id.lower() in listed:
            continue
        try:
            views.append(client.deal(deal_id))
        except SolverRequestError as exc:
            if exc.status != 404:
                raise
    return views
