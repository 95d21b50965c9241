"""Matching job offers to resource offers (pure: no I/O, no clock, no chain).

**Rules.** A job offer and a resource offer match when all of these hold
(:func:`pair_acceptable`; each rule is also a pure function of its own, those
the provider applies too in :mod:`lilypad.protocol`):

* both name the same solver; a job with a ``target`` only matches that
  provider's offers - and goes through every other rule too (the original let
  targeted jobs skip them all);
* the job creator is not the provider (the controller refuses such a deal);
* :func:`~lilypad.protocol.offers.resources_suffice`: provider CPU, GPU count, RAM and disk >= the job's,
  and if the job needs GPUs, the provider's largest per-GPU VRAM >= the job's
  largest;
* :func:`~lilypad.protocol.offers.price_acceptable`: the deal is struck at the provider's prices, so
  its instruction price, payment collateral and mediation fee must be at most
  the job's and its results-collateral multiple at least the job's. This holds
  in every pricing mode: the original checked prices only when both offers
  were ``FixedPrice``, so a ``MarketPrice`` job could be charged anything;
* :func:`~lilypad.protocol.offers.timeouts_acceptable`: the job's timeouts (which become the deal's) are
  no worse for the provider than its offer says;
* the deal's escrow amounts fit ``uint96`` (:func:`~lilypad.protocol.offers.amounts_fit`);
* :func:`~lilypad.protocol.allowlist.module_allowed`: the provider's module
  allowlist allows the job's module;
* :func:`shared_mediators`: at least the job's ``consortium_size`` (1 by
  default) mediators are trusted by both and are neither party; the deal's
  mediators are those (sorted, at most 16);
* the job's ``consortium_size`` is at least the offer's ``min_consortium_size``
  (a provider need not let one bribed mediator judge its work).

A resource offer also needs a free slot: ``usage`` maps a provider address to
the deals it has in progress (from any of its offers), and an offer takes a new
deal only while that count is below its ``slots``. With ``now`` given, offers
whose ``expires_at`` has come are skipped.

**Greedy policy** (:meth:`Matcher.match_all`). Jobs are served oldest first
(``created_at``, then creator address, then nonce). Each takes the best offer
that is acceptable and has a free slot at that moment - lowest instruction
price, then mediation fee, then payment collateral, then oldest ``created_at``,
then provider address, then nonce (:func:`offer_order_key`) - in every pricing
mode: the deal is at the provider's prices, so the cheapest acceptable offer is
what any job creator prefers. The match uses one slot at once, so later jobs
see it. Each job is matched at most once per call. It is first come, first
served, not a maximum matching: an older job may take an offer a younger one
also needed. ``match_all`` changes nothing in the matcher: the caller removes
matched job offers and passes the new usage next time.

**Index.** Resource offers are kept per solver in lists sorted by
:func:`offer_order_key`: one of all offers, one per provider (for targeted
jobs), one per trusted mediator and, built on first use, one per *shape* of job
requirements and mediator - the job's (GPU count, VRAM, CPU, RAM, disk) with
each amount rounded down to a power of two - holding only the offers that
trust that mediator and have at least that much. An acceptable offer shares a
mediator with the job, so it is in the list of one of the job's mediators: a
job walks each of its mediators' lists in price order to the first acceptable
offer with a free slot (stopping as soon as the instruction price exceeds its
limit, or the offer is no better than one found in another list) and takes the
best of these. A job trusting only mediators no provider trusts costs nothing.
Offers found full (or expired) during a run are skipped in O(1) amortised
(path-compressed skip pointers), and a job that asks exactly what an earlier
job of the run asked resumes where that one stopped (everything before was
unacceptable or is now full). Matching n jobs costs O(n log n) for sorting
plus, per job and mediator, the offers it must pass over that it cannot use.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from lilypad.protocol.allowlist import compile_allowlist, module_allowed, module_key
from lilypad.protocol.deal import Deal, DealMembers, DealProtocol, DealTimeouts
from lilypad.protocol.offers import (
    MAX_DEAL_MEDIATORS,
    JobOffer,
    OfferKey,
    ResourceOffer,
    amounts_fit,
    price_acceptable,
    resources_suffice,
    timeouts_acceptable,
)

__all__ = [
    "Match",
    "Matcher",
    "MediatorFilter",
    "job_order_key",
    "offer_order_key",
    "pair_acceptable",
    "shared_mediators",
]

_UINT96_MAX = 2**96 - 1
_ORDER = attrgetter("order")


# --------------------------------------------------------------------------
# The rules, as pure functions
# --------------------------------------------------------------------------


def shared_mediators(
    job_mediators: Iterable[str], provider_mediators: Iterable[str], *, exclude: Iterable[str] = ()
) -> tuple[str, ...]:
    """The mediators both trust, minus ``exclude`` (the deal's parties), sorted
    by address and at most :data:`~lilypad.protocol.offers.MAX_DEAL_MEDIATORS`:
    the deal's mediators. Addresses compare case-insensitively; the spelling
    returned is the provider's."""
    wanted = {m.lower() for m in job_mediators} - {e.lower() for e in exclude}
    common = {m.lower(): m for m in provider_mediators if m.lower() in wanted}
    return tuple(common[k] for k in sorted(common))[:MAX_DEAL_MEDIATORS]


def offer_order_key(offer: ResourceOffer) -> tuple[Any, ...]:
    """Preference among acceptable resource offers, best first: cheapest
    (instruction price, mediation fee, payment collateral), then oldest, then
    provider address and nonce (a stable tie-break)."""
    p = offer.pricing
    return (
        p.instruction_price,
        p.mediation_fee,
        p.payment_collateral,
        offer.created_at,
        offer.resource_provider.lower(),
        offer.nonce,
    )


def job_order_key(job: JobOffer) -> tuple[Any, ...]:
    """The order jobs are served in: oldest first, then creator address and nonce."""
    return (job.created_at, job.job_creator.lower(), job.nonce)


def pair_acceptable(job: JobOffer, offer: ResourceOffer) -> bool:
    """Whether ``job`` and ``offer`` match by every rule in the module
    docstring, free slots and expiry aside."""
    if job.solver != offer.solver or job.job_creator == offer.resource_provider:
        return False
    if job.target is not None and job.target != offer.resource_provider:
        return False
    return (
        resources_suffice(job.spec, offer.spec)
        and price_acceptable(job.pricing, offer.pricing)
        and timeouts_acceptable(job.timeouts, offer.timeouts)
        and amounts_fit(offer.pricing, job.timeouts)
        and module_allowed(offer.modules, job.module)
        and job.consortium_size >= offer.min_consortium_size
        and len(shared_mediators(job.mediators, offer.mediators, exclude=(job.job_creator, offer.resource_provider)))
        >= job.consortium_size
    )


# --------------------------------------------------------------------------
# Matches
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """A job offer matched to a resource offer; ``mediators`` are the deal's."""

    job: JobOffer
    offer: ResourceOffer
    mediators: tuple[str, ...]

    def build_deal(self, nonce: bytes, *, settings_version: int = 0) -> Deal:
        """The on-chain terms: the job's solver and creator, the offer's
        provider, the shared mediators, the job's timeouts and the provider's
        prices, the job's mediator panel size, with ``nonce`` (32 bytes) and
        the protocol ``settings_version`` (the controller's current one: the
        first ``agree`` refuses any other)."""
        return Deal(
            members=DealMembers(
                solver=self.job.solver,
                job_creator=self.job.job_creator,
                resource_provider=self.offer.resource_provider,
                mediators=self.mediators,
            ),
            timeouts=self.job.timeouts,
            pricing=self.offer.pricing,
            nonce=nonce,
            protocol=DealProtocol(consortium_size=self.job.consortium_size, settings_version=settings_version),
        )


#: Whether a new deal may name a mediator (lower-case address); see :meth:`Matcher.match_all`.
MediatorFilter = Callable[[str], bool]


def _match(job: JobOffer, offer: ResourceOffer, eligible: MediatorFilter | None = None) -> Match:
    mediators = job.mediators if eligible is None else [m for m in job.mediators if eligible(m.lower())]
    meds = shared_mediators(mediators, offer.mediators, exclude=(job.job_creator, offer.resource_provider))
    return Match(job=job, offer=offer, mediators=meds)


def _eligible_only(job: _Job, eligible: MediatorFilter | None) -> _Job:
    """``job`` trusting only its ``eligible`` mediators (itself when all are, or no filter)."""
    if eligible is None:
        return job
    meds = frozenset(m for m in job.meds if eligible(m))
    if meds == job.meds:
        return job
    copy = _Job.__new__(_Job)
    for name in _Job.__slots__:
        setattr(copy, name, getattr(job, name))
    copy.meds = meds
    copy.sig = (*job.sig[:-2], meds, job.sig[-1])
    return copy


# --------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------


def _floor(value: int) -> int:
    """``value`` rounded down to a power of two (0 stays 0)."""
    return 0 if value <= 0 else 1 << (value.bit_length() - 1)


def _timeouts(t: DealTimeouts) -> tuple[int, ...]:
    return (t.agree, t.submit_results, t.judge_results, t.mediate_results,
            t.submit_results_collateral, t.judge_results_collateral)


class _Res:
    """A resource offer, flattened for the walk."""

    __slots__ = ("offer", "key", "order", "provider", "solver", "slots", "expires_at", "cpu", "gpu", "vram",
                 "ram", "disk", "price", "fee", "collateral", "multiple", "timeouts", "meds", "min_k", "allow")

    def __init__(self, offer: ResourceOffer) -> None:
        spec, pricing = offer.spec, offer.pricing
        self.offer = offer
        self.key = (offer.resource_provider.lower(), offer.nonce)
        self.order = offer_order_key(offer)
        self.provider = offer.resource_provider.lower()
        self.solver = offer.solver.lower()
        self.slots = offer.slots
        self.expires_at = offer.expires_at
        self.cpu, self.gpu, self.vram, self.ram, self.disk = spec.cpu, spec.gpu, spec.max_vram, spec.ram, spec.disk
        self.price, self.fee = pricing.instruction_price, pricing.mediation_fee
        self.collateral, self.multiple = pricing.payment_collateral, pricing.results_collateral_multiple
        self.timeouts = _timeouts(offer.timeouts)
        self.meds = frozenset(m.lower() for m in offer.mediators)
        self.min_k = offer.min_consortium_size
        allow = compile_allowlist(offer.modules)
        self.allow = None if allow.allows_all else allow

    def covers(self, shape: tuple[int, int, int, int, int]) -> bool:
        gpu, vram, cpu, ram, disk = shape
        return (self.gpu >= gpu and (gpu == 0 or self.vram >= vram) and self.cpu >= cpu
                and self.ram >= ram and self.disk >= disk)


class _Job:
    """A job offer, flattened for the walk."""

    __slots__ = ("offer", "key", "order", "creator", "solver", "target", "cpu", "gpu", "vram", "ram", "disk",
                 "shape", "price", "fee", "collateral", "multiple", "timeouts", "deposit", "k", "meds", "module",
                 "sig")

    def __init__(self, offer: JobOffer) -> None:
        spec, pricing = offer.spec, offer.pricing
        self.offer = offer
        self.key = (offer.job_creator.lower(), offer.nonce)
        self.order = job_order_key(offer)
        self.creator = offer.job_creator.lower()
        self.solver = offer.solver.lower()
        self.target = offer.target.lower() if offer.target is not None else None
        self.cpu, self.gpu, self.ram, self.disk = spec.cpu, spec.gpu, spec.ram, spec.disk
        self.vram = spec.max_vram if spec.gpu else 0
        self.shape = (self.gpu, _floor(self.vram), _floor(self.cpu), _floor(self.ram), _floor(self.disk))
        self.price, self.fee = pricing.instruction_price, pricing.mediation_fee
        self.collateral, self.multiple = pricing.payment_collateral, pricing.results_collateral_multiple
        self.timeouts = _timeouts(offer.timeouts)
        self.deposit = offer.timeouts.judge_results_collateral
        self.k = offer.consortium_size
        self.meds = frozenset(m.lower() for m in offer.mediators)
        self.module = module_key(offer.module.ref)
        # Everything the acceptability of an offer depends on (see Matcher._best);
        # the mediators are second to last (see _eligible_only).
        self.sig = (self.solver, self.creator, self.cpu, self.gpu, self.vram, self.ram, self.disk,
                    self.price, self.fee, self.collateral, self.multiple, self.timeouts, self.k, self.meds,
                    self.module)


def _fits(job: _Job, r: _Res) -> bool:
    """:func:`pair_acceptable` on flattened offers, solver and target aside."""
    if not (r.cpu >= job.cpu and r.ram >= job.ram and r.gpu >= job.gpu and r.disk >= job.disk
            and (job.gpu == 0 or r.vram >= job.vram)):
        return False
    if not (r.price <= job.price and r.collateral <= job.collateral and r.fee <= job.fee
            and r.multiple >= job.multiple):
        return False
    if r.provider == job.creator or r.collateral + job.deposit + r.fee > _UINT96_MAX:
        return False
    jt, rt = job.timeouts, r.timeouts
    if not (jt[1] >= rt[1] and jt[0] <= rt[0] and jt[2] <= rt[2] and jt[3] <= rt[3]
            and jt[4] <= rt[4] and jt[5] >= rt[5]):
        return False
    if r.allow is not None and not r.allow.allows_key(*job.module):
        return False
    if job.k < r.min_k:
        return False
    common = job.meds & r.meds
    if len(common) < job.k:
        return False
    if r.provider in common or job.creator in common:
        return len(common - {r.provider, job.creator}) >= job.k
    return True


def _find(skips: dict[int, int], i: int) -> int:
    """The first index >= ``i`` not known to be full (with path compression)."""
    root = skips.get(i)
    if root is None:
        return i
    while (nxt := skips.get(root)) is not None:
        root = nxt
    while i != root:
        nxt = skips[i]
        skips[i] = root
        i = nxt
    return root


def _insert(items: list[_Res], r: _Res) -> None:
    bisect.insort(items, r, key=_ORDER)


def _delete(items: list[_Res], r: _Res) -> None:
    i = bisect.bisect_left(items, r.order, key=_ORDER)
    if i < len(items) and items[i] is r:
        del items[i]


_Shape = tuple[int, int, int, int, int]


class _Book:
    """One solver's resource offers."""

    __slots__ = ("offers", "by_provider", "by_mediator", "shapes", "touched")

    def __init__(self) -> None:
        self.offers: list[_Res] = []
        self.by_provider: dict[str, list[_Res]] = {}
        self.by_mediator: dict[str, list[_Res]] = {}
        # (shape, mediator) -> the offers trusting that mediator with at least that shape.
        self.shapes: dict[tuple[_Shape, str], list[_Res]] = {}
        self.touched: set[tuple[_Shape, str]] = set()

    def add(self, r: _Res) -> None:
        _insert(self.offers, r)
        _insert(self.by_provider.setdefault(r.provider, []), r)
        for m in r.meds:
            _insert(self.by_mediator.setdefault(m, []), r)
        for (shape, m), items in self.shapes.items():
            if m in r.meds and r.covers(shape):
                _insert(items, r)

    def remove(self, r: _Res) -> None:
        _delete(self.offers, r)
        for index, keys in ((self.by_provider, (r.provider,)), (self.by_mediator, r.meds)):
            for k in keys:
                mine = index[k]
                _delete(mine, r)
                if not mine:
                    del index[k]
        for (shape, m), items in self.shapes.items():
            if m in r.meds and r.covers(shape):
                _delete(items, r)

    def shape(self, shape: _Shape, mediator: str) -> list[_Res]:
        """The offers trusting ``mediator`` that have at least ``shape``, in price order."""
        key = (shape, mediator)
        self.touched.add(key)
        items = self.shapes.get(key)
        if items is None:
            gpu, vram, cpu, ram, disk = shape
            # Filter the shortest list known to hold every candidate: that of a
            # shape asking no more than this one on every count, same mediator.
            source = self.by_mediator.get(mediator, [])
            for ((g, v, c, m, d), med), known in self.shapes.items():
                if (med == mediator and len(known) < len(source) and g <= gpu and c <= cpu and m <= ram
                        and d <= disk and (g == 0 or v <= vram)):
                    source = known
            items = self.shapes[key] = [
                r for r in source
                if r.gpu >= gpu and (gpu == 0 or r.vram >= vram) and r.cpu >= cpu and r.ram >= ram and r.disk >= disk
            ]
        return items

    def forget_untouched(self) -> None:
        for key in [k for k in self.shapes if k not in self.touched]:
            del self.shapes[key]
        self.touched.clear()


class _Run:
    """The state of one matching run: slots used so far, skip pointers, resume points."""

    __slots__ = ("used", "now", "skips", "resume")

    def __init__(self, usage: Mapping[str, int] | None, now: int | None) -> None:
        self.used: dict[str, int] = {k.lower(): int(v) for k, v in (usage or {}).items()}
        self.now = now
        self.skips: dict[tuple[str, _Shape, str], dict[int, int]] = {}
        self.resume: dict[tuple[Any, ...], int] = {}

    def unavailable(self, r: _Res) -> bool:
        return self.used.get(r.provider, 0) >= r.slots or (self.now is not None and r.expires_at <= self.now)


def _key(key: OfferKey | ResourceOffer | JobOffer) -> tuple[str, bytes]:
    if isinstance(key, (ResourceOffer, JobOffer)):
        key = key.key
    address, nonce = key
    return (address.lower(), bytes(nonce))


class Matcher:
    """The solver's open offers, indexed for matching (see the module docstring).

    Not thread-safe; one matcher per solver process. Offers are identified by
    their :attr:`~lilypad.protocol.offers.ResourceOffer.key`.
    """

    def __init__(self) -> None:
        self._resources: dict[tuple[str, bytes], _Res] = {}
        self._jobs: dict[tuple[str, bytes], _Job] = {}
        self._books: dict[str, _Book] = {}

    # Offers ---------------------------------------------------------------
    def add_resource_offer(self, offer: ResourceOffer) -> None:
        """Add an open resource offer. Raises ``ValueError`` if its key is already here."""
        r = _Res(offer)
        if r.key in self._resources:
            raise ValueError(f"resource offer {offer.resource_provider}/0x{offer.nonce.hex()} is already open")
        self._resources[r.key] = r
        self._books.setdefault(r.solver, _Book()).add(r)

    def remove_resource_offer(self, key: OfferKey | ResourceOffer) -> bool:
        """Remove a resource offer (by key or offer); whether it was here."""
        r = self._resources.pop(_key(key), None)
        if r is None:
            return False
        book = self._books[r.solver]
        book.remove(r)
        if not book.offers:
            del self._books[r.solver]
        return True

    def add_job_offer(self, offer: JobOffer) -> None:
        """Add an open job offer. Raises ``ValueError`` if its key is already here."""
        job = _Job(offer)
        if job.key in self._jobs:
            raise ValueError(f"job offer {offer.job_creator}/0x{offer.nonce.hex()} is already open")
        self._jobs[job.key] = job

    def remove_job_offer(self, key: OfferKey | JobOffer) -> bool:
        """Remove a job offer (by key or offer); whether it was here."""
        return self._jobs.pop(_key(key), None) is not None

    @property
    def resource_offer_count(self) -> int:
        return len(self._resources)

    @property
    def job_offer_count(self) -> int:
        return len(self._jobs)

    # Matching -------------------------------------------------------------
    def match_all(self, usage: Mapping[str, int] | None = None, *, now: int | None = None,
                  eligible: MediatorFilter | None = None) -> list[Match]:
        """Match every open job offer it can, oldest first (the greedy policy of
        the module docstring). ``usage`` maps provider addresses to their deals
        in progress; ``now`` (Unix seconds), when given, excludes expired
        resource offers; ``eligible``, when given, says which mediators (lower-case
        addresses) a deal may name (the protocol's minimum mediator stake): the
        others are left out of every match. Returns the matches in job order;
        changes nothing here."""
        run = _Run(usage, now)
        matches: list[Match] = []
        for job in sorted(self._jobs.values(), key=_ORDER):
            r = self._best(_eligible_only(job, eligible), run)
            if r is not None:
                run.used[r.provider] = run.used.get(r.provider, 0) + 1
                matches.append(_match(job.offer, r.offer, eligible))
        for book in self._books.values():
            book.forget_untouched()
        return matches

    def match_one(
        self, job: JobOffer, usage: Mapping[str, int] | None = None, *, now: int | None = None,
        eligible: MediatorFilter | None = None,
    ) -> Match | None:
        """The best match for ``job`` alone (it need not have been added), or ``None``."""
        r = self._best(_eligible_only(_Job(job), eligible), _Run(usage, now))
        return None if r is None else _match(job, r.offer, eligible)

    def _best(self, job: _Job, run: _Run) -> _Res | None:
        book = self._books.get(job.solver)
        if book is None:
            return None
        if job.target is not None:
            for r in book.by_provider.get(job.target, ()):
                if r.price > job.price:
                    break
                if not run.unavailable(r) and _fits(job, r):
                    return r
            return None
        # An acceptable offer shares a mediator (not the job creator) with the job,
        # so it is in the list of one of the job's mediators: walk each of those
        # lists to its first usable offer and take the best of these.
        best: _Res | None = None
        for mediator in job.meds:
            if mediator == job.creator or mediator not in book.by_mediator:
                continue
            found = self._first(book, job, mediator, run, best)
            if found is not None:
                best = found
        return best

    @staticmethod
    def _first(book: _Book, job: _Job, mediator: str, run: _Run, better: _Res | None) -> _Res | None:
        """The first offer of ``mediator``'s list for the job's shape that fits
        the job and has a free slot, if it comes before ``better``."""
        items = book.shape(job.shape, mediator)
        skips = run.skips.setdefault((job.solver, job.shape, mediator), {})
        # A job asking exactly what an earlier one asked can start where that one
        # stopped: each offer before was unacceptable to it or is full now.
        resume_key = (job.sig, mediator)
        i = _find(skips, run.resume.get(resume_key, 0))
        n, used, now = len(items), run.used, run.now
        limit = better.order if better is not None else None
        while i < n:
            r = items[i]
            if r.price > job.price or (limit is not None and r.order >= limit):
                break
            if used.get(r.provider, 0) >= r.slots or (now is not None and r.expires_at <= now):
                skips[i] = i + 1
            elif _fits(job, r):
                run.resume[resume_key] = i
                return r
            i = _find(skips, i + 1)
        run.resume[resume_key] = i
        return None
