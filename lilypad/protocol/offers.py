"""Offers: what resource providers offer and what job creators ask for.

Two frozen pydantic models, each signed by its author (see
:mod:`lilypad.protocol.signing`) and matched by :mod:`lilypad.solver.matching`:

* :class:`ResourceOffer` - a resource provider's machine (per slot), how many
  jobs it runs at once (``slots``), its prices, the mediators it trusts, the
  modules it agrees to run and the deal timeouts it accepts.
* :class:`JobOffer` - a job creator's module (resolved to a commit), inputs,
  the machine it needs, the most it pays, the mediators it trusts, an optional
  target provider and the deal timeouts it proposes.

Money is in LP base units (18 decimals: :data:`LP` is one token). The
defaults are the original's: instruction price 1 LP, payment collateral 2 LP,
results-collateral multiple 2, mediation fee 1 LP; providers default to
``FixedPrice`` and jobs to ``MarketPrice``.

Values are kept in one canonical form, because that form is what gets signed:
addresses are checksummed, ``mediators`` and ``modules`` are sorted and
without duplicates (an offer listing a mediator twice is invalid: on-chain a
deal naming one twice is refused, as it would weight the mediator draw).
Every offer is identified by its :attr:`~ResourceOffer.key`,
``(author address, nonce)``; replay protection makes it unique.

Offers are validated against the controller's rules for a deal
(``LilypadController._validate``): non-zero timeouts of at most 30 days, an
instruction price of at least one base unit, payment collateral of at least
one instruction, a results-collateral multiple in 1..100, and escrow amounts
that fit a ``uint96`` - so a match never yields a deal the chain refuses.

What an offer accepts is decided by pure rules kept with the offers, because
the solver's matcher and the provider (checking a deal against its own offer)
both apply them: :func:`resources_suffice`, :func:`price_acceptable`,
:func:`timeouts_acceptable`, :func:`amounts_fit`, and the module allowlist of
:mod:`lilypad.protocol.allowlist`.
"""

from __future__ import annotations

import enum
import re
import secrets
import time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lilypad.exceptions import InputError, InvalidCIDError, ModuleRefError
from lilypad.modules.inputs import validate_inputs
from lilypad.modules.reference import parse_module_ref
from lilypad.protocol.cid import validate_cid
from lilypad.protocol.deal import MAX_CONSORTIUM, DealPricing, DealTimeouts
from lilypad.protocol.fields import Address, HexBytes32, parse_address

__all__ = [
    "DEFAULT_JOB_PRICING",
    "DEFAULT_PROVIDER_SPEC",
    "DEFAULT_RESOURCE_OFFER_TTL",
    "DEFAULT_RESOURCE_PRICING",
    "DEFAULT_TIMEOUTS",
    "JobModule",
    "JobOffer",
    "LP",
    "LP_DECIMALS",
    "MAX_DEAL_MEDIATORS",
    "MAX_MODULE_ENTRIES",
    "MAX_OFFER_MEDIATORS",
    "MAX_RESULTS_COLLATERAL_MULTIPLE",
    "MAX_TIMEOUT",
    "Offer",
    "OfferKey",
    "PricingMode",
    "ResourceOffer",
    "ResourceSpec",
    "amounts_fit",
    "lp",
    "price_acceptable",
    "resources_suffice",
    "timeouts_acceptable",
]

UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
UINT96_MAX = 2**96 - 1

#: Decimals of the LP token; one LP is ``10**18`` base units.
LP_DECIMALS = 18
LP = 10**LP_DECIMALS

#: The controller's limits (``LilypadController``).
MAX_DEAL_MEDIATORS = 16
MAX_TIMEOUT = 30 * 24 * 3600
MAX_RESULTS_COLLATERAL_MULTIPLE = 100

#: How many mediators one offer may list (a deal takes at most 16 of the shared ones).
MAX_OFFER_MEDIATORS = 64
#: How many module allowlist entries one resource offer may list.
MAX_MODULE_ENTRIES = 256
#: How long a resource offer stays open when ``expires_at`` is not given (seconds).
DEFAULT_RESOURCE_OFFER_TTL = 3600

_COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_MAX_REPO_CHARS = 1024


def lp(tokens: int | str) -> int:
    """``tokens`` LP in base units: ``lp(2) == 2 * 10**18``; ``lp("0.5")`` works too."""
    value = Decimal(str(tokens)) * LP
    if value != value.to_integral_value():
        raise ValueError(f"{tokens} LP is not a whole number of base units")
    return int(value)


# --------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------


#: ``(author address, nonce)``: the offer's identity (see the module docstring).
OfferKey = tuple[str, bytes]


class PricingMode(str, enum.Enum):
    """How an offer prices a deal; the original's names."""

    FIXED_PRICE = "FixedPrice"
    MARKET_PRICE = "MarketPrice"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_pricing(pricing: DealPricing) -> DealPricing:
    if pricing.instruction_price < 1:
        raise ValueError("instruction price must be at least 1 base unit")
    if pricing.payment_collateral < pricing.instruction_price:
        raise ValueError("payment collateral must cover at least one instruction")
    if not 1 <= pricing.results_collateral_multiple <= MAX_RESULTS_COLLATERAL_MULTIPLE:
        raise ValueError(f"results-collateral multiple must be in 1..{MAX_RESULTS_COLLATERAL_MULTIPLE}")
    if pricing.results_collateral_multiple * pricing.payment_collateral > UINT96_MAX:
        raise ValueError("results-collateral multiple x payment collateral overflows uint96")
    return pricing


def _check_timeouts(timeouts: DealTimeouts) -> DealTimeouts:
    for name in ("agree", "submit_results", "judge_results", "mediate_results"):
        if not 1 <= getattr(timeouts, name) <= MAX_TIMEOUT:
            raise ValueError(f"timeout {name} must be 1 s to 30 days")
    return timeouts


def amounts_fit(pricing: DealPricing, timeouts: DealTimeouts) -> bool:
    """Whether a deal with these terms keeps every escrow within ``uint96``
    (the controller refuses it otherwise)."""
    creator = pricing.payment_collateral + timeouts.judge_results_collateral + pricing.mediation_fee
    return creator <= UINT96_MAX and pricing.results_collateral_multiple * pricing.payment_collateral <= UINT96_MAX


def _sorted_addresses(values: Any) -> tuple[str, ...]:
    if not isinstance(values, (list, tuple, set, frozenset)):  # null or a string: a clear 400, not a 500
        raise ValueError("expected a list of addresses")
    unique = {parse_address(v) for v in values}
    return tuple(sorted(unique, key=str.lower))


#: Pricing defaults (the original's, in LP base units).
DEFAULT_RESOURCE_PRICING = DealPricing(
    instruction_price=lp(1), payment_collateral=lp(2), results_collateral_multiple=2, mediation_fee=lp(1)
)
#: A job's default price limits equal the providers' default prices.
DEFAULT_JOB_PRICING = DEFAULT_RESOURCE_PRICING
DEFAULT_TIMEOUTS = DealTimeouts()


# --------------------------------------------------------------------------
# Machine and module
# --------------------------------------------------------------------------


class ResourceSpec(_Frozen):
    """A machine: what a provider offers per slot, or what a job needs.

    ``cpu`` in milli-cores, ``gpu`` a count, ``vram`` MB per GPU (at most one
    entry per GPU; only the largest matters to matching), ``ram`` and ``disk``
    in MB.
    """

    cpu: int = Field(0, ge=0, le=UINT64_MAX)
    gpu: int = Field(0, ge=0, le=UINT32_MAX)
    vram: tuple[Annotated[int, Field(ge=0, le=UINT64_MAX)], ...] = ()
    ram: int = Field(0, ge=0, le=UINT64_MAX)
    disk: int = Field(0, ge=0, le=UINT64_MAX)

    @model_validator(mode="after")
    def _vram_per_gpu(self) -> ResourceSpec:
        if len(self.vram) > self.gpu:
            raise ValueError(f"{len(self.vram)} VRAM entries for {self.gpu} GPU(s)")
        return self

    @property
    def max_vram(self) -> int:
        """The largest per-GPU VRAM in MB (0 when none is listed)."""
        return max(self.vram, default=0)

    @classmethod
    def from_machine(cls, machine: Any) -> ResourceSpec:
        """From a module spec's ``machine`` (:class:`lilypad.modules.spec.MachineSpec`):
        its largest VRAM requirement is kept as the one entry that matters."""
        gpu = int(machine.gpu or 0)
        vram = int(getattr(machine, "max_vram", 0) or 0)
        return cls(
            cpu=int(machine.cpu or 0),
            gpu=gpu,
            vram=(vram,) if gpu and vram else (),
            ram=int(machine.ram or 0),
            disk=int(machine.disk or 0),
        )


#: What a provider offers when nothing else is said (the CLI's defaults).
DEFAULT_PROVIDER_SPEC = ResourceSpec(cpu=1000, ram=1024)


class JobModule(_Frozen):
    """A module as the job creator resolved it: ``ref`` as typed (``cowsay:v0.0.1``,
    ``github.com/foo/bar:v1``), ``repo`` the repository it resolved to (a URL
    or ``builtin:<name>``) and ``commit`` the full commit hash (lower-case hex).

    Module allowlists judge ``ref`` (see :func:`lilypad.protocol.allowlist.module_allowed`).
    A local path cannot be offered to a market: nobody else can fetch it.
    """

    ref: str
    repo: str = Field(min_length=1, max_length=_MAX_REPO_CHARS)
    commit: str

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str) -> str:
        try:
            parsed = parse_module_ref(value)
        except ModuleRefError as exc:
            raise ValueError(str(exc)) from None
        if parsed.kind == "path":
            raise ValueError("a local path cannot be offered to the market; use a git URL or a module name")
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
            raise ValueError("the repository must not contain spaces or control characters")
        return value

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str) -> str:
        if _COMMIT_RE.fullmatch(value) is None:
            raise ValueError("the commit must be a full hash in lower-case hex (40 or 64 digits)")
        return value


# --------------------------------------------------------------------------
# Offers
# --------------------------------------------------------------------------


def _now() -> int:
    return int(time.time())


def _nonce() -> bytes:
    return secrets.token_bytes(32)


class _Offer(_Frozen):
    solver: Address
    spec: ResourceSpec
    pricing_mode: PricingMode
    pricing: DealPricing
    mediators: tuple[str, ...] = Field(min_length=1, max_length=MAX_OFFER_MEDIATORS)
    timeouts: DealTimeouts = DEFAULT_TIMEOUTS
    created_at: int = Field(default_factory=_now, ge=0, le=UINT64_MAX)
    nonce: HexBytes32 = Field(default_factory=_nonce)

    @field_validator("mediators", mode="before")
    @classmethod
    def _mediators(cls, value: Any) -> tuple[str, ...]:
        unique = _sorted_addresses(value)
        if len(unique) != len(value):
            raise ValueError("a mediator is listed twice")
        return unique

    @field_validator("pricing")
    @classmethod
    def _pricing(cls, value: DealPricing) -> DealPricing:
        return _check_pricing(value)

    @field_validator("timeouts")
    @classmethod
    def _timeouts(cls, value: DealTimeouts) -> DealTimeouts:
        return _check_timeouts(value)

    @model_validator(mode="after")
    def _amounts(self) -> _Offer:
        if not amounts_fit(self.pricing, self.timeouts):
            raise ValueError("the escrow amounts of these terms overflow uint96")
        return self

    @property
    def signer(self) -> str:
        """The address that must sign this offer."""
        raise NotImplementedError

    @property
    def key(self) -> OfferKey:
        """``(signer, nonce)``: unique per offer (nonces are never reused)."""
        return (self.signer, self.nonce)


class ResourceOffer(_Offer):
    """A resource provider's standing offer.

    ``spec`` is what each of its ``slots`` concurrent jobs gets; ``pricing`` is
    what it charges (the deal is struck at these prices); ``modules`` is its
    module allowlist (empty: any module); ``timeouts`` are the limits of the
    deal timeouts it accepts (see :func:`timeouts_acceptable`);
    ``min_consortium_size`` is the smallest mediator panel it accepts for a deal
    (a job asking for a smaller one does not match; the provider refuses such a
    deal too: one bribed mediator could otherwise reject its honest work);
    it is open from ``created_at`` until ``expires_at`` (Unix seconds).
    """

    kind: Literal["resource"] = "resource"
    resource_provider: Address
    spec: ResourceSpec = DEFAULT_PROVIDER_SPEC
    slots: int = Field(1, ge=1, le=UINT32_MAX)
    pricing_mode: PricingMode = PricingMode.FIXED_PRICE
    pricing: DealPricing = DEFAULT_RESOURCE_PRICING
    modules: tuple[str, ...] = Field((), max_length=MAX_MODULE_ENTRIES)
    expires_at: int = Field(ge=1, le=UINT64_MAX)
    min_consortium_size: int = Field(1, ge=1, le=MAX_CONSORTIUM)

    @model_validator(mode="before")
    @classmethod
    def _default_expiry(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("expires_at") is None:
            data = dict(data)
            created = data.get("created_at")
            if created is None:
                created = data["created_at"] = _now()
            if isinstance(created, int):
                data["expires_at"] = created + DEFAULT_RESOURCE_OFFER_TTL
        return data

    @field_validator("modules", mode="before")
    @classmethod
    def _modules(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)):  # null or a string: a clear 400, not a TypeError (500)
            raise ValueError("expected a list of module references")
        entries = set()
        for entry in value:
            if not isinstance(entry, str):
                raise ValueError("module entries must be strings")
            try:
                parse_module_ref(entry)
            except ModuleRefError as exc:
                raise ValueError(str(exc)) from None
            entries.add(entry)
        return tuple(sorted(entries))

    @model_validator(mode="after")
    def _expiry_after_creation(self) -> ResourceOffer:
        if self.expires_at <= self.created_at:
            raise ValueError("expires_at must be after created_at")
        return self

    @property
    def signer(self) -> str:
        return self.resource_provider


class JobOffer(_Offer):
    """A job creator's request to run ``module`` with ``inputs``.

    ``spec`` is the machine the job needs; ``pricing`` holds the job's limits:
    a provider's instruction price, payment collateral and mediation fee must
    not exceed them and its results-collateral multiple must be at least the
    job's (see :func:`price_acceptable`); ``timeouts``
    become the deal's, and so does ``consortium_size`` (the mediator panel's
    size ``k``; a match needs at least ``k`` mediators both sides trust);
    ``target``, when set, is the only provider it may go to;
    ``inputs_cid``, when set, is the UnixFS CID of the job's input files (the
    directory mounted at ``/inputs``), uploaded to the solver for this offer
    (``PUT /job_offers/{id}/inputs``) and verified by whoever runs the job.
    """

    kind: Literal["job"] = "job"
    job_creator: Address
    module: JobModule
    inputs: dict[str, str] = Field(default_factory=dict)
    spec: ResourceSpec = ResourceSpec()
    pricing_mode: PricingMode = PricingMode.MARKET_PRICE
    pricing: DealPricing = DEFAULT_JOB_PRICING
    target: Address | None = None
    inputs_cid: str | None = None
    #: How many mediators judge a checked (or audited) result: 1, or odd up to
    #: 7 (a panel voting by commit-reveal); the deal's ``protocol.consortium_size``.
    consortium_size: int = Field(1, ge=1, le=MAX_CONSORTIUM)
    #: Set on the offer of a smart-contract job (``LilypadOnChainJobCreator``, the offer's job
    #: creator): its id. Such an offer is unsigned (nobody holds the contract's key); whoever
    #: relies on it checks it against the chain
    #: (:func:`lilypad.protocol.contract_jobs.contract_offer_problems`).
    contract_job_id: int | None = Field(None, ge=1, le=2**256 - 1)

    @field_validator("consortium_size")
    @classmethod
    def _odd_panel(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("the mediator panel size must be odd (1, 3, 5 or 7)")
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: dict[str, str]) -> dict[str, str]:
        try:
            return validate_inputs(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("inputs_cid")
    @classmethod
    def _inputs_cid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_cid(value)
        except InvalidCIDError as exc:
            raise ValueError(f"inputs_cid: {exc}") from None

    @model_validator(mode="after")
    def _not_own_target(self) -> JobOffer:
        if self.target is not None and self.target == self.job_creator:
            raise ValueError("a job cannot target its own creator")
        if self.consortium_size > len(self.mediators):
            raise ValueError(f"a panel of {self.consortium_size} mediators needs at least that many trusted "
                             f"mediators, the offer lists {len(self.mediators)}")
        return self

    @property
    def signer(self) -> str:
        return self.job_creator


#: Either kind of offer.
Offer = ResourceOffer | JobOffer


# --------------------------------------------------------------------------
# What an offer accepts (the matcher's rules; the provider checks a deal
# against its own offer with them too)
# --------------------------------------------------------------------------


def resources_suffice(required: ResourceSpec, offered: ResourceSpec) -> bool:
    """Whether ``offered`` has at least the CPU, GPUs, RAM and disk ``required``
    asks for and, when GPUs are required, a GPU with at least the largest VRAM asked."""
    if (
        offered.cpu < required.cpu
        or offered.gpu < required.gpu
        or offered.ram < required.ram
        or offered.disk < required.disk
    ):
        return False
    return required.gpu == 0 or offered.max_vram >= required.max_vram


def price_acceptable(limits: DealPricing, offered: DealPricing) -> bool:
    """Whether a provider's prices ``offered`` are within a job's ``limits``:
    instruction price, payment collateral and mediation fee at most the job's,
    results-collateral multiple (the provider's stake, which protects the job
    creator) at least the job's."""
    return (
        offered.instruction_price <= limits.instruction_price
        and offered.payment_collateral <= limits.payment_collateral
        and offered.mediation_fee <= limits.mediation_fee
        and offered.results_collateral_multiple >= limits.results_collateral_multiple
    )


def timeouts_acceptable(proposed: DealTimeouts, accepted: DealTimeouts) -> bool:
    """Whether a job's ``proposed`` deal timeouts are within what a provider
    ``accepted``: at least its ``submit_results`` window (time to run the job);
    at most its ``agree``, ``judge_results`` and ``mediate_results`` windows
    (its money waits through them) and its ``submit_results_collateral`` (its
    deposit); at least its ``judge_results_collateral`` (the job creator's
    deposit that pays the provider if the job creator never judges)."""
    return (
        proposed.submit_results >= accepted.submit_results
        and proposed.agree <= accepted.agree
        and proposed.judge_results <= accepted.judge_results
        and proposed.mediate_results <= accepted.mediate_results
        and proposed.submit_results_collateral <= accepted.submit_results_collateral
        and proposed.judge_results_collateral >= accepted.judge_results_collateral
    )
