"""The double-entry ledger: every change of value moves between two accounts.

Trader accounts are indices ``0..n-1`` into int64 balance columns (one row per asset);
system accounts have negative ids and Python-int balances (they can exceed int64):
``OUTSIDE`` (deposits come from it, withdrawals go to it), ``FEE_POOL``,
``SOCIALIZED_LOSS`` (bad debt nobody covered), and any others registered by name
(insurance funds, the perpetual settlement pools, lending pools, funding pools).

Every transfer is journalled (time, asset, from, to, amount, kind). :meth:`Ledger.check`
proves conservation exactly: per asset, the sum over all accounts is zero, the sum over
all but ``OUTSIDE`` equals what was deposited minus what was withdrawn, and (optionally)
replaying the journal reproduces every balance.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from cascadelab.clearing.arith import exact_sum

OUTSIDE, FEE_POOL, SOCIALIZED_LOSS = -1, -2, -3


class Kind(IntEnum):
    """What a journal entry is for."""

    DEPOSIT = 1
    WITHDRAW = 2
    TRADE_FEE = 3
    REALIZED_PNL = 4
    FUNDING = 5
    SPOT_TRADE = 6
    LIQUIDATION_FEE = 7
    INSURANCE = 8
    BAD_DEBT = 9
    ADL = 10
    LOAN = 11
    REPAY = 12
    INTEREST = 13
    FUND_SEED = 14
    TAKEOVER = 15


class LedgerError(ValueError):
    """A transfer that the ledger refuses (unknown account or asset, negative amount)."""


class ConservationError(AssertionError):
    """The ledger's books do not balance: a bug, never a user error."""


@dataclass
class JournalChunk:
    """A block of journal entries in columns."""

    ts: np.ndarray
    asset: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    amount: np.ndarray
    kind: np.ndarray


class Ledger:
    """Balances of every account in every asset, changed only by journalled transfers."""

    def __init__(self, assets: list[str], n_accounts: int = 0, journal: bool = True) -> None:
        if len(set(assets)) != len(assets) or not assets:
            raise LedgerError(f"assets must be a non-empty list without repeats, got {assets}")
        self.assets = list(assets)
        self.asset_index = {a: i for i, a in enumerate(assets)}
        self.balances = np.zeros((len(assets), max(n_accounts, 1)), np.int64)
        self.n_accounts = n_accounts
        self.system_names: dict[int, str] = {OUTSIDE: "outside", FEE_POOL: "fee_pool", SOCIALIZED_LOSS: "socialized_loss"}
        self.system_ids: dict[str, int] = {v: k for k, v in self.system_names.items()}
        self.system: dict[int, list[int]] = {sid: [0] * len(assets) for sid in self.system_names}
        self.net_deposits = [0] * len(assets)
        self.keep_journal = journal
        self.journal: list[JournalChunk] = []
        self.totals_by_kind: dict[tuple[int, int], int] = {}

    # --- registry ----------------------------------------------------------------------
    def asset(self, code: str) -> int:
        """Index of an asset code."""
        try:
            return self.asset_index[code]
        except KeyError:
            raise LedgerError(f"unknown asset {code!r}; known: {self.assets}") from None

    def add_accounts(self, n: int) -> np.ndarray:
        """Open ``n`` trader accounts with zero balances; returns their ids."""
        start = self.n_accounts
        need = start + n
        if need > self.balances.shape[1]:
            cap = max(need, 2 * self.balances.shape[1])
            grown = np.zeros((len(self.assets), cap), np.int64)
            grown[:, : self.balances.shape[1]] = self.balances
            self.balances = grown
        self.n_accounts = need
        return np.arange(start, need, dtype=np.int64)

    def system_account(self, name: str) -> int:
        """Id of a named system account, created on first use."""
        if name not in self.system_ids:
            sid = min(self.system_names) - 1
            self.system_names[sid] = name
            self.system_ids[name] = sid
            self.system[sid] = [0] * len(self.assets)
        return self.system_ids[name]

    def balance(self, account: int, asset: str | int) -> int:
        """Balance of one account in one asset."""
        a = asset if isinstance(asset, int) else self.asset(asset)
        if account < 0:
            return self.system[account][a]
        self._check_trader(account)
        return int(self.balances[a, account])

    def _check_trader(self, account: int) -> None:
        if not 0 <= account < self.n_accounts:
            raise LedgerError(f"unknown account {account}")

    # --- transfers ---------------------------------------------------------------------
    def transfer(self, asset: str | int, src: int, dst: int, amount: int, kind: Kind, ts: int = 0) -> None:
        """Move ``amount`` (>= 0) of ``asset`` from ``src`` to ``dst``. Balances may go negative."""
        a = asset if isinstance(asset, int) else self.asset(asset)
        amount = int(amount)
        if amount < 0:
            raise LedgerError(f"transfer amount must be >= 0, got {amount}")
        if amount == 0:
            return
        for acct in (src, dst):
            if acct < 0:
                if acct not in self.system:
                    raise LedgerError(f"unknown system account {acct}")
            else:
                self._check_trader(acct)
        self._move(a, src, -amount)
        self._move(a, dst, amount)
        if src == OUTSIDE:
            self.net_deposits[a] += amount
        if dst == OUTSIDE:
            self.net_deposits[a] -= amount
        self._journal(np.array([ts]), a, np.array([src]), np.array([dst]), np.array([amount]), kind)

    def _move(self, a: int, acct: int, delta: int) -> None:
        if acct < 0:
            self.system[acct][a] += delta
        else:
            self.balances[a, acct] += delta

    def transfer_many(
        self, asset: str | int, src: np.ndarray, dst: np.ndarray, amount: np.ndarray, kind: Kind, ts: int = 0
    ) -> None:
        """Vectorized :meth:`transfer`: entry ``j`` moves ``amount[j]`` from ``src[j]`` to ``dst[j]``."""
        a = asset if isinstance(asset, int) else self.asset(asset)
        src = np.asarray(src, np.int64)
        dst = np.asarray(dst, np.int64)
        amount = np.asarray(amount, np.int64)
        if not (src.shape == dst.shape == amount.shape):
            raise LedgerError("src, dst and amount must have the same shape")
        if (amount < 0).any():
            raise LedgerError("transfer amounts must be >= 0")
        keep = amount > 0
        src, dst, amount = src[keep], dst[keep], amount[keep]
        if len(amount) == 0:
            return
        for ids in (src, dst):
            sys_ids = np.unique(ids[ids < 0])
            unknown = [int(s) for s in sys_ids if int(s) not in self.system]
            if unknown:
                raise LedgerError(f"unknown system account(s) {unknown}")
            if (ids >= self.n_accounts).any():
                raise LedgerError(f"unknown account {int(ids.max())}")
        for ids, sign in ((src, -1), (dst, 1)):
            trader = ids >= 0
            np.add.at(self.balances[a], ids[trader], sign * amount[trader])
            for sid in np.unique(ids[~trader]).tolist():
                total = exact_sum(amount[ids == sid])
                self.system[sid][a] += sign * total
                if sid == OUTSIDE:
                    self.net_deposits[a] -= sign * total
        self._journal(np.full(len(amount), ts), a, src, dst, amount, kind)

    def _journal(self, ts: np.ndarray, a: int, src: np.ndarray, dst: np.ndarray, amount: np.ndarray, kind: Kind) -> None:
        key = (a, int(kind))
        self.totals_by_kind[key] = self.totals_by_kind.get(key, 0) + exact_sum(amount)
        if self.keep_journal:
            n = len(amount)
            self.journal.append(
                JournalChunk(
                    np.asarray(ts, np.int64),
                    np.full(n, a, np.int16),
                    src.astype(np.int64),
                    dst.astype(np.int64),
                    amount.astype(np.int64),
                    np.full(n, int(kind), np.int8),
                )
            )

    # --- convenience ------------------------------------------------------------------
    def deposit(self, account: int, asset: str, amount: int, ts: int = 0) -> None:
        """Money enters the venue from outside."""
        self.transfer(asset, OUTSIDE, account, amount, Kind.DEPOSIT, ts)

    def withdraw(self, account: int, asset: str, amount: int, ts: int = 0) -> None:
        """Money leaves the venue (the caller checks that it is allowed)."""
        self.transfer(asset, account, OUTSIDE, amount, Kind.WITHDRAW, ts)

    def total(self, asset: str | int, include_outside: bool = True) -> int:
        """Exact sum of one asset over all accounts."""
        a = asset if isinstance(asset, int) else self.asset(asset)
        s = exact_sum(self.balances[a, : self.n_accounts])
        s += sum(bal[a] for sid, bal in self.system.items() if include_outside or sid != OUTSIDE)
        return s

    def check(self, replay_journal: bool = False) -> None:
        """Prove conservation exactly; raise :class:`ConservationError` on any discrepancy."""
        for a, code in enumerate(self.assets):
            if self.total(a) != 0:
                raise ConservationError(f"{code}: sum over all accounts is {self.total(a)}, not 0")
            inside = self.total(a, include_outside=False)
            if inside != self.net_deposits[a]:
                raise ConservationError(f"{code}: {inside} held inside, but {self.net_deposits[a]} entered from outside")
        if replay_journal:
            if not self.keep_journal:
                raise ConservationError("journal replay requested, but this ledger keeps no journal")
            bal = np.zeros_like(self.balances)
            sys: dict[int, list[int]] = {sid: [0] * len(self.assets) for sid in self.system}
            for c in self.journal:
                for ids, sign in ((c.src, -1), (c.dst, 1)):
                    t = ids >= 0
                    np.add.at(bal, (c.asset[t].astype(np.int64), ids[t]), sign * c.amount[t])
                    for j in np.flatnonzero(~t).tolist():
                        sys[int(ids[j])][int(c.asset[j])] += sign * int(c.amount[j])
            if not np.array_equal(bal[:, : self.n_accounts], self.balances[:, : self.n_accounts]):
                raise ConservationError("journal replay does not reproduce trader balances")
            if sys != self.system:
                raise ConservationError("journal replay does not reproduce system balances")

    def journal_frame(self) -> dict[str, np.ndarray]:
        """The whole journal as columns (for recording and inspection)."""
        if not self.journal:
            return {k: np.zeros(0, np.int64) for k in ("ts", "asset", "src", "dst", "amount", "kind")}
        return {k: np.concatenate([getattr(c, k) for c in self.journal]) for k in ("ts", "asset", "src", "dst", "amount", "kind")}
