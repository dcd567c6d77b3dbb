"""The ledger: every write of postings, in integer tiyn, and the invariant checker.

What lives here — every way a ledger row is written:

- ``post``: the ORM service's balanced transaction (top-ups, pass sales, balance moves, corrections, and
  taps' adjustments and charges on databases other than PostgreSQL);
- ``charge_tap``: a general-path online or offline tap and its fare; on PostgreSQL one data-modifying CTE
  (``CHARGE_TAP``) inserts the tap, moves the balance under its floor and writes the transaction and both
  entries;
- ``write_batch``: an offline batch's taps, transactions and entries in bulk (PostgreSQL: ids from the
  sequences, then ``COPY``; elsewhere plain inserts) and one balance move per card;
- ``PriorRide``: an earlier ride of a card in a rating window and what it has been charged, with the
  adjustment rule shared by ``app.ticketing.taps`` and ``app.ticketing.batches``;
- the PL/pgSQL function ``qala_online_taps`` (the one-round-trip online taps of ``app.ticketing.fastpath``):
  its current source is ``app/ticketing/sql/qala_online_taps.sql`` (``function_source``); migrations keep
  frozen copies, and ``tests/test_ledger_sql.py`` checks the migrated database runs this one.

Only card accounts keep a running ``balance``, changed by a single conditional UPDATE per posting, so a
concurrent charge can never take a card below its floor. System accounts (channels, revenue, adjustments)
are summed from their entries when needed: every tap touches revenue, and a running total there would
make every tap in the city wait on one row lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, String, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import LedgerAccount, LedgerEntry, LedgerTransaction, Tap
from app.ticketing.errors import InsufficientFunds

__all__ = [
    "CHARGE_TAP",
    "ONLINE_TAPS_FUNCTION",
    "TAP_COLUMNS",
    "Leg",
    "Posting",
    "PriorRide",
    "adjustment_key",
    "array_literal",
    "card_account",
    "charge_tap",
    "check_invariants",
    "fare_key",
    "function_source",
    "lock_card_account",
    "open_card_account",
    "post",
    "system_account",
    "write_batch",
]

CHANNELS = ("kiosk", "app", "bank")


@dataclass(frozen=True)
class Leg:
    """One side of a posting; ``floor`` (card accounts only) is the lowest balance the posting may leave."""

    account_id: int
    amount: int
    floor: int | None = None
    card: bool = False  # a card account: its running balance moves with the posting


def open_card_account(session: Session, card_id: int) -> LedgerAccount:
    account = LedgerAccount(code=f"card:{card_id}", kind="card", card_id=card_id, balance=0)
    session.add(account)
    session.flush()
    return account


def card_account(session: Session, card_id: int) -> LedgerAccount:
    account = session.scalar(select(LedgerAccount).where(LedgerAccount.card_id == card_id))
    if account is None:
        raise LookupError(f"card {card_id} has no ledger account")
    return account


def lock_card_account(session: Session, card_id: int) -> LedgerAccount:
    """The card's account, row-locked until commit (PostgreSQL) so its taps are rated one at a time."""
    stmt = select(LedgerAccount).where(LedgerAccount.card_id == card_id).with_for_update()
    account = session.scalars(stmt.execution_options(populate_existing=True)).one()
    return account


def system_account(session: Session, code: str, cache: dict[str, int] | None = None) -> int:
    """The id of a system account such as ``revenue``, ``adjustment`` or ``channel:kiosk`` (created on first use).

    Ids of committed system accounts may be remembered in ``cache``; one created by this session's own
    transaction is not, since that transaction may still roll back.
    """
    if cache is not None and code in cache:
        return cache[code]
    created: set[str] = session.info.setdefault("qala_new_system_accounts", set())
    found = session.scalar(select(LedgerAccount.id).where(LedgerAccount.code == code))
    if found is None:
        try:
            with session.begin_nested():
                session.execute(insert(LedgerAccount).values(code=code, kind=code.split(":", 1)[0], balance=0))
            created.add(code)
        except IntegrityError:
            pass  # created concurrently
        found = session.scalars(select(LedgerAccount.id).where(LedgerAccount.code == code)).one()
    if cache is not None and code not in created:
        cache[code] = found
    return found


def post(session: Session, kind: str, legs: Sequence[Leg], *, charge_key: str | None = None,
         tap_id: int | None = None, reason: str | None = None) -> dict[int, int]:
    """Record one balanced transaction; returns the new balances of its card accounts.

    Raises ``InsufficientFunds`` when a card leg would cross its floor.
    """
    if sum(leg.amount for leg in legs) != 0:
        raise ValueError("a ledger transaction must sum to zero")
    session.flush()  # pending changes go out before balances are refreshed below
    balances = {leg.account_id: _move_card_balance(session, leg)
                for leg in sorted(legs, key=lambda item: item.account_id) if leg.card}  # one lock order
    for obj in list(session.identity_map.values()):
        if isinstance(obj, LedgerAccount) and obj.id in balances:
            session.expire(obj, ["balance"])
    transaction = LedgerTransaction(kind=kind, charge_key=charge_key, tap_id=tap_id, reason=reason)
    session.add(transaction)
    session.flush()
    session.execute(insert(LedgerEntry), [
        {"transaction_id": transaction.id, "account_id": leg.account_id, "amount": leg.amount} for leg in legs
        if leg.amount != 0
    ])
    return balances


def _move_card_balance(session: Session, leg: Leg) -> int:
    stmt = update(LedgerAccount).where(LedgerAccount.id == leg.account_id, LedgerAccount.kind == "card")
    if leg.floor is not None and leg.amount < 0:
        stmt = stmt.where(LedgerAccount.balance + leg.amount >= leg.floor)
    balance = session.scalar(stmt.values(balance=LedgerAccount.balance + leg.amount)
                             .returning(LedgerAccount.balance).execution_options(synchronize_session=False))
    if balance is None:
        raise InsufficientFunds("the balance is too low for this transfer")
    return int(balance)


def fare_key(tap_key: str) -> str:
    """The ``charge_key`` of a tap's fare: unique, so a tap is charged at most once (``qala_online_taps`` builds
    the same key in SQL)."""
    return f"fare:{tap_key}"


def adjustment_key(tap_key: str, postings: int) -> str:
    """The ``charge_key`` of a re-rated tap's adjustment, after ``postings`` transactions already linked to it."""
    return f"adj:{tap_key}:{postings}"


@dataclass
class PriorRide:
    """An earlier ride of a card in the rating window, and what the ledger has charged for it so far."""

    id: int
    tap_key: str
    at: dt.datetime
    vehicle_id: str
    route_id: str | None
    uncollected: int
    paid: int = 0  # Σ of this tap's entries on the card account (negative = charged)
    postings: int = 0  # ledger transactions already linked to the tap

    def adjustment(self, fare: int) -> int:
        """What the card pays now that the ride is rated at ``fare`` (negative: gets back); 0 when unchanged.

        A refund never exceeds what was collected: an uncollected part (debt limit) is simply forgiven."""
        charged = -self.paid
        diff = fare - (charged + self.uncollected)
        if diff < 0:
            diff = -min(-diff, charged)  # never refund what was never collected
        return diff


CHARGE_TAP = text("""
WITH t AS (
    INSERT INTO taps (tap_key, device_id, device_seq, body_hash, card_id, card_masked, vehicle_id, route_id,
                      tapped_at, offline, outcome, reason, fare, uncollected, product_id, balance_after)
    VALUES (:tap_key, :device_id, :device_seq, :body_hash, :card_id, :card_masked, :vehicle_id, :route_id,
            :tapped_at, :offline, :outcome, :reason, :fare, :uncollected, :product_id, :balance_after)
    RETURNING id
), b AS (
    UPDATE ledger_accounts SET balance = balance - :charge
    WHERE id = :account_id AND kind = 'card' AND balance - :charge >= :floor
    RETURNING balance
), x AS (
    INSERT INTO ledger_transactions (kind, charge_key, tap_id)
    SELECT 'fare', :charge_key, t.id FROM t, b
    RETURNING id
), e AS (
    INSERT INTO ledger_entries (transaction_id, account_id, amount)
    SELECT x.id, v.account_id, v.amount FROM x,
        (VALUES (CAST(:account_id AS BIGINT), -CAST(:charge AS BIGINT)),
                (CAST(:revenue_id AS BIGINT), CAST(:charge AS BIGINT))) AS v (account_id, amount)
)
SELECT t.id, (SELECT balance FROM b) FROM t
""")


def charge_tap(session: Session, tap: Mapping[str, Any], *, account_id: int, revenue_id: int, charge: int,
               floor: int) -> tuple[int, int]:
    """Insert the tap row ``tap`` (the ``taps`` columns but the id) and post its fare: ``charge`` from the card
    account to revenue, leaving at least ``floor``; returns the tap's id and the card's new balance.

    On PostgreSQL one statement (``CHARGE_TAP``); elsewhere the insert and ``post``. Raises
    ``InsufficientFunds`` when the balance would cross the floor (the caller's transaction must roll back)."""
    charge_key = fare_key(tap["tap_key"])
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(CHARGE_TAP, {**tap, "charge": charge, "floor": floor, "account_id": account_id,
                                           "charge_key": charge_key, "revenue_id": revenue_id}).one()
        if row[1] is None:
            raise InsufficientFunds("the balance is too low for this transfer")
        return int(row[0]), int(row[1])
    tap_id = int(session.execute(insert(Tap).values(dict(tap)).returning(Tap.id)).scalar_one())
    moved = post(session, "fare", [Leg(account_id, -charge, floor, card=True), Leg(revenue_id, charge)],
                 charge_key=charge_key, tap_id=tap_id)
    return tap_id, moved[account_id]


TAP_COLUMNS = ("id", "tap_key", "device_id", "device_seq", "body_hash", "card_id", "card_masked", "vehicle_id",
               "route_id", "tapped_at", "offline", "outcome", "reason", "fare", "uncollected", "product_id",
               "balance_after")


class Posting(NamedTuple):
    """One transaction of a batch: the card account pays ``amount`` to revenue (negative: revenue pays back)."""

    kind: str  # fare | fare_adjustment
    charge_key: str
    new_tap: int | None  # the index, among the batch's new taps, of the tap it charges; or
    tap_id: int | None  # the stored tap it adjusts
    reason: str | None
    account_id: int  # the card's account
    amount: int


def write_batch(session: Session, taps: Sequence[tuple[Any, ...]], postings: Sequence[Posting],
                deltas: Mapping[int, int], revenue_id: int) -> list[int]:
    """Write a batch: its new ``taps`` (rows in ``TAP_COLUMNS[1:]`` order), ``postings`` (two entries each) and
    each card account's balance change in ``deltas``; returns the new taps' ids, in order.

    The caller has locked the card accounts and planned ``deltas`` as the sum of their postings, floors
    checked: no balance condition is tested here."""
    if session.get_bind().dialect.name == "postgresql":
        return _write_batch_postgres(session, taps, postings, deltas, revenue_id)
    return _write_batch_generic(session, taps, postings, deltas, revenue_id)


def _ids(cur: Any, taps: int, transactions: int) -> tuple[list[int], list[int]]:
    """Ids for the batch's new taps and ledger transactions, from their sequences in one round trip."""
    cur.execute("SELECT ARRAY(SELECT nextval(pg_get_serial_sequence('taps', 'id')) FROM generate_series(1, %s)), "
                "ARRAY(SELECT nextval(pg_get_serial_sequence('ledger_transactions', 'id')) "
                "FROM generate_series(1, %s))", (taps, transactions))
    tap_ids, tx_ids = cur.fetchone()
    return [int(i) for i in tap_ids], [int(i) for i in tx_ids]


def _write_batch_postgres(session: Session, taps: Sequence[tuple[Any, ...]], postings: Sequence[Posting],
                          deltas: Mapping[int, int], revenue_id: int) -> list[int]:
    """Ids from the sequences, then COPY: five round trips for the whole batch."""
    conn: Any = session.connection().connection.driver_connection
    with conn.cursor() as cur:
        tap_ids, tx_ids = _ids(cur, len(taps), len(postings))
        with cur.copy(f"COPY taps ({', '.join(TAP_COLUMNS)}) FROM STDIN") as copy:
            for tap_id, row in zip(tap_ids, taps, strict=True):
                copy.write_row((tap_id, *row))
        with cur.copy("COPY ledger_transactions (id, kind, charge_key, tap_id, reason) FROM STDIN") as copy:
            for tx_id, (kind, key, index, prior_id, reason, _, _) in zip(tx_ids, postings, strict=True):
                copy.write_row((tx_id, kind, key, tap_ids[index] if index is not None else prior_id, reason))
        with cur.copy("COPY ledger_entries (transaction_id, account_id, amount) FROM STDIN") as copy:
            for tx_id, (_, _, _, _, _, account, amount) in zip(tx_ids, postings, strict=True):
                copy.write_row((tx_id, account, -amount))
                copy.write_row((tx_id, revenue_id, amount))
        if deltas:
            ids, moves = zip(*deltas.items(), strict=True)
            cur.execute("UPDATE ledger_accounts a SET balance = a.balance + d.delta "
                        "FROM unnest(%s::bigint[], %s::bigint[]) AS d (id, delta) WHERE a.id = d.id",
                        (array_literal(ids, BigInteger), array_literal(moves, BigInteger)))
    return tap_ids


def _write_batch_generic(session: Session, taps: Sequence[tuple[Any, ...]], postings: Sequence[Posting],
                         deltas: Mapping[int, int], revenue_id: int) -> list[int]:
    """SQLite (and any other database): ordinary inserts, one per row."""
    tap_ids = [int(session.execute(insert(Tap).values(dict(zip(TAP_COLUMNS[1:], row, strict=True)))
                                   .returning(Tap.id)).scalar_one()) for row in taps]
    for kind, key, index, prior_id, reason, account, amount in postings:
        tap_id = tap_ids[index] if index is not None else prior_id
        tx_id = session.execute(insert(LedgerTransaction).values(kind=kind, charge_key=key, tap_id=tap_id,
                                                                 reason=reason).returning(LedgerTransaction.id))
        tx = int(tx_id.scalar_one())
        session.execute(insert(LedgerEntry), [{"transaction_id": tx, "account_id": account, "amount": -amount},
                                              {"transaction_id": tx, "account_id": revenue_id, "amount": amount}])
    for account_id, delta in deltas.items():
        session.execute(update(LedgerAccount).where(LedgerAccount.id == account_id)
                        .values(balance=LedgerAccount.balance + delta).execution_options(synchronize_session=False))
    return tap_ids


def array_literal(values: Iterable[Any], kind: type[String] | type[BigInteger]) -> str:
    """A PostgreSQL array literal: integers as they are, strings always quoted (``"`` and ``\\`` escaped)."""
    if kind is BigInteger:
        return "{" + ",".join(str(int(v)) for v in values) + "}"
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


ONLINE_TAPS_FUNCTION = "qala_online_taps"


def function_source(name: str = ONLINE_TAPS_FUNCTION) -> str:
    """The current ``CREATE OR REPLACE FUNCTION`` statement of the PL/pgSQL function ``name``, as shipped in
    ``app/ticketing/sql/<name>.sql``."""
    return resources.files("app.ticketing").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def check_invariants(session: Session) -> list[str]:
    """Every broken ledger invariant, described; an empty list means the ledger is sound."""
    problems = []
    total = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)))
    if total != 0:
        problems.append(f"entries sum to {total}, not 0")
    unbalanced = session.execute(select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
                                 .group_by(LedgerEntry.transaction_id)
                                 .having(func.sum(LedgerEntry.amount) != 0)).all()
    problems += [f"transaction {tid} sums to {amount}" for tid, amount in unbalanced]
    sums: dict[int, int] = dict(session.execute(select(LedgerEntry.account_id, func.sum(LedgerEntry.amount))
                                .group_by(LedgerEntry.account_id)).all())
    for account in session.scalars(select(LedgerAccount).where(LedgerAccount.kind == "card")):
        if account.balance != sums.get(account.id, 0):
            problems.append(f"{account.code} balance {account.balance} != sum of entries {sums.get(account.id, 0)}")
    double = session.execute(select(LedgerTransaction.tap_id, func.count()).where(LedgerTransaction.kind == "fare")
                             .group_by(LedgerTransaction.tap_id).having(func.count() > 1)).all()
    problems += [f"tap {tap_id} charged {n} times" for tap_id, n in double]
    orphans = session.scalar(select(func.count()).select_from(LedgerTransaction)
                             .where(LedgerTransaction.kind == "fare", LedgerTransaction.tap_id.not_in(select(Tap.id))))
    if orphans:
        problems.append(f"{orphans} fare charges without a tap")
    return problems
