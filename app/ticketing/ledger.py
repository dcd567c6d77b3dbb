"""The ledger service: double-entry postings in integer tiyn, with the invariant checker.

Only card accounts keep a running ``balance``, changed by a single conditional UPDATE per posting, so a
concurrent charge can never take a card below its floor. System accounts (channels, revenue, adjustments)
are summed from their entries when needed: every tap touches revenue, and a running total there would
make every tap in the city wait on one row lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.models import LedgerAccount, LedgerEntry, LedgerTransaction, Tap
from app.ticketing.errors import InsufficientFunds

__all__ = [
    "Leg",
    "card_account",
    "check_invariants",
    "lock_card_account",
    "open_card_account",
    "post",
    "system_account",
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
