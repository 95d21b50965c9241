"""Every exception that lilypad raises on purpose.

One module, in the style of ``ape.exceptions``: a single base class,
:class:`LilypadError`, and one subclass per kind of failure. Each subclass
builds its message in ``__init__`` from its inputs and keeps those inputs as
attributes, so callers (the CLI, the daemons, tests) can report or branch on
them without parsing the message.

Keep this file tidy when adding classes: group them under the section comment
of the subsystem that raises them, give each a docstring, and list it in
``__all__``.
"""

from __future__ import annotations

__all__ = [
    "LilypadError",
    # settings
    "SettingsError",
    # modules
    "ModuleError",
    "TemplateError",
    "TemplateHelperError",
    "InputError",
    "SpecError",
    "SpecJSONError",
    "VerifierContextError",
    # module resolution
    "ModuleResolutionError",
    "ModuleRefError",
    "ModuleNotAllowedError",
    "ModuleSourceError",
    "ModuleCommitMismatchError",
    "UnknownRevisionError",
    "ModuleFetchError",
    "ModuleCacheError",
    # results
    "ResultsError",
    "CIDError",
    "InvalidCIDError",
    "ResultNotFoundError",
    "ResultCorruptedError",
    "ResultCIDMismatchError",
    "ResultLayoutError",
    "UnsafeResultError",
    "ResultTooLargeError",
    "ResultArchiveError",
    # protocol (contracts, deployments, accounts)
    "ProtocolError",
    "DeploymentNotFoundError",
    "DeploymentError",
    "InvalidPrivateKeyError",
    "NoAccountError",
    "AccountAliasError",
    "SigningRefusedError",
    # devnet
    "DevnetError",
    # chain (contract wrappers, connections, event polling, transactions)
    "ChainError",
    "ChainConnectionError",
    "DeploymentMismatchError",
    "CursorAheadOfChainError",
    "TransactionRetriesExhaustedError",
    # executor (Docker containers, GPUs)
    "ExecutorError",
    "DockerUnavailableError",
    "ImageNotAvailableError",
    "ImageBuildError",
    "ContainerError",
    "GPUUnavailableError",
    "OutputTooLargeError",
    "WorkDirError",
    "BacalhauError",
    "BacalhauUnavailableError",
    "BacalhauJobError",
    # solver (offers, their signatures, matching)
    "SolverError",
    "OfferError",
    "OfferSignatureError",
    "OfferReplayError",
    "OfferExpiredError",
    "OfferFromFutureError",
    # solver service (its store, HTTP API and client)
    "SolverStoreError",
    "OfferNotFoundError",
    "OfferStateError",
    "DealNotFoundError",
    "OfferKindError",
    "UploadSignerError",
    "InputsClosedError",
    "InputsNotFoundError",
    "ResultNotUploadedError",
    "ResultGoneError",
    "ResultNotOnChainError",
    "OnChainResultMismatchError",
    "SolverUnavailableError",
    "SolverRequestError",
    "SolverDomainMismatchError",
    # resource provider and mediator daemons
    "ServiceError",
    "ServiceConfigError",
    "SolverAddressUnknownError",
    "MediatorStakeError",
    # job creator (lilypad run, status, fetch)
    "JobCreatorError",
    "NoMatchError",
    "DealTermsError",
    "DealBindingError",
    "JobTimeoutError",
    "JobInterruptedError",
    "InputFilesError",
    # bridge
    "BridgeError",
    "BridgeFaultError",
    # Go-built programs (kubo's ipfs, bacalhau)
    "GoToolMissingError",
    # IPFS (kubo nodes and their RPC API)
    "IpfsError",
    "IpfsUnavailableError",
    "IpfsRequestError",
    "IpfsCIDMismatchError",
]


def _shorten(text: str, limit: int = 60) -> str:
    """``text`` on one line and at most ``limit`` characters, for messages."""
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class LilypadError(Exception):
    """Base class of every error lilypad raises on purpose."""


# --------------------------------------------------------------------------
# Settings: lilypad's environment variables (lilypad.settings)
# --------------------------------------------------------------------------


class SettingsError(LilypadError):
    """Environment variables lilypad cannot use. ``problems`` has one entry per
    variable, ``NAME: what is wrong``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid settings: " + "; ".join(self.problems))


# --------------------------------------------------------------------------
# Modules: templates, inputs and module specs (lilypad.modules)
# --------------------------------------------------------------------------


class ModuleError(LilypadError):
    """Base class of errors about a module: its template, inputs or spec."""


class TemplateError(ModuleError):
    """A module template is malformed, fails while rendering, or goes over a
    limit (size, output, time), as Go's ``text/template`` reports it.

    ``construct`` names the offending action or function (``.X.Y``,
    ``frobnicate``, or the text of the line), ``line`` is the 1-based line Go
    reports (0: the template as a whole, e.g. a limit) and ``reason`` says
    what is wrong.
    """

    def __init__(self, construct: str, line: int, reason: str) -> None:
        self.construct = construct
        self.line = line
        self.reason = reason
        where = f"template line {line}" if line > 0 else "template"
        super().__init__(f"{where}: {_shorten(construct)!r}: {reason}")


class TemplateHelperError(LilypadError):
    """The Go template helper (the program that renders module templates with
    Go's ``text/template``) is missing, cannot be built or did not answer.

    A problem of this machine's setup, not of the module: ``path`` is the
    helper's (expected) location, ``reason`` what went wrong and what to do
    (usually: run ``make setup``).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"Go template helper {path}: {reason}")


class InputError(ModuleError):
    """A job input (``-i KEY=VALUE``) is malformed or over a limit.

    ``key`` is the input's key when it is known, else ``None``.
    """

    def __init__(self, reason: str, key: str | None = None) -> None:
        self.reason = reason
        self.key = key
        where = f"input {_shorten(key)!r}" if key is not None else "inputs"
        super().__init__(f"invalid {where}: {reason}")


class SpecError(ModuleError):
    """A rendered module spec is invalid.

    ``path`` is the dotted path of the offending field, e.g.
    ``job.Spec.Resources.CPU`` or ``machine.gpus[0].vram`` (empty for the
    document as a whole).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = f" at {path}" if path else ""
        super().__init__(f"invalid module spec{where}: {reason}")


class SpecJSONError(SpecError):
    """A module spec (usually a rendered template) is not valid JSON.

    ``line`` and ``column`` are 1-based positions in the rendered text;
    ``excerpt`` is the rendered line they point into.
    """

    def __init__(self, line: int, column: int, reason: str, excerpt: str = "") -> None:
        self.line = line
        self.column = column
        self.excerpt = excerpt
        detail = f"not valid JSON: {reason} (line {line}, column {column})"
        if excerpt:
            detail += f": {_shorten(excerpt.strip(), 80)!r}"
        super().__init__("", detail)


class VerifierContextError(ModuleError):
    """A module's verifier container cannot be built from what the spec names
    (lilypad.verification.verifier): ``context`` is the spec's
    ``verification.comparator.context``, ``reason`` what is wrong (outside
    the module directory, no Dockerfile, no module directory given).
    """

    def __init__(self, context: str, reason: str) -> None:
        self.context = context
        self.reason = reason
        super().__init__(f"cannot build the verifier from context {context!r}: {reason}")


# --------------------------------------------------------------------------
# Module resolution: references, the allowlist and the git cache
# (lilypad.modules.reference, lilypad.protocol.allowlist, lilypad.modules.resolve)
# --------------------------------------------------------------------------


class ModuleResolutionError(ModuleError):
    """Base class of errors turning a module reference into the module's files."""


class ModuleRefError(ModuleResolutionError):
    """A module reference (``name:ref``, ``host/owner/repo:ref``, a path) is
    malformed. ``ref`` is the text as given and ``reason`` says what is wrong."""

    def __init__(self, ref: str, reason: str) -> None:
        self.ref = ref
        self.reason = reason
        super().__init__(f"invalid module reference {_shorten(ref)!r}: {reason}")


class ModuleNotAllowedError(ModuleResolutionError):
    """A module is not in the allowlist (``OFFER_MODULES``). ``ref`` is the
    reference as given and ``allowed`` the allowlist's entries."""

    def __init__(self, ref: str, allowed: tuple[str, ...] | list[str]) -> None:
        self.ref = ref
        self.allowed = tuple(allowed)
        listed = ", ".join(self.allowed) if self.allowed else "(nothing)"
        super().__init__(f"module {_shorten(ref)!r} is not allowed here; allowed modules: {listed}")


class ModuleSourceError(ModuleResolutionError):
    """A module's source is missing or is not a module (no
    ``lilypad_module.json.tmpl``, no ``VERSION`` for a built-in, ...).
    ``ref`` is the reference, ``source`` the repository or path concerned."""

    def __init__(self, ref: str, source: str, reason: str) -> None:
        self.ref = ref
        self.source = source
        self.reason = reason
        super().__init__(f"module {_shorten(ref)!r} ({source}): {reason}")


class ModuleCommitMismatchError(ModuleResolutionError):
    """A module reference resolves here to another commit (or repository) than
    the one the job offer signed: a moved tag or branch, or another source.
    ``ref`` is the reference, ``expected`` the offer's ``repo@commit`` and
    ``resolved`` what it resolved to here."""

    def __init__(self, ref: str, expected: str, resolved: str) -> None:
        self.ref = ref
        self.expected = expected
        self.resolved = resolved
        super().__init__(f"module {_shorten(ref)!r} resolves here to {resolved}, not to the offer's {expected}; "
                         "refusing to run another module than the one agreed")


class UnknownRevisionError(ModuleResolutionError):
    """A tag, branch or commit is not in a module's repository. ``revision`` is
    the ref looked for; ``available`` lists the tags and branches there are."""

    def __init__(self, ref: str, repo: str, revision: str, available: tuple[str, ...] | list[str]) -> None:
        self.ref = ref
        self.repo = repo
        self.revision = revision
        self.available = tuple(available)
        shown = ", ".join(self.available[:30]) + (", ..." if len(self.available) > 30 else "")
        super().__init__(
            f"module {_shorten(ref)!r}: {repo} has no tag, branch or commit {_shorten(revision)!r}; "
            f"available: {shown or '(none)'}"
        )


class ModuleFetchError(ModuleResolutionError):
    """``git`` could not fetch a module's repository. ``attempts`` is how many
    times it was tried (1 for a permanent error) and ``reason`` git's complaint."""

    def __init__(self, repo: str, reason: str, attempts: int) -> None:
        self.repo = repo
        self.reason = reason
        self.attempts = attempts
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        super().__init__(f"cannot fetch {repo}{tries}: {reason}")


class ModuleCacheError(ModuleResolutionError):
    """The module cache could not be used: a ``git`` command failed or a lock
    was not obtained in time. ``path`` is the cache path concerned."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"module cache {path}: {reason}")


# --------------------------------------------------------------------------
# Results (lilypad.results)
# --------------------------------------------------------------------------


class ResultsError(LilypadError):
    """Base class of errors about job results."""


class CIDError(ResultsError):
    """The IPFS CID of a result path cannot be computed.

    ``path`` is the file system path concerned and ``reason`` says why.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot compute the CID of {path!r}: {reason}")


class InvalidCIDError(ResultsError):
    """A text is not the CID of a result (a CIDv1 dag-pb directory in base32).

    ``text`` is the rejected text and ``reason`` says what is wrong with it.
    """

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid result CID {_shorten(text)!r}: {reason}")


class ResultNotFoundError(ResultsError):
    """No result with CID ``cid`` in the results store."""

    def __init__(self, cid: str) -> None:
        self.cid = cid
        super().__init__(f"no result {cid} in the store")


class ResultCorruptedError(ResultsError):
    """A stored result no longer has the CID it is stored under.

    ``cid`` is the CID it is stored under, ``actual`` the CID its content has
    now (``None`` when no CID can be computed) and ``reason`` any detail.
    """

    def __init__(self, cid: str, actual: str | None, reason: str = "") -> None:
        self.cid = cid
        self.actual = actual
        self.reason = reason
        found = f"its content now has CID {actual}" if actual else "its content has no CID"
        detail = f" ({reason})" if reason else ""
        super().__init__(f"stored result {cid} is corrupted: {found}{detail}")


class ResultCIDMismatchError(ResultsError):
    """A result does not have the CID it was expected to have.

    ``expected`` is the CID asked for (e.g. a deal's data id) and ``actual``
    the CID of the content received.
    """

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"result CID mismatch: expected {expected}, got {actual}")


class ResultLayoutError(ResultsError):
    """A directory is not laid out as a job result (``stdout``, ``stderr``,
    ``exitCode``, ``outputs/``).

    ``path`` is the directory (or the entry in it) concerned and ``reason``
    says what is wrong.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path!r} is not a valid job result: {reason}")


class UnsafeResultError(ResultsError):
    """A result directory or archive holds something lilypad refuses to store
    or extract: a special file, a hard link, a symbolic link that escapes, an
    absolute or ``..`` path, ...

    ``path`` is the file system path or archive member name concerned and
    ``reason`` says what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"unsafe result entry {_shorten(path, 120)!r}: {reason}")


class ResultTooLargeError(ResultsError):
    """A result is over a size limit.

    ``limit`` is the limit, ``unit`` what it counts (``bytes`` or ``files``)
    and ``path`` the result (directory or archive) concerned, if known.
    """

    def __init__(self, limit: int, unit: str = "bytes", path: str = "") -> None:
        self.limit = limit
        self.unit = unit
        self.path = path
        where = f" {path!r}" if path else ""
        super().__init__(f"result{where} is over the limit of {limit} {unit}")


class ResultArchiveError(ResultsError):
    """A result archive cannot be read or extracted: not gzip, a corrupt tar,
    an existing destination, ... ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"cannot unpack the result archive: {reason}")


# --------------------------------------------------------------------------
# Protocol: contracts, deployments and accounts (lilypad.protocol)
# --------------------------------------------------------------------------


class ProtocolError(LilypadError):
    """Base class of errors about the on-chain protocol."""


class DeploymentNotFoundError(ProtocolError):
    """No deployments file for a network. ``path`` is where it was looked for."""

    def __init__(self, path: object) -> None:
        self.path = path
        super().__init__(
            f"no deployments file at {path}: deploy first with "
            "`ape run deploy --network ECOSYSTEM:NETWORK:PROVIDER`"
        )


class DeploymentError(ProtocolError):
    """A deployed system is not fully wired. ``problems`` lists what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("deployment is not usable: " + "; ".join(self.problems))


class InvalidPrivateKeyError(ProtocolError):
    """A private key could not be parsed. ``source`` names where it came from
    (never the key itself)."""

    def __init__(self, source: str) -> None:
        self.source = source
        super().__init__(f"{source} is not a valid private key (expected 32 bytes of hex)")


class NoAccountError(ProtocolError):
    """No signing account was given for a non-local network."""

    def __init__(self) -> None:
        super().__init__("no account: pass --account ALIAS (an ape account) or set WEB3_PRIVATE_KEY")


class AccountAliasError(ProtocolError):
    """The ape account ``alias`` cannot be used to sign: ``reason`` says why."""

    def __init__(self, alias: str, reason: str) -> None:
        self.alias = alias
        self.reason = reason
        super().__init__(f"ape account {_shorten(alias)!r}: {reason}")


class SigningRefusedError(ProtocolError):
    """The account ``address`` declined to sign a message (e.g. a locked
    keyfile account, or a signature refused at its prompt)."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"account {address} did not sign the message (is it unlocked?)")


# --------------------------------------------------------------------------
# Executor: running modules in Docker containers (lilypad.executor)
# --------------------------------------------------------------------------


class ExecutorError(LilypadError):
    """Base class of errors about running a module's container."""


class DockerUnavailableError(ExecutorError):
    """The Docker engine does not answer. ``reason`` is what the client said."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"the Docker engine is not reachable ({_shorten(reason, 120)}); "
            "run `make setup` (it installs docker.io and starts dockerd)"
        )


class ImageNotAvailableError(ExecutorError):
    """A module's image is neither in the local engine nor buildable here.

    ``image`` is the spec's image reference and ``reason`` says what was tried.
    """

    def __init__(self, image: str, reason: str) -> None:
        self.image = image
        self.reason = reason
        super().__init__(f"image {image!r} is not available: {reason}")


class ImageBuildError(ExecutorError):
    """``docker build`` of a module's ``Dockerfile`` failed.

    ``tag`` is the tag being built, ``context`` the module directory, ``reason``
    the builder's error and ``log`` the last lines of the build output.
    """

    def __init__(self, tag: str, context: str, reason: str, log: str = "") -> None:
        self.tag = tag
        self.context = context
        self.reason = reason
        self.log = log
        detail = f"building {tag} from {context}/Dockerfile failed: {reason}"
        if log:
            detail += "\n" + log
        super().__init__(detail)


class ContainerError(ExecutorError):
    """A module's container could not be created or started (or vanished).

    ``image`` is the image it was to run and ``reason`` the engine's error.
    """

    def __init__(self, image: str, reason: str) -> None:
        self.image = image
        self.reason = reason
        super().__init__(f"cannot run a container of {image}: {reason}")


class GPUUnavailableError(ExecutorError):
    """A module needs GPUs this machine does not have; refused before anything starts.

    ``required`` and ``available`` are GPU counts; ``reason`` says what is missing.
    """

    def __init__(self, required: int, available: int, reason: str) -> None:
        self.required = required
        self.available = available
        self.reason = reason
        super().__init__(f"the module needs {required} GPU(s), {available} available: {reason}")


class OutputTooLargeError(ExecutorError):
    """A job's result went over a cap; the partial result was deleted.

    ``what`` is the unit (``"bytes"`` or ``"files"``), ``size`` how much was
    found (at least) and ``limit`` the cap.
    """

    def __init__(self, what: str, size: int, limit: int) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(
            f"job output too large: at least {size} {what} > limit {limit} {what} "
            "(outputs/ + stdout + stderr); the result was discarded"
        )


class WorkDirError(ExecutorError):
    """A directory given to the executor is unusable. ``path`` and ``reason`` say why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class BacalhauError(ExecutorError):
    """Base class of errors about running jobs on a Bacalhau cluster (``--executor bacalhau``)."""


class BacalhauUnavailableError(BacalhauError):
    """The Bacalhau API does not answer (or answers an error). ``url`` and ``reason`` say where and why."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"the Bacalhau API at {url} is not usable: {_shorten(reason, 300)} "
                         "(start a cluster: `lilypad devnet up --executor bacalhau`, or check --bacalhau-api)")


class BacalhauJobError(BacalhauError):
    """A Bacalhau job failed, was stopped, or its result is unusable. ``job_id`` and ``reason`` say which and why."""

    def __init__(self, job_id: str, reason: str) -> None:
        self.job_id = job_id
        self.reason = reason
        super().__init__(f"Bacalhau job {job_id}: {_shorten(reason, 500)}")


# --------------------------------------------------------------------------
# Solver: signed offers (lilypad.protocol.offers, .signing), matching and the client (lilypad.solver, lilypad.client)
# --------------------------------------------------------------------------


class SolverError(LilypadError):
    """Base class of errors about the solver: offers and matching."""


class OfferError(SolverError):
    """Base class of the reasons an offer is refused. ``kind`` is ``"resource"``
    or ``"job"`` and ``signer`` the address the offer names as its author."""

    def __init__(self, kind: str, signer: str, reason: str) -> None:
        self.kind = kind
        self.signer = signer
        self.reason = reason
        super().__init__(f"{kind} offer from {signer} refused: {reason}")


class OfferSignatureError(OfferError):
    """An offer's signature is not its author's: a wrong key, a tampered field
    or a malformed signature. ``recovered`` is the address the signature
    recovers to over the offer as received (``None`` when none can be recovered)."""

    def __init__(self, kind: str, signer: str, recovered: str | None, reason: str = "") -> None:
        self.recovered = recovered
        detail = reason or (
            f"signed by {recovered}, not by its author (wrong key or tampered offer)"
            if recovered
            else "the signature is malformed"
        )
        super().__init__(kind, signer, detail)


class OfferReplayError(OfferError):
    """An offer's nonce was already used by the same signer (a replayed or
    re-used offer). ``nonce`` is the nonce, as bytes."""

    def __init__(self, kind: str, signer: str, nonce: bytes) -> None:
        self.nonce = nonce
        super().__init__(kind, signer, f"nonce 0x{nonce.hex()} was already used")


class OfferExpiredError(OfferError):
    """An offer is no longer valid: created too long ago, or past its
    ``expires_at``. ``deadline`` is when it stopped being valid and ``now`` the
    time it was checked at (Unix seconds)."""

    def __init__(self, kind: str, signer: str, deadline: int, now: int, reason: str = "") -> None:
        self.deadline = deadline
        self.now = now
        detail = reason or "expired"
        super().__init__(kind, signer, f"{detail} (valid until {deadline}, now {now})")


class OfferFromFutureError(OfferError):
    """An offer's ``created_at`` is further ahead of the solver's clock than the
    allowed ``skew`` (seconds)."""

    def __init__(self, kind: str, signer: str, created_at: int, now: int, skew: int) -> None:
        self.created_at = created_at
        self.now = now
        self.skew = skew
        super().__init__(
            kind, signer, f"created at {created_at}, more than {skew} s after now ({now}); check the clock"
        )


class SolverStoreError(SolverError):
    """The solver's database cannot be used. ``path`` is the database file and
    ``reason`` says why."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"solver database {path}: {reason}")


class OfferNotFoundError(SolverError):
    """No ``kind`` (``"resource"`` or ``"job"``) offer with id ``offer_id``."""

    def __init__(self, kind: str, offer_id: str) -> None:
        self.kind = kind
        self.offer_id = offer_id
        super().__init__(f"no {kind} offer {_shorten(offer_id, 80)}")


class OfferStateError(SolverError):
    """An offer is not in a state that allows ``action`` (e.g. cancelling a
    matched job offer). ``state`` is the offer's state."""

    def __init__(self, kind: str, offer_id: str, state: str, action: str) -> None:
        self.kind = kind
        self.offer_id = offer_id
        self.state = state
        self.action = action
        super().__init__(f"cannot {action} {kind} offer {_shorten(offer_id, 80)}: it is {state}")


class DealNotFoundError(SolverError):
    """The solver knows no deal ``deal_id``."""

    def __init__(self, deal_id: str) -> None:
        self.deal_id = deal_id
        super().__init__(f"no deal {_shorten(deal_id, 80)}")


class OfferKindError(SolverError):
    """An offer was posted where the other kind is taken (a job offer to the
    resource offers). ``expected`` is the kind taken there, ``actual`` the offer's."""

    def __init__(self, expected: str, actual: str) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(f"this endpoint takes {expected} offers, not a {actual} offer")


class UploadSignerError(SolverError):
    """An upload is not signed by the one party that may make it: the deal's
    provider for a result (``upload`` is ``"result"``), the job creator for a
    job offer's input files (``"inputs"``). ``signer`` is who signed it
    (``None``: the signature is malformed), ``allowed`` who may."""

    def __init__(self, upload: str, signer: str | None, allowed: str) -> None:
        self.upload = upload
        self.signer = signer
        self.allowed = allowed
        may = (f"only the deal's provider {allowed} may upload" if upload == "result"
               else f"only the job creator {allowed} may upload its input files")
        super().__init__(f"the upload is signed by {signer or 'nobody (malformed signature)'}; {may}")


class InputsClosedError(SolverError):
    """Job offer ``offer_id`` takes no more input files: its ``state`` is neither
    open nor matched (it was cancelled or expired)."""

    def __init__(self, offer_id: str, state: str) -> None:
        self.offer_id = offer_id
        self.state = state
        super().__init__(f"job offer {offer_id} is {state}")


class InputsNotFoundError(SolverError):
    """No input files to take or serve: the solver takes none (``offer_id`` is
    ``None``), job offer ``offer_id`` has none (``cid`` is ``None``), or its
    input files ``cid`` were not uploaded yet."""

    def __init__(self, offer_id: str | None = None, cid: str | None = None) -> None:
        self.offer_id = offer_id
        self.cid = cid
        if offer_id is None:
            super().__init__("this solver takes no input files")
        elif cid is None:
            super().__init__(f"job offer {offer_id} has no input files")
        else:
            super().__init__(f"the input files {cid} were not uploaded yet")


class ResultNotUploadedError(SolverError):
    """No result was uploaded to the solver for deal ``deal_id``."""

    def __init__(self, deal_id: str) -> None:
        self.deal_id = deal_id
        super().__init__(f"no result was uploaded for deal {deal_id}")


class ResultGoneError(SolverError):
    """The result of deal ``deal_id`` was deleted: the solver keeps results
    ``kept_s`` seconds (its download timeout) after their deal ends."""

    def __init__(self, deal_id: str, kept_s: float) -> None:
        self.deal_id = deal_id
        self.kept_s = kept_s
        super().__init__(f"the result of deal {deal_id} was deleted: results are kept {kept_s:g} s after their "
                         f"deal ends")


class ResultNotOnChainError(SolverError):
    """No result CID is recorded on-chain for deal ``deal_id`` yet, so its
    uploaded result is not served."""

    def __init__(self, deal_id: str) -> None:
        self.deal_id = deal_id
        super().__init__(f"no result is recorded on-chain for deal {deal_id} yet")


class OnChainResultMismatchError(SolverError):
    """The result uploaded for deal ``deal_id`` (CID ``uploaded``) is not the one
    recorded on-chain (``onchain``), so it is not served."""

    def __init__(self, deal_id: str, onchain: str, uploaded: str) -> None:
        self.deal_id = deal_id
        self.onchain = onchain
        self.uploaded = uploaded
        super().__init__(f"the uploaded result {uploaded} is not the one recorded on-chain ({onchain})")


class SolverUnavailableError(SolverError):
    """The solver at ``url`` could not be reached (or kept answering 5xx) after
    ``attempts`` tries; ``reason`` is the last failure."""

    def __init__(self, url: str, reason: str, attempts: int) -> None:
        self.url = url
        self.reason = reason
        self.attempts = attempts
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        super().__init__(f"the solver at {url} is unavailable{tries}: {_shorten(reason, 200)}")


class SolverRequestError(SolverError):
    """The solver refused a request. ``status`` is the HTTP status, ``code``
    the solver's error code (``None`` if it gave none) and ``detail`` its
    explanation; ``method`` and ``url`` name the request."""

    def __init__(self, method: str, url: str, status: int, detail: str, code: str | None = None) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.detail = detail
        self.code = code
        label = f"{status} {code}" if code else str(status)
        super().__init__(f"{method} {url} failed ({label}): {_shorten(detail, 300)}")


# --------------------------------------------------------------------------
# Devnet: local networks of real processes (lilypad.devnet)
# --------------------------------------------------------------------------


class DevnetError(LilypadError):
    """A local network component could not be started or reached. ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


# --------------------------------------------------------------------------
# Chain: contract wrappers, connections, event polling, transactions (lilypad.chain)
# --------------------------------------------------------------------------


class ChainError(LilypadError):
    """Base class of errors about talking to the deployed contracts."""


class ChainConnectionError(ChainError):
    """A network choice cannot be used or its node cannot be reached.

    ``network_choice`` is the choice as given (``ecosystem:network:provider``)
    and ``reason`` says what went wrong.
    """

    def __init__(self, network_choice: str, reason: str) -> None:
        self.network_choice = network_choice
        self.reason = reason
        super().__init__(f"cannot connect to {network_choice!r}: {reason}")


class DeploymentMismatchError(ChainError):
    """The chain a node serves is not the one a deployments file describes.

    ``path`` is the deployments file and ``problems`` lists what does not
    match (chain id, contracts without code).
    """

    def __init__(self, path: object, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(
            f"the connected chain does not match {path}: " + "; ".join(self.problems)
            + " (wrong RPC endpoint, or a local chain restarted since deploying: redeploy)"
        )


class CursorAheadOfChainError(ChainError):
    """An event cursor points past the chain's head: the chain was reset or
    re-organised below blocks already handled.

    ``name`` is the cursor's name, ``block`` the last block it handled and
    ``head`` the chain's current head.
    """

    def __init__(self, name: str, block: int, head: int) -> None:
        self.name = name
        self.block = block
        self.head = head
        super().__init__(
            f"event cursor {name!r} has handled block {block} but the chain's head is {head}: "
            "the chain was reset (or re-organised); delete the cursor (or its database) "
            "to start over on the new chain"
        )


class TransactionRetriesExhaustedError(ChainError):
    """A call kept failing with transient RPC errors.

    ``what`` names the call, ``attempts`` is how many times it was tried and
    ``last`` is the last error (also the ``__cause__``).
    """

    def __init__(self, what: str, attempts: int, last: BaseException) -> None:
        self.what = what
        self.attempts = attempts
        self.last = last
        super().__init__(
            f"{what} failed {attempts} times with transient errors; last: "
            f"{type(last).__name__}: {_shorten(str(last), 200)}"
        )


# --------------------------------------------------------------------------
# Resource provider and mediator daemons (lilypad.provider, lilypad.mediator)
# --------------------------------------------------------------------------


class ServiceError(LilypadError):
    """A resource provider or mediator daemon could not do its work."""


class ServiceConfigError(ServiceError):
    """A daemon was configured wrongly: ``option`` names the setting, ``reason`` says why."""

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        self.reason = reason
        super().__init__(f"{option}: {reason}")


class SolverAddressUnknownError(ServiceError):
    """No solver address was given and the solver at ``url`` does not report one."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"the solver at {url} does not report its address (no 'solver' in /api/v1/health); "
            "pass --solver-address or set LILYPAD_SOLVER_ADDRESS"
        )


class MediatorStakeError(ServiceError):
    """The mediator ``mediator`` cannot stake ``wanted`` LP base units in the registry: ``reason``."""

    def __init__(self, mediator: str, wanted: int, reason: str) -> None:
        self.mediator = mediator
        self.wanted = wanted
        self.reason = reason
        super().__init__(f"mediator {mediator} cannot stake {wanted} LP base units: {reason}")


class SolverDomainMismatchError(SolverError):
    """The solver signs offers for chain ``solver_chain_id`` / controller
    ``solver_controller``, not for the deployment in use (``chain_id`` /
    ``controller``): an offer signed for it could be replayed there."""

    def __init__(self, solver_chain_id: int, solver_controller: str, chain_id: int, controller: str) -> None:
        self.solver_chain_id = solver_chain_id
        self.solver_controller = solver_controller
        self.chain_id = chain_id
        self.controller = controller
        super().__init__(
            f"the solver signs for chain {solver_chain_id} / controller {solver_controller}, not this "
            f"deployment's ({chain_id} / {controller})"
        )


# --------------------------------------------------------------------------
# Job creator: lilypad run, status and fetch (lilypad.jobcreator)
# --------------------------------------------------------------------------


class JobCreatorError(LilypadError):
    """A job could not be run, followed or fetched."""


class NoMatchError(JobCreatorError):
    """No resource provider took job offer ``offer_id``; ``state`` is the offer's
    final state (``expired``, ``cancelled``). Nothing was escrowed."""

    def __init__(self, offer_id: str, state: str) -> None:
        self.offer_id = offer_id
        self.state = state
        super().__init__(
            f"no resource provider matched job offer {_shorten(offer_id, 80)} (the offer is {state}); "
            "nothing was escrowed"
        )


class DealTermsError(JobCreatorError):
    """The deal the solver made for job offer ``offer_id`` is not what the offer
    asked for (``problems``); it was not agreed to."""

    def __init__(self, offer_id: str, problems: list[str]) -> None:
        self.offer_id = offer_id
        self.problems = list(problems)
        super().__init__(
            f"the solver's deal for job offer {_shorten(offer_id, 80)} does not match the offer, "
            "so it was not agreed to: " + "; ".join(self.problems)
        )


class DealBindingError(LilypadError):
    """The job the solver shows for deal ``deal_id`` is not the one the deal is
    bound to (``problems``: its nonce does not commit to the signed job offer,
    or the job differs from it); nobody should run or judge it."""

    def __init__(self, deal_id: str, problems: list[str]) -> None:
        self.deal_id = deal_id
        self.problems = list(problems)
        super().__init__(f"deal {_shorten(deal_id, 80)} is not bound to the job the solver shows: "
                         + "; ".join(self.problems))


class JobTimeoutError(JobCreatorError):
    """A run waited longer than ``timeout`` seconds at ``stage``; ``advice`` says
    what happens to the deal now."""

    def __init__(self, stage: str, timeout: float, advice: str) -> None:
        self.stage = stage
        self.timeout = timeout
        self.advice = advice
        super().__init__(f"gave up after {timeout:g} s waiting at stage {stage!r}: {advice}")


class JobInterruptedError(JobCreatorError):
    """The user interrupted a run at ``stage``; ``message`` says what was done
    about it (offer cancelled, or the deal left to its on-chain timeouts)."""

    def __init__(self, stage: str, message: str) -> None:
        self.stage = stage
        self.message = message
        super().__init__(f"interrupted at stage {stage!r}: {message}")


class InputFilesError(JobCreatorError):
    """The ``--inputs-path`` files cannot be sent: ``reason`` says why."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"input files at {path}: {reason}")


# --------------------------------------------------------------------------
# The bridge: smart-contract jobs (lilypad.jobcreator.bridge)
# --------------------------------------------------------------------------


class BridgeError(LilypadError):
    """The bridge daemon could not do its work."""


class BridgeFaultError(BridgeError):
    """A test-only fault was configured wrongly: ``value`` is not a known crash point."""

    def __init__(self, value: str, known: tuple[str, ...]) -> None:
        self.value = value
        self.known = known
        super().__init__(f"unknown bridge fault {value!r} (known: {', '.join(known)})")


# --------------------------------------------------------------------------
# Go-built programs: kubo's ipfs, bacalhau (lilypad.toolchain)
# --------------------------------------------------------------------------


class GoToolMissingError(LilypadError):
    """The Go program ``name`` is not built at ``path``; ``make <make_target>`` builds it."""

    def __init__(self, name: str, path: str, make_target: str) -> None:
        self.name = name
        self.path = path
        self.make_target = make_target
        super().__init__(f"{name} is not built at {path}: run `make {make_target}`")


# --------------------------------------------------------------------------
# IPFS: kubo nodes, their RPC API and gateways (lilypad.ipfs)
# --------------------------------------------------------------------------


class IpfsError(LilypadError):
    """Base class of IPFS failures."""


class IpfsUnavailableError(IpfsError):
    """The kubo node (RPC API) or gateway at ``url`` cannot be reached or did not start: ``reason``."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"IPFS node {url} is unavailable: {reason}")


class IpfsRequestError(IpfsError):
    """The kubo node or gateway at ``url`` refused or failed ``what``: ``detail``."""

    def __init__(self, url: str, what: str, detail: str) -> None:
        self.url = url
        self.what = what
        self.detail = detail
        super().__init__(f"IPFS {what} at {url} failed: {_shorten(detail, 300)}")


class IpfsCIDMismatchError(IpfsError):
    """kubo gave ``path`` the CID ``kubo_cid`` where lilypad computed ``expected_cid``."""

    def __init__(self, path: str, expected_cid: str, kubo_cid: str) -> None:
        self.path = path
        self.expected_cid = expected_cid
        self.kubo_cid = kubo_cid
        super().__init__(f"kubo added {path} as {kubo_cid}, but its CID is {expected_cid}: not using it")
