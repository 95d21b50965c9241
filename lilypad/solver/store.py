"""The solver's state in SQLite: offers, deals, results, used nonces.

One database file (``$LILYPAD_DATA_DIR/solver/solver.db`` by default) holds
everything the solver must not forget across a restart:

* ``resource_offers`` and ``job_offers``: each signed offer as received (its
  JSON), its id (the EIP-712 digest, see :func:`lilypad.solver.service.offer_id`),
  its state and when it was accepted. Resource offers are ``open``,
  ``expired`` or ``cancelled``; job offers ``open``, ``matched`` (with the
  ``deal_id``), ``expired`` or ``cancelled``;
* ``deals``: the :class:`~lilypad.protocol.deal.Deal` terms (JSON), the two
  offers it came from, its on-chain :class:`~lilypad.protocol.deal.AgreementState`,
  the result CID recorded on-chain, the on-chain agreement timestamps and the
  solver's own created/updated times; ``deal_parties`` indexes its parties
  (job creator, resource provider, mediators) for ``?party=`` queries;
* ``results``: the result uploaded for a deal (CID and archive size);
* ``nonces``: every ``(signer, nonce)`` accepted (:class:`SqliteNonceRegistry`,
  an atomic check-and-record), kept until the offer would be refused as
  stale anyway.

A provider's slot usage is *derived* from ``deals`` (the deals of that
provider not yet in a terminal state, see :meth:`SolverStore.active_deal_slots`)
rather than kept as a counter, so it can never drift from the deals.

The connection is opened by :func:`lilypad.service.state.open_sqlite` (WAL,
autocommit, foreign keys) with ``synchronous=NORMAL``; one connection is
shared by all threads behind a re-entrant lock, and every write is one
``BEGIN IMMEDIATE`` transaction (so a second process on the same file waits
for the lock, up to :data:`~lilypad.service.state.BUSY_TIMEOUT_S`). The schema is versioned in
``schema_version`` and migrated forward on open (:data:`MIGRATIONS`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lilypad.exceptions import SolverStoreError
from lilypad.protocol.deal import TERMINAL_STATES, AgreementState, Deal
from lilypad.protocol.offers import ResourceOffer
from lilypad.protocol.signing import SignedOffer
from lilypad.service.state import open_sqlite

__all__ = [
    "AgreementTimes",
    "DealRecord",
    "JOB_OFFER_STATES",
    "MIGRATIONS",
    "OfferKind",
    "OfferRecord",
    "RESOURCE_OFFER_STATES",
    "ResultRecord",
    "SCHEMA_VERSION",
    "SlotRow",
    "SolverStore",
    "SqliteNonceRegistry",
]

OfferKind = Literal["resource", "job"]
RESOURCE_OFFER_STATES = ("open", "expired", "cancelled")
JOB_OFFER_STATES = ("open", "matched", "expired", "cancelled")
_TERMINAL_CODES = tuple(sorted(int(s) for s in TERMINAL_STATES))

#: Schema migrations: ``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE resource_offers (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            nonce BLOB NOT NULL,
            signed TEXT NOT NULL,
            state TEXT NOT NULL,
            expires_at INTEGER NOT NULL,
            accepted_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (provider, nonce))""",
        "CREATE INDEX resource_offers_state ON resource_offers (state, expires_at)",
        """CREATE TABLE job_offers (
            id TEXT PRIMARY KEY,
            creator TEXT NOT NULL,
            nonce BLOB NOT NULL,
            signed TEXT NOT NULL,
            state TEXT NOT NULL,
            deal_id TEXT,
            accepted_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (creator, nonce))""",
        "CREATE INDEX job_offers_state ON job_offers (state, accepted_at)",
        """CREATE TABLE deals (
            deal_id TEXT PRIMARY KEY,
            terms TEXT NOT NULL,
            job_offer_id TEXT NOT NULL UNIQUE REFERENCES job_offers (id),
            resource_offer_id TEXT NOT NULL REFERENCES resource_offers (id),
            resource_provider TEXT NOT NULL,
            agree_window INTEGER NOT NULL,
            state INTEGER NOT NULL DEFAULT 0,
            result_cid TEXT,
            chain_created_at INTEGER,
            agreed_at INTEGER,
            results_submitted_at INTEGER,
            mediation_requested_at INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL)""",
        "CREATE INDEX deals_state ON deals (state, resource_provider)",
        """CREATE TABLE deal_parties (
            deal_id TEXT NOT NULL REFERENCES deals (deal_id),
            address TEXT NOT NULL,
            role TEXT NOT NULL,
            PRIMARY KEY (deal_id, address, role)) WITHOUT ROWID""",
        "CREATE INDEX deal_parties_address ON deal_parties (address)",
        """CREATE TABLE results (
            deal_id TEXT PRIMARY KEY REFERENCES deals (deal_id),
            cid TEXT NOT NULL,
            size INTEGER NOT NULL,
            uploaded_at REAL NOT NULL)""",
        """CREATE TABLE nonces (
            signer TEXT NOT NULL,
            nonce BLOB NOT NULL,
            keep_until INTEGER,
            PRIMARY KEY (signer, nonce)) WITHOUT ROWID""",
        "CREATE INDEX nonces_keep_until ON nonces (keep_until)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRecord:
    """A stored offer: ``id``, the ``signed`` offer, its ``state`` and, for a
    matched job offer, its ``deal_id``. Times are the solver's (Unix seconds)."""

    id: str
    kind: OfferKind
    signed: SignedOffer
    state: str
    accepted_at: float
    updated_at: float
    deal_id: str | None = None

    @property
    def signer(self) -> str:
        return self.signed.offer.signer


@dataclass(frozen=True)
class AgreementTimes:
    """The on-chain agreement's timestamps (block times, Unix seconds; ``None``
    until reached): ``created_at`` first agree, ``agreed_at`` second agree,
    then results submitted and mediation requested."""

    created_at: int | None = None
    agreed_at: int | None = None
    results_submitted_at: int | None = None
    mediation_requested_at: int | None = None


@dataclass(frozen=True)
class DealRecord:
    """A stored deal: its id (``0x``-hex of :attr:`Deal.deal_id`), terms, the
    offers it came from, on-chain state, on-chain result CID and timestamps."""

    deal_id: str
    deal: Deal
    job_offer_id: str
    resource_offer_id: str
    state: AgreementState
    result_cid: str | None
    times: AgreementTimes
    created_at: float
    updated_at: float

    @property
    def job_creator(self) -> str:
        return self.deal.members.job_creator

    @property
    def resource_provider(self) -> str:
        return self.deal.members.resource_provider

    @property
    def mediators(self) -> tuple[str, ...]:
        return self.deal.members.mediators


@dataclass(frozen=True)
class ResultRecord:
    """The result uploaded for a deal: its CID and the archive's size in bytes."""

    deal_id: str
    cid: str
    size: int
    uploaded_at: float


@dataclass(frozen=True)
class SlotRow:
    """A deal not in a terminal state, as slot accounting needs it."""

    resource_provider: str
    state: AgreementState
    created_at: float
    agree_window: int


# --------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------


class SolverStore:
    """The solver's SQLite database at ``path`` (created, with its parent
    directory, if missing). Thread-safe; close it with :meth:`close`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn = open_sqlite(self.path, synchronous="NORMAL")
        self._conn.row_factory = sqlite3.Row
        self._migrate()
        self.nonces = SqliteNonceRegistry(self)

    def __repr__(self) -> str:
        return f"SolverStore({str(self.path)!r})"

    def __enter__(self) -> SolverStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # Plumbing -------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction (re-entrant: nested calls join it)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).fetchall()

    def _migrate(self) -> None:
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            else:
                version = int(row[0])
            if version > SCHEMA_VERSION:
                raise SolverStoreError(
                    str(self.path), f"schema version {version} is newer than this lilypad's ({SCHEMA_VERSION})"
                )
            for target in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[target]:
                    conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ?", (target + 1,))

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT version FROM schema_version")[0][0])

    # Offers ---------------------------------------------------------------
    @staticmethod
    def _table(kind: OfferKind) -> str:
        if kind == "resource":
            return "resource_offers"
        if kind == "job":
            return "job_offers"
        raise ValueError(f"unknown offer kind {kind!r}")

    @staticmethod
    def _offer(kind: OfferKind, row: sqlite3.Row) -> OfferRecord:
        return OfferRecord(
            id=row["id"],
            kind=kind,
            signed=SignedOffer.model_validate_json(row["signed"]),
            state=row["state"],
            accepted_at=row["accepted_at"],
            updated_at=row["updated_at"],
            deal_id=row["deal_id"] if kind == "job" else None,
        )

    def add_offer(self, offer_id: str, signed: SignedOffer, *, now: float) -> OfferRecord:
        """Store a newly accepted offer as ``open``."""
        offer = signed.offer
        kind: OfferKind = offer.kind
        text = signed.model_dump_json()
        with self.transaction() as conn:
            if isinstance(offer, ResourceOffer):
                conn.execute(
                    "INSERT INTO resource_offers (id, provider, nonce, signed, state, expires_at, accepted_at,"
                    " updated_at) VALUES (?, ?, ?, ?, 'open', ?, ?, ?)",
                    (offer_id, offer.signer.lower(), offer.nonce, text, offer.expires_at, now, now),
                )
            else:
                conn.execute(
                    "INSERT INTO job_offers (id, creator, nonce, signed, state, accepted_at, updated_at)"
                    " VALUES (?, ?, ?, ?, 'open', ?, ?)",
                    (offer_id, offer.signer.lower(), offer.nonce, text, now, now),
                )
        return OfferRecord(offer_id, kind, signed, "open", now, now)

    def offer(self, kind: OfferKind, offer_id: str) -> OfferRecord | None:
        rows = self._query(f"SELECT * FROM {self._table(kind)} WHERE id = ?", (offer_id,))
        return self._offer(kind, rows[0]) if rows else None

    def offers(self, kind: OfferKind, *, state: str | None = None) -> list[OfferRecord]:
        """Offers of ``kind`` (in ``state`` if given), oldest accepted first."""
        table = self._table(kind)
        if state is None:
            rows = self._query(f"SELECT * FROM {table} ORDER BY accepted_at, id")
        else:
            rows = self._query(f"SELECT * FROM {table} WHERE state = ? ORDER BY accepted_at, id", (state,))
        return [self._offer(kind, row) for row in rows]

    def set_offer_state(self, kind: OfferKind, offer_id: str, state: str, *, now: float,
                        only_from: str | None = "open") -> bool:
        """Move an offer to ``state`` (only from ``only_from`` unless that is
        ``None``); whether it moved."""
        valid = RESOURCE_OFFER_STATES if kind == "resource" else JOB_OFFER_STATES
        if state not in valid:
            raise ValueError(f"{state!r} is not a {kind} offer state")
        sql = f"UPDATE {self._table(kind)} SET state = ?, updated_at = ? WHERE id = ?"
        params: list[Any] = [state, now, offer_id]
        if only_from is not None:
            sql += " AND state = ?"
            params.append(only_from)
        with self.transaction() as conn:
            return conn.execute(sql, params).rowcount == 1

    def expire_offers(self, *, now: float, job_accepted_before: float) -> list[OfferRecord]:
        """Expire open job offers accepted before ``job_accepted_before`` and
        open resource offers whose ``expires_at`` has come; return them (as expired)."""
        expired: list[OfferRecord] = []
        with self.transaction() as conn:
            for kind, where, arg in (
                ("job", "accepted_at < ?", job_accepted_before),
                ("resource", "expires_at <= ?", now),
            ):
                table = self._table(kind)  # type: ignore[arg-type]
                rows = conn.execute(f"SELECT * FROM {table} WHERE state = 'open' AND {where}", (arg,)).fetchall()
                if not rows:
                    continue
                conn.executemany(
                    f"UPDATE {table} SET state = 'expired', updated_at = ? WHERE id = ?",
                    [(now, row["id"]) for row in rows],
                )
                for row in rows:
                    record = self._offer(kind, row)  # type: ignore[arg-type]
                    expired.append(
                        OfferRecord(record.id, record.kind, record.signed, "expired", record.accepted_at, now)
                    )
        return expired

    # Deals ----------------------------------------------------------------
    @staticmethod
    def _deal(row: sqlite3.Row) -> DealRecord:
        return DealRecord(
            deal_id=row["deal_id"],
            deal=Deal.model_validate_json(row["terms"]),
            job_offer_id=row["job_offer_id"],
            resource_offer_id=row["resource_offer_id"],
            state=AgreementState(row["state"]),
            result_cid=row["result_cid"],
            times=AgreementTimes(
                row["chain_created_at"], row["agreed_at"], row["results_submitted_at"], row["mediation_requested_at"]
            ),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def record_match(self, deal: Deal, *, job_offer_id: str, resource_offer_id: str, now: float) -> DealRecord | None:
        """Store a new deal and mark its job offer ``matched``, in one
        transaction; ``None`` (nothing stored) if the job offer is no longer open."""
        deal_id = "0x" + deal.deal_id.hex()
        m = deal.members
        with self.transaction() as conn:
            moved = conn.execute(
                "UPDATE job_offers SET state = 'matched', deal_id = ?, updated_at = ? WHERE id = ? AND state = 'open'",
                (deal_id, now, job_offer_id),
            ).rowcount
            if moved != 1:
                return None
            conn.execute(
                "INSERT INTO deals (deal_id, terms, job_offer_id, resource_offer_id, resource_provider, agree_window,"
                " state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (deal_id, json.dumps(deal.model_dump(mode="json")), job_offer_id, resource_offer_id,
                 m.resource_provider.lower(), deal.timeouts.agree, now, now),
            )
            parties = {(m.job_creator.lower(), "job_creator"), (m.resource_provider.lower(), "resource_provider")}
            parties |= {(a.lower(), "mediator") for a in m.mediators}
            conn.executemany(
                "INSERT OR IGNORE INTO deal_parties (deal_id, address, role) VALUES (?, ?, ?)",
                [(deal_id, address, role) for address, role in sorted(parties)],
            )
        return DealRecord(deal_id, deal, job_offer_id, resource_offer_id, AgreementState.NONE, None,
                          AgreementTimes(), now, now)

    def deal(self, deal_id: str) -> DealRecord | None:
        rows = self._query("SELECT * FROM deals WHERE deal_id = ?", (deal_id.lower(),))
        return self._deal(rows[0]) if rows else None

    def deals(self, *, party: str | None = None, states: Iterable[AgreementState] | None = None,
              limit: int | None = None) -> list[DealRecord]:
        """Deals, oldest first; only those ``party`` (any role) takes part in
        and those in one of ``states``, when given."""
        sql, params = "SELECT d.* FROM deals d", list[Any]()
        where = []
        if party is not None:
            where.append("d.deal_id IN (SELECT deal_id FROM deal_parties WHERE address = ?)")
            params.append(party.lower())
        if states is not None:
            codes = sorted({int(s) for s in states})
            where.append(f"d.state IN ({', '.join('?' * len(codes)) or 'NULL'})")
            params.extend(codes)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY d.created_at, d.deal_id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [self._deal(row) for row in self._query(sql, params)]

    def update_deal(self, deal_id: str, state: AgreementState, *, now: float, result_cid: str | None = None,
                    times: AgreementTimes | None = None) -> DealRecord | None:
        """Record the deal's on-chain ``state`` (and result CID and timestamps
        when given: ``None`` or ``0`` fields keep their value); the record, or ``None``
        for an unknown deal."""
        sets = ["state = ?", "updated_at = ?"]
        params: list[Any] = [int(state), now]
        if result_cid is not None:
            sets.append("result_cid = ?")
            params.append(result_cid)
        if times is not None:
            for column, value in (("chain_created_at", times.created_at), ("agreed_at", times.agreed_at),
                                  ("results_submitted_at", times.results_submitted_at),
                                  ("mediation_requested_at", times.mediation_requested_at)):
                if value:  # None, or the chain's 0 for "not yet": keep what is known
                    sets.append(f"{column} = ?")
                    params.append(int(value))
        with self.transaction() as conn:
            changed = conn.execute(
                f"UPDATE deals SET {', '.join(sets)} WHERE deal_id = ?", (*params, deal_id.lower())
            ).rowcount
            return self.deal(deal_id) if changed else None

    def active_deal_slots(self) -> list[SlotRow]:
        """Every deal not in a terminal state, for slot accounting."""
        marks = ", ".join("?" * len(_TERMINAL_CODES))
        rows = self._query(
            f"SELECT resource_provider, state, created_at, agree_window FROM deals WHERE state NOT IN ({marks})",
            _TERMINAL_CODES,
        )
        return [SlotRow(r["resource_provider"], AgreementState(r["state"]), r["created_at"], r["agree_window"])
                for r in rows]

    # Results --------------------------------------------------------------
    def put_result(self, deal_id: str, cid: str, size: int, *, now: float) -> ResultRecord:
        """Record (or replace) the result uploaded for ``deal_id``."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO results (deal_id, cid, size, uploaded_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (deal_id) DO UPDATE SET cid = excluded.cid, size = excluded.size,"
                " uploaded_at = excluded.uploaded_at",
                (deal_id.lower(), cid, int(size), now),
            )
        return ResultRecord(deal_id.lower(), cid, int(size), now)

    def drop_ended_results(self, *, ended_before: float) -> list[str]:
        """Forget the uploaded results of deals in a terminal state since before
        ``ended_before`` (their last update); the CIDs no result refers to any
        more, whose files can be deleted."""
        marks = ", ".join("?" * len(_TERMINAL_CODES))
        with self.transaction() as conn:
            rows = conn.execute(
                f"SELECT r.deal_id, r.cid FROM results r JOIN deals d ON d.deal_id = r.deal_id"
                f" WHERE d.state IN ({marks}) AND d.updated_at < ?", (*_TERMINAL_CODES, ended_before)).fetchall()
            conn.executemany("DELETE FROM results WHERE deal_id = ?", [(r["deal_id"],) for r in rows])
            cids = sorted({r["cid"] for r in rows})
            return [c for c in cids if conn.execute("SELECT 1 FROM results WHERE cid = ?", (c,)).fetchone() is None]

    def result(self, deal_id: str) -> ResultRecord | None:
        rows = self._query("SELECT * FROM results WHERE deal_id = ?", (deal_id.lower(),))
        if not rows:
            return None
        row = rows[0]
        return ResultRecord(row["deal_id"], row["cid"], row["size"], row["uploaded_at"])


class SqliteNonceRegistry:
    """A :class:`~lilypad.protocol.signing.NonceRegistry` in the solver's
    database: ``check_and_record`` is one ``INSERT OR IGNORE`` (atomic, also
    across processes sharing the file)."""

    def __init__(self, store: SolverStore) -> None:
        self._store = store

    def check_and_record(self, address: str, nonce: bytes, *, keep_until: int | None = None) -> bool:
        with self._store.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO nonces (signer, nonce, keep_until) VALUES (?, ?, ?)",
                (address.lower(), bytes(nonce), keep_until),
            )
            return cursor.rowcount == 1

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            return False
        rows = self._store._query(
            "SELECT 1 FROM nonces WHERE signer = ? AND nonce = ?", (item[0].lower(), bytes(item[1]))
        )
        return bool(rows)

    def __len__(self) -> int:
        return int(self._store._query("SELECT COUNT(*) FROM nonces")[0][0])

    def prune(self, now: int | float) -> int:
        """Forget nonces whose ``keep_until`` is before ``now``; return how many."""
        with self._store.transaction() as conn:
            return conn.execute(
                "DELETE FROM nonces WHERE keep_until IS NOT NULL AND keep_until < ?", (int(now),)
            ).rowcount

