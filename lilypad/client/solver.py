"""A synchronous client of the solver's HTTP API (docs/solver-api.md), for
resource providers, job creators, mediators, the bridge and applications.

Answers are typed (:mod:`lilypad.client.views`): :class:`~lilypad.client.views.DealView`,
:class:`~lilypad.client.views.OfferView`, ... parsed from exactly the JSON the
solver sends; a posted offer's answer is its id.

Every call raises :class:`~lilypad.exceptions.SolverUnavailableError` when the
solver cannot be reached after the retries (connection errors, and for
idempotent requests also dropped connections and 502/503/504 answers, are
retried with exponential backoff), and
:class:`~lilypad.exceptions.SolverRequestError` when it refuses the request
(its ``status``, ``code`` and ``detail`` are the solver's answer). An offer
``POST`` whose answer is lost (the connection dropped, or a 502/503/504) is
safe to repeat: an offer's id is its EIP-712 digest, so the client asks the
solver for that id and sends the same signed offer again only if it is not
stored; a repeat that the solver refuses as a replayed nonce counts as posted
when the stored offer is this one. An offer is never stored twice or lost
without an error.

Results are verified on both ends: :meth:`SolverClient.upload_result` checks
that the solver stored the CID of the directory sent, and
:meth:`SolverClient.download_result` unpacks the archive safely and keeps it
only if its CID is the one expected (the CID recorded on-chain).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

import httpx

from lilypad.client.views import (
    DealJob,
    DealView,
    OfferView,
    SolverDomain,
    SolverHealth,
    StoredInputs,
    StoredResult,
)
from lilypad.exceptions import ResultCIDMismatchError, SolverRequestError, SolverUnavailableError
from lilypad.protocol.auth import (
    CID_HEADER,
    SHA256_HEADER,
    SIGNATURE_HEADER,
    sign_cancel,
    sign_inputs_upload,
    sign_upload,
)
from lilypad.protocol.deal import AgreementState, state_name
from lilypad.protocol.inputs import InputLimits, check_input_tree, unpack_inputs
from lilypad.protocol.signing import OfferDomain, SignedOffer, offer_id
from lilypad.results.archive import pack, unpack
from lilypad.results.cid import directory_cid
from lilypad.results.store import DEFAULT_MAX_RESULT_BYTES

__all__ = ["EventStream", "SolverClient", "SolverEvent", "resolve_solver_address"]

_API = "/api/v1"
_RETRY_STATUSES = frozenset({502, 503, 504})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SolverEvent:
    """One server-sent event: ``type`` (``deal``, ``offer``), its JSON ``data`` and ``id``."""

    type: str
    data: Any
    id: str | None = None


class EventStream:
    """An open ``/events`` stream: iterate it for :class:`SolverEvent`\\ s;
    close it (or use it as a context manager) when done. The solver has
    subscribed this stream once the object exists, so no event published
    afterwards is missed."""

    def __init__(self, context: Any, response: httpx.Response) -> None:
        self._context = context
        self._response = response

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._context.__exit__(None, None, None)

    def __iter__(self) -> Iterator[SolverEvent]:
        event_type, event_id = "message", None
        data: list[str] = []
        try:
            for line in self._response.iter_lines():
                if not line:
                    if data:
                        text = "\n".join(data)
                        try:
                            payload: Any = json.loads(text)
                        except ValueError:
                            payload = text
                        yield SolverEvent(event_type, payload, event_id)
                    event_type, data = "message", []
                    continue
                if line.startswith(":"):  # a comment (keep-alive ping)
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "event":
                    event_type = value
                elif name == "data":
                    data.append(value)
                elif name == "id":
                    event_id = value
        except httpx.TransportError as exc:
            raise SolverUnavailableError(str(self._response.url), f"{type(exc).__name__}: {exc}", 1) from exc


class SolverClient:
    """The solver at ``base_url`` (e.g. ``http://127.0.0.1:8080``).

    ``retries`` extra attempts are made on transient failures, waiting
    ``backoff * 2**n`` seconds (at most ``max_backoff``) between them.
    ``http`` may be a ready ``httpx.Client`` (e.g. Starlette's ``TestClient``).
    ``max_result_bytes`` and ``max_result_files`` bound a downloaded result.
    """

    def __init__(self, base_url: str, *, timeout: float = 30.0, retries: int = 4, backoff: float = 0.25,
                 max_backoff: float = 5.0, http: httpx.Client | None = None,
                 max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES, max_result_files: int = 10_000) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_result_bytes = max_result_bytes
        self.max_result_files = max_result_files
        self._http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self._owns_http = http is None
        self._domain: OfferDomain | None = None

    def __repr__(self) -> str:
        return f"SolverClient({self.base_url!r})"

    def __enter__(self) -> SolverClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # Plumbing -------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.base_url}{_API}{path}"

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.max_backoff, self.backoff * (2**attempt)))

    @staticmethod
    def _refused(method: str, url: str, response: httpx.Response) -> SolverRequestError:
        code, detail = None, response.text[:2000]
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = body.get("error") if isinstance(body.get("error"), str) else None
            raw = body.get("detail", detail)
            detail = raw if isinstance(raw, str) else json.dumps(raw)
        return SolverRequestError(method, url, response.status_code, detail or response.reason_phrase, code)

    def _send(self, method: str, path: str, *, idempotent: bool = True, stream: bool = False,
              **kwargs: Any) -> httpx.Response:
        """Send with retries; a 2xx response (unread when ``stream``) or an error."""
        url = self._url(path)
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(attempt - 1)
            try:
                request = self._http.build_request(method, url, **kwargs)
                response = self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                continue
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if idempotent:
                    continue
                raise SolverUnavailableError(self.base_url, reason, attempt + 1) from exc
            if response.status_code in _RETRY_STATUSES and idempotent:
                reason = f"HTTP {response.status_code}"
                response.close()
                continue
            if response.is_success:
                return response
            if stream:
                response.read()
                response.close()
            raise self._refused(method, url, response)
        raise SolverUnavailableError(self.base_url, reason, self.retries + 1)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._send(method, path, **kwargs).json()

    # Discovery ------------------------------------------------------------
    def health(self) -> SolverHealth:
        return SolverHealth.model_validate(self._json("GET", "/health"))

    def domain(self) -> SolverDomain:
        """The EIP-712 domain to sign offers with (``chain_id``, ``verifying_contract``, ...)."""
        return SolverDomain.model_validate(self._json("GET", "/domain"))

    def offer_domain(self) -> OfferDomain:
        """:meth:`domain` as an :class:`~lilypad.protocol.signing.OfferDomain` (fetched once)."""
        if self._domain is None:
            self._domain = self.domain().offer_domain
        return self._domain

    # Offers ---------------------------------------------------------------
    def _post_offer(self, path: str, signed: SignedOffer) -> str:
        body = signed.model_dump(mode="json")
        try:
            return self._send_offer(path, signed, body)
        except SolverUnavailableError:
            pass  # the answer was lost: the solver may or may not have stored it
        except SolverRequestError as exc:
            if exc.status not in _RETRY_STATUSES:
                raise
        stored = self._stored_offer_id(path, signed)
        return stored if stored is not None else self._send_offer(path, signed, body)

    def _send_offer(self, path: str, signed: SignedOffer, body: dict[str, Any]) -> str:
        """One ``POST`` of ``signed``; a refusal as a replayed nonce is an
        earlier try of this same offer having been stored when the offer
        stored under its id is this one."""
        try:
            return self._json("POST", path, json=body, idempotent=False)["id"]
        except SolverRequestError as exc:
            if exc.code == "replayed_nonce":
                stored = self._stored_offer_id(path, signed)
                if stored is not None:
                    return stored
            raise

    def _stored_offer_id(self, path: str, signed: SignedOffer) -> str | None:
        """The id of ``signed`` if the solver has stored it, else ``None`` (the
        id is the digest of the offer's content, which only its signer can sign)."""
        stored_id = offer_id(signed, self.offer_domain())
        try:
            self._json("GET", f"{path}/{stored_id}")
        except SolverRequestError as exc:
            if exc.status == 404:
                return None
            raise
        return stored_id

    def post_resource_offer(self, signed: SignedOffer) -> str:
        """Post a signed resource offer; its id."""
        return self._post_offer("/resource_offers", signed)

    def post_job_offer(self, signed: SignedOffer) -> str:
        """Post a signed job offer; its id."""
        return self._post_offer("/job_offers", signed)

    def _cancel(self, kind: str, offer_id: str, account_key: Any) -> OfferView:
        body = sign_cancel(kind, offer_id, account_key, self.offer_domain())
        return OfferView.model_validate(self._json("DELETE", f"/{kind}_offers/{offer_id}", json=body))

    def cancel_resource_offer(self, offer_id: str, account_key: Any) -> OfferView:
        """Cancel one's resource offer (signed with ``account_key``); the offer as it now is."""
        return self._cancel("resource", offer_id, account_key)

    def cancel_job_offer(self, offer_id: str, account_key: Any) -> OfferView:
        """Cancel one's job offer while it is unmatched; the offer as it now is."""
        return self._cancel("job", offer_id, account_key)

    def resource_offers(self) -> list[OfferView]:
        """The open resource offers."""
        return [OfferView.model_validate(o) for o in self._json("GET", "/resource_offers")["offers"]]

    def resource_offer(self, offer_id: str) -> OfferView:
        return OfferView.model_validate(self._json("GET", f"/resource_offers/{offer_id}"))

    def job_offer(self, offer_id: str) -> OfferView:
        """A job offer: ``state`` and, once matched, ``deal_id``."""
        return OfferView.model_validate(self._json("GET", f"/job_offers/{offer_id}"))

    # Deals ----------------------------------------------------------------
    def deals(self, *, party: str | None = None,
              state: str | AgreementState | Iterable[str | AgreementState] | None = None) -> list[DealView]:
        """Deals, optionally of one ``party`` (any role) and in ``state`` (one or several)."""
        params: dict[str, str] = {}
        if party is not None:
            params["party"] = str(getattr(party, "address", party))
        if state is not None:
            items = [state] if isinstance(state, (str, AgreementState)) else list(state)
            params["state"] = ",".join(state_name(s) if isinstance(s, AgreementState) else s for s in items)
        return [DealView.model_validate(d) for d in self._json("GET", "/deals", params=params)["deals"]]

    def deal(self, deal_id: str) -> DealView:
        return DealView.model_validate(self._json("GET", f"/deals/{deal_id}"))

    def job(self, deal_id: str) -> DealJob:
        """What a deal's provider runs: ``module``, ``inputs``, ``inputs_cid`` and ``spec``."""
        return DealJob.model_validate(self._json("GET", f"/deals/{deal_id}/job"))

    # Results --------------------------------------------------------------
    def upload_result(self, deal_id: str, result_dir: str | os.PathLike[str], account_key: Any) -> StoredResult:
        """Upload the result directory of ``deal_id``, signed with the
        provider's ``account_key``; what the solver stored. Raises
        :class:`~lilypad.exceptions.ResultCIDMismatchError` if the solver
        stored another CID than the directory's."""
        archive = pack(result_dir)
        digest = hashlib.sha256(archive).hexdigest()
        headers = {SIGNATURE_HEADER: sign_upload(deal_id, digest, account_key), SHA256_HEADER: digest,
                   "Content-Type": "application/gzip"}
        answer = StoredResult.model_validate(self._json("PUT", f"/deals/{deal_id}/result", content=archive,
                                                        headers=headers))
        local = directory_cid(result_dir)
        if answer.cid != local:
            raise ResultCIDMismatchError(local, answer.cid)
        return answer

    def download_result(self, deal_id: str, dest: str | os.PathLike[str], expected_cid: str) -> str:
        """Download the result of ``deal_id`` into the new directory ``dest``;
        it is kept only if its CID is ``expected_cid`` (which is returned)."""
        return self._download(f"/deals/{deal_id}/result", expected_cid, max_bytes=self.max_result_bytes,
                              unpacker=lambda archive: unpack(archive, dest, expected_cid=expected_cid,
                                                              max_bytes=self.max_result_bytes,
                                                              max_files=self.max_result_files))

    def upload_inputs(self, offer_id: str, inputs_dir: str | os.PathLike[str], signer: Any,
                      limits: InputLimits = InputLimits()) -> StoredInputs:
        """Upload the input files of job offer ``offer_id`` (whose ``inputs_cid``
        is their CID), signed by the job creator (a key or an ape account);
        what the solver stored. The tree is checked first
        (:func:`~lilypad.protocol.inputs.check_input_tree`)."""
        check_input_tree(inputs_dir, limits)
        archive = pack(inputs_dir)
        digest = hashlib.sha256(archive).hexdigest()
        headers = {SIGNATURE_HEADER: sign_inputs_upload(offer_id, digest, signer), SHA256_HEADER: digest,
                   "Content-Type": "application/gzip"}
        return StoredInputs.model_validate(self._json("PUT", f"/job_offers/{offer_id}/inputs", content=archive,
                                                      headers=headers))

    def download_inputs(self, offer_id: str, dest: str | os.PathLike[str], expected_cid: str,
                        limits: InputLimits = InputLimits()) -> str:
        """Download the input files of job offer ``offer_id`` into the new
        directory ``dest``; kept only if their CID is ``expected_cid`` (the
        offer's signed ``inputs_cid``) and they pass the input checks."""
        return self._download(f"/job_offers/{offer_id}/inputs", expected_cid,
                              max_bytes=limits.max_archive_bytes,
                              unpacker=lambda archive: unpack_inputs(archive, dest, expected_cid=expected_cid,
                                                                     limits=limits))

    def _download(self, path: str, expected_cid: str, *, max_bytes: int,
                  unpacker: Callable[[BinaryIO], str]) -> str:
        """GET an archive (at most ``max_bytes``) whose served CID must be
        ``expected_cid``, spooled, then handed to ``unpacker``."""
        response = self._send("GET", path, stream=True)
        with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
            try:
                served = response.headers.get(CID_HEADER)
                if served is not None and served != expected_cid:
                    raise ResultCIDMismatchError(expected_cid, served)
                size = 0
                for chunk in response.iter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise SolverRequestError("GET", str(response.url), response.status_code,
                                                 f"the archive is over {max_bytes} bytes")
                    spool.write(chunk)
            except httpx.TransportError as exc:
                raise SolverUnavailableError(self.base_url, f"{type(exc).__name__}: {exc}", 1) from exc
            finally:
                response.close()
            spool.seek(0)
            return unpacker(cast(BinaryIO, spool))

    # Events ---------------------------------------------------------------
    def events(self, *, read_timeout: float | None = None, last_event_id: str | int | None = None,
               party: str | None = None) -> EventStream:
        """Open the event stream (``deal`` and ``offer`` events). ``read_timeout``
        bounds the wait for any line (the solver pings every 15 s);
        ``last_event_id`` (the ``id`` of the last event seen) replays those missed since;
        ``party`` keeps only the events naming that address (an offer's signer, a deal's members)."""
        url = self._url("/events")
        params = {"party": str(getattr(party, "address", party))} if party is not None else None
        reason = ""
        timeout = httpx.Timeout(10.0, read=read_timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(attempt - 1)
            context = self._http.stream("GET", url, timeout=timeout, headers=headers, params=params)
            try:
                response = context.__enter__()
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                return EventStream(context, response)
            response.read()
            context.__exit__(None, None, None)
            if response.status_code in _RETRY_STATUSES:
                reason = f"HTTP {response.status_code}"
                continue
            raise self._refused("GET", url, response)
        raise SolverUnavailableError(self.base_url, reason, self.retries + 1)


def resolve_solver_address(client: SolverClient, given: str | None) -> str:
    """``given``, else the solver's ``/health`` ``solver`` field, else an error
    (:class:`~lilypad.exceptions.ServiceConfigError` for a ``given`` that is no
    address, :class:`~lilypad.exceptions.SolverAddressUnknownError` when the
    solver reports none); checksummed."""
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
