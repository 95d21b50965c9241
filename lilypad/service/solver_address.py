"""The solver address a service's offers name: given, or as the solver reports it."""

from __future__ import annotations

from typing import Any

__all__ = ["resolve_solver_address"]


def resolve_solver_address(client: Any, given: str | None) -> str:
    """``given``, else the solver's ``/health`` ``solver`` field, else an error
    (:class:`~lilypad.exceptions.ServiceConfigError` for a ``given`` that is no
    address, :class:`~lilypad.exceptions.SolverAddressUnknownError` when the
    solver reports none); checksummed. ``client`` is a
    :class:`~lilypad.client.SolverClient`."""
    from eth_utils import is_address, to_checksum_address

    from lilypad.exceptions import ServiceConfigError, SolverAddressUnknownError

    if given:
        if not is_address(given):
            raise ServiceConfigError("--solver-address", f"{given!r} is not an address")
        return to_checksum_address(given)
    reported = client.health().solver
    if not reported or not is_address(reported):
        raise SolverAddressUnknownError(client.base_url)
    return to_checksum_address(reported)
