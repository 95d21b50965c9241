"""A typed client for Bacalhau's v1 HTTP API (the orchestrator's ``/api/v1``), on httpx.

The PyPI SDKs are years behind v1.9, so this speaks the API directly; it
covers what the Bacalhau executor needs (measured against v1.9.3, see
docs/infra-notes.md):

* ``GET /api/v1/agent/alive`` and ``/agent/version``;
* ``GET /api/v1/orchestrator/nodes``: each node's ``Info.NodeType``,
  ``ComputeNodeInfo.MaxCapacity``/``AvailableCapacity`` and ``Connection``;
* ``PUT /api/v1/orchestrator/jobs`` (``{"Job": ...}`` -> ``JobID``), ``GET
  .../jobs/{id}``, ``.../jobs?...`` (to find a job by name),
  ``.../jobs/{id}/executions``, ``.../jobs/{id}/results`` and ``DELETE
  .../jobs/{id}`` (stop);
* downloading a published result (the local publisher's ``.tar.gz`` URL).

Errors are :class:`~lilypad.exceptions.BacalhauUnavailableError` (no answer,
or an HTTP error status, with Bacalhau's message).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lilypad.exceptions import BacalhauUnavailableError

__all__ = [
    "DESIRED_STATES", "EXECUTION_STATES", "TERMINAL_JOB_STATES",
    "BacalhauClient", "Execution", "NodeCapacity", "parse_memory",
]

TERMINAL_JOB_STATES = frozenset({"Completed", "Failed", "Stopped"})
"""``Job.State.StateType`` values after which nothing more happens."""

EXECUTION_STATES = ("Undefined", "New", "AskForBid", "AskForBidAccepted", "AskForBidRejected", "BidAccepted",
                    "Running", "Publishing", "BidRejected", "Completed", "Failed", "Cancelled")
"""``ExecutionStateType`` names by the number the API sends (``pkg/models/execution.go``, v1.9.3)."""
DESIRED_STATES = ("Pending", "Running", "Stopped")

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "ki": 1024, "kib": 1024, "mi": 1024**2, "mib": 1024**2, "gi": 1024**3, "gib": 1024**3,
          "ti": 1024**4, "tib": 1024**4, "t": 1000**4, "tb": 1000**4}


def parse_memory(value: Any) -> int:
    """Bytes of a Bacalhau size (an int of bytes, or ``"512Mi"``, ``"2Gi"``, ``"1GB"``)."""
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number):]
    if unit not in _UNITS or not number:
        raise ValueError(f"not a size: {value!r}")
    return int(float(number) * _UNITS[unit])


def _state_name(value: Any, names: tuple[str, ...]) -> str:
    """A state sent as its number (or, by other versions, its name) as its name."""
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    return str(value or "")


@dataclass(frozen=True)
class NodeCapacity:
    """A compute node as the orchestrator lists it: its id, connection state and capacity
    (CPU in cores, memory and disk in bytes, GPU count)."""

    node_id: str
    connected: bool
    cpu: float
    memory: int
    disk: int
    gpu: int
    labels: dict[str, str]
    available_cpu: float = 0.0  # cores not taken by running executions (as last reported by the node)

    @classmethod
    def from_api(cls, node: dict[str, Any]) -> NodeCapacity:
        info = node.get("Info") or {}
        compute = info.get("ComputeNodeInfo") or {}
        capacity = compute.get("MaxCapacity") or {}
        gpus = capacity.get("GPUs") or []
        return cls(node_id=str(info.get("NodeID") or info.get("ID") or ""),
                   connected=str(node.get("ConnectionState", {}).get("Status") or node.get("Connection") or "")
                   .upper() == "CONNECTED",
                   cpu=float(capacity.get("CPU") or 0), memory=int(capacity.get("Memory") or 0),
                   disk=int(capacity.get("Disk") or 0), gpu=int(capacity.get("GPU") or len(gpus)),
                   labels=dict(info.get("Labels") or {}),
                   available_cpu=float((compute.get("AvailableCapacity") or {}).get("CPU") or 0))


@dataclass(frozen=True)
class Execution:
    """One execution of a job: where it ran, its state, its output and published result."""

    execution_id: str
    node_id: str
    job_version: int
    state: str  # ComputeState.StateType: New, AskForBid..., Running, Completed, Failed, Cancelled
    desired: str
    exit_code: int | None
    error: str
    result_url: str | None

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> Execution:
        output = item.get("RunOutput") or {}
        published = item.get("PublishedResult") or {}
        params = published.get("Params") or {}
        state = item.get("ComputeState") or {}
        return cls(execution_id=str(item.get("ID")), node_id=str(item.get("NodeID") or ""),
                   job_version=int(item.get("JobVersion") or 0),
                   state=_state_name(state.get("StateType"), EXECUTION_STATES),
                   desired=_state_name((item.get("DesiredState") or {}).get("StateType"), DESIRED_STATES),
                   exit_code=output.get("ExitCode") if output else None,
                   error=str(output.get("ErrorMsg") or state.get("Message") or ""),
                   result_url=params.get("URL") or None)


class BacalhauClient:
    """The orchestrator's API at ``base_url`` (``http://127.0.0.1:PORT``). Close it, or use ``with``."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> BacalhauClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BacalhauUnavailableError(self.base_url, f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            try:
                body = response.json()
                message = body.get("Message") or body.get("message") or response.text
            except ValueError:
                message = response.text
            raise BacalhauUnavailableError(self.base_url, f"{method} {path}: HTTP {response.status_code}: {message}")
        return response.json() if response.content else {}

    # ------------------------------------------------------------------ agent
    def alive(self) -> bool:
        """Whether the API answers ``/agent/alive`` with ``OK`` (False when unreachable)."""
        try:
            return str(self._request("GET", "/api/v1/agent/alive").get("Status")).upper() == "OK"
        except BacalhauUnavailableError:
            return False

    def version(self) -> str:
        """The orchestrator's ``GitVersion`` (``v1.9.3``)."""
        answer = self._request("GET", "/api/v1/agent/version")
        return str((answer.get("BuildVersionInfo") or answer).get("GitVersion") or "")

    # ------------------------------------------------------------------ nodes
    def nodes(self) -> list[dict[str, Any]]:
        """Every node the orchestrator knows (raw API objects)."""
        return list(self._request("GET", "/api/v1/orchestrator/nodes", params={"limit": 1000}).get("Nodes") or [])

    def compute_nodes(self) -> list[NodeCapacity]:
        """Every compute node with its connection state and capacity."""
        return [NodeCapacity.from_api(n) for n in self.nodes()
                if str((n.get("Info") or {}).get("NodeType")) == "Compute"]

    def connected_compute_nodes(self) -> list[NodeCapacity]:
        return [n for n in self.compute_nodes() if n.connected]

    # ------------------------------------------------------------------ jobs
    def put_job(self, job: dict[str, Any], *, force: bool = False) -> str:
        """Submit ``job`` (a Bacalhau Job object); its id. A job's ``Name`` is its identity:
        a job of an existing name is a new *version* of that job (same id), refused when
        nothing changed unless ``force`` (which runs it again)."""
        body = {"Job": job, "Force": force}
        return str(self._request("PUT", "/api/v1/orchestrator/jobs", json=body)["JobID"])

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The job object (``Job.State.StateType`` says where it is)."""
        return dict(self._request("GET", f"/api/v1/orchestrator/jobs/{job_id}")["Job"])

    def job_state(self, job_id: str) -> tuple[str, str]:
        """``(StateType, Message)`` of a job."""
        state = self.get_job(job_id).get("State") or {}
        return str(state.get("StateType") or ""), str(state.get("Message") or "")

    def jobs(self, *, labels: str | None = None) -> Iterator[dict[str, Any]]:
        """Every job (optionally those matching a label selector such as ``lilypad-deal=0x..``), newest first."""
        token = ""
        while True:
            params: dict[str, Any] = {"limit": 100, "reverse": "true"}
            if labels:
                params["labels"] = labels
            if token:
                params["next_token"] = token
            answer = self._request("GET", "/api/v1/orchestrator/jobs", params=params)
            yield from answer.get("Items") or []
            token = answer.get("NextToken") or ""
            if not token:
                return

    def find_jobs(self, name: str, *, labels: str | None = None) -> list[dict[str, Any]]:
        """The jobs named ``name`` (idempotent submission looks a deal's job up by name)."""
        return [job for job in self.jobs(labels=labels) if job.get("Name") == name]

    def executions(self, job_id: str) -> list[Execution]:
        answer = self._request("GET", f"/api/v1/orchestrator/jobs/{job_id}/executions", params={"limit": 100})
        return [Execution.from_api(item) for item in answer.get("Items") or []]

    def stop_job(self, job_id: str, reason: str = "stopped by lilypad") -> None:
        self._request("DELETE", f"/api/v1/orchestrator/jobs/{job_id}", params={"reason": reason})

    def download(self, url: str, dest: Path, *, max_bytes: int) -> int:
        """Stream ``url`` (a published result) into ``dest``; its size. Refuses more than ``max_bytes``."""
        written = 0
        try:
            with self._http.stream("GET", url) as response, open(dest, "wb") as handle:
                if response.status_code >= 400:
                    raise BacalhauUnavailableError(url, f"HTTP {response.status_code}")
                for chunk in response.iter_bytes(1 << 16):
                    written += len(chunk)
                    if written > max_bytes:
                        raise BacalhauUnavailableError(url, f"the result is larger than {max_bytes} bytes")
                    handle.write(chunk)
        except httpx.HTTPError as exc:
            raise BacalhauUnavailableError(url, f"download: {type(exc).__name__}: {exc}") from None
        return written
