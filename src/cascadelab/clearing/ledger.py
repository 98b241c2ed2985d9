"""The double-entry ledger: every change of value moves between two accounts.

Trader accounts are indices ``0..n-1`` into int64 balance columns (one row per asset);
system accounts have negative ids and 96-bit balances (two int64 limbs, so totals such as
everything that entered from outside can exceed int64): ``OUTSIDE`` (deposits come from
it, withdrawals go to it), ``FEE_POOL``, ``SOCIALIZED_LOSS`` (bad debt nobody covered), and
any others registered by name (insurance funds, settlement, funding and lending pools).

Every transfer is one :data:`cascadelab.records.JOURNAL` record, written by
:func:`journal_transfer`, the one routine that moves value, used by Python callers and by
compiled kernels alike. :meth:`Ledger.check` proves conservation exactly: per asset, the
sum over all accounts is zero, and (optionally) replaying the journal reproduces every
balance.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cascadelab.arith import exact_sum, wide_add, wide_value
from cascadelab.compiled import kernel, kernel_inline
from cascadelab.records import JOURNAL, Kind

OUTSIDE, FEE_POOL, SOCIALIZED_LOSS = -1, -2, -3
M_NJOURNAL, M_KEEP, M_NTOUCHED, M_TOUCH_OVERFLOW = 0, 1, 2, 3


class LedgerError(ValueError):
    """A transfer that the ledger refuses (unknown account or asset, negative amount)."""


class ConservationError(AssertionError):
    """The ledger's books do not balance: a bug, never a user error."""


class LedgerArrays(NamedTuple):
    """The ledger's state as arrays, for compiled kernels."""

    bal: np.ndarray  # (assets, capacity) int64 trader balances
    sys_hi: np.ndarray  # (system capacity, assets) high limbs; system id s lives in row -s-1
    sys_lo: np.ndarray  # low limbs, 0 <= lo < 2**32
    journal: np.ndarray  # JOURNAL buffer
    touched: np.ndarray  # trader accounts whose balances or positions changed since the risk engine last looked
    meta: np.ndarray  # [records in the buffer, keep journal (0/1), touched count, touched overflowed (0/1)]


@kernel_inline
def _move(L, asset, acct, delta):
    if acct >= 0:
        L.bal[asset, acct] += delta
    else:
        wide_add(L.sys_hi, L.sys_lo, -acct - 1, asset, delta)


@kernel
def note_touched(L, account):
    """Remember that trader ``account``'s balances or positions changed (for incremental risk)."""
    if account < 0:
        return
    n = L.meta[M_NTOUCHED]
    if n < L.touched.shape[0]:
        L.touched[n] = account
        L.meta[M_NTOUCHED] = n + 1
    else:
        L.meta[M_TOUCH_OVERFLOW] = 1


@kernel
def journal_transfer(L, ts, asset, src, dst, amount, kind):
    """Move ``amount`` (> 0) of ``asset`` from ``src`` to ``dst`` and journal it (caller checked room)."""
    if amount == 0:
        return
    _move(L, asset, src, -amount)
    _move(L, asset, dst, amount)
    note_touched(L, src)
    note_touched(L, dst)
    if L.meta[M_KEEP]:
        j = L.meta[M_NJOURNAL]
        r = L.journal[j]
        r.ts = ts
        r.src = src
        r.dst = dst
        r.amount = amount
        r.asset = asset
        r.kind = kind
        L.meta[M_NJOURNAL] = j + 1


@kernel_inline
def journal_room(L):
    """Journal records that still fit in the buffer (unbounded when no journal is kept)."""
    if L.meta[M_KEEP] == 0:
        return 1 << 62
    return L.journal.shape[0] - L.meta[M_NJOURNAL]


@kernel
def _transfer_batch(L, ts, asset, src, dst, amount, kind, start):
    for j in range(start, amount.shape[0]):
        if journal_room(L) < 1:
            return j
        journal_transfer(L, ts, asset, src[j], dst[j], amount[j], kind)
    return amount.shape[0]


class Ledger:
    """Balances of every account in every asset, changed only by journalled transfers."""

    def __init__(self, assets: list[str], n_accounts: int = 0, journal: bool = True, journal_buffer: int = 1 << 16) -> None:
        if len(set(assets)) != len(assets) or not assets:
            raise LedgerError(f"assets must be a non-empty list without repeats, got {assets}")
        self.assets = list(assets)
        self.asset_index = {a: i for i, a in enumerate(assets)}
        self.n_accounts = 0
        self.system_names: dict[int, str] = {OUTSIDE: "outside", FEE_POOL: "fee_pool", SOCIALIZED_LOSS: "socialized_loss"}
        self.system_ids: dict[str, int] = {v: k for k, v in self.system_names.items()}
        self.keep_journal = journal
        self.journal: list[np.ndarray] = []
        na = len(assets)
        self.arrays = LedgerArrays(
            np.zeros((na, max(n_accounts, 1)), np.int64),
            np.zeros((8, na), np.int64),
            np.zeros((8, na), np.int64),
            np.zeros(journal_buffer if journal else 1, JOURNAL),
            np.zeros(1 << 18, np.int64),
            np.array([0, int(journal), 0, 0], np.int64),
        )
        if n_accounts:
            self.add_accounts(n_accounts)

    @property
    def balances(self) -> np.ndarray:
        """Trader balances, (assets, capacity); columns beyond ``n_accounts`` are unused."""
        return self.arrays.bal

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
        bal = self.arrays.bal
        if need > bal.shape[1]:
            grown = np.zeros((len(self.assets), max(need, 2 * bal.shape[1])), np.int64)
            grown[:, : bal.shape[1]] = bal
            self.arrays = self.arrays._replace(bal=grown)
        self.n_accounts = need
        return np.arange(start, need, dtype=np.int64)

    def system_account(self, name: str) -> int:
        """Id of a named system account, created on first use."""
        if name not in self.system_ids:
            sid = min(self.system_names) - 1
            self.system_names[sid] = name
            self.system_ids[name] = sid
            rows = self.arrays.sys_hi.shape[0]
            if -sid > rows:
                hi = np.zeros((2 * rows, len(self.assets)), np.int64)
                lo = np.zeros_like(hi)
                hi[:rows], lo[:rows] = self.arrays.sys_hi, self.arrays.sys_lo
                self.arrays = self.arrays._replace(sys_hi=hi, sys_lo=lo)
        return self.system_ids[name]

    def _asset_id(self, asset: str | int) -> int:
        if isinstance(asset, (int, np.integer)):
            if not 0 <= int(asset) < len(self.assets):
                raise LedgerError(f"unknown asset index {asset}")
            return int(asset)
        return self.asset(asset)

    def balance(self, account: int, asset: str | int) -> int:
        """Balance of one account in one asset (a Python int)."""
        a = self._asset_id(asset)
        account = int(account)
        if account < 0:
            if account not in self.system_names:
                raise LedgerError(f"unknown system account {account}")
            return wide_value(self.arrays.sys_hi[-account - 1, a], self.arrays.sys_lo[-account - 1, a])
        self._check_trader(account)
        return int(self.arrays.bal[a, account])

    def system_balances(self, asset: str | int) -> dict[str, int]:
        """Every system account's balance in one asset, by name."""
        a = self._asset_id(asset)
        return {name: self.balance(sid, a) for sid, name in self.system_names.items()}

    def _check_trader(self, account: int) -> None:
        if not 0 <= account < self.n_accounts:
            raise LedgerError(f"unknown account {account}")

    def _check_ids(self, ids: np.ndarray) -> None:
        sys_ids = np.unique(ids[ids < 0])
        unknown = [int(s) for s in sys_ids if int(s) not in self.system_names]
        if unknown:
            raise LedgerError(f"unknown system account(s) {unknown}")
        if len(ids) and ids.max() >= self.n_accounts:
            raise LedgerError(f"unknown account {int(ids.max())}")

    # --- transfers ---------------------------------------------------------------------
    def transfer(self, asset: str | int, src: int, dst: int, amount: int, kind: Kind, ts: int = 0) -> None:
        """Move ``amount`` (>= 0) of ``asset`` from ``src`` to ``dst``. Balances may go negative."""
        self.transfer_many(asset, np.array([src]), np.array([dst]), np.array([int(amount)]), kind, ts)

    def transfer_many(
        self, asset: str | int, src: np.ndarray, dst: np.ndarray, amount: np.ndarray, kind: Kind, ts: int = 0
    ) -> None:
        """Vectorized :meth:`transfer`: entry ``j`` moves ``amount[j]`` from ``src[j]`` to ``dst[j]``."""
        a = self._asset_id(asset)
        src = np.ascontiguousarray(src, np.int64)
        dst = np.ascontiguousarray(dst, np.int64)
        amount = np.ascontiguousarray(amount, np.int64)
        if not (src.shape == dst.shape == amount.shape):
            raise LedgerError("src, dst and amount must have the same shape")
        if (amount < 0).any():
            raise LedgerError(f"transfer amounts must be >= 0, got {int(amount.min())}")
        self._check_ids(src)
        self._check_ids(dst)
        j = 0
        while True:
            j = _transfer_batch(self.arrays, np.int64(ts), a, src, dst, amount, int(kind), j)
            if j >= len(amount):
                return
            self.flush_journal()

    def take_touched(self) -> np.ndarray | None:
        """Accounts noted as changed since the last call (unique, ascending), then forgotten; None if too many to list."""
        m = self.arrays.meta
        n, overflow = int(m[M_NTOUCHED]), bool(m[M_TOUCH_OVERFLOW])
        out = None if overflow else np.unique(self.arrays.touched[:n])
        m[M_NTOUCHED] = 0
        m[M_TOUCH_OVERFLOW] = 0
        return out

    def note(self, accounts: np.ndarray) -> None:
        """Note changes made outside the transfer routine (positions, isolated margin, debts) for incremental risk."""
        for i in np.asarray(accounts, np.int64).ravel().tolist():
            note_touched(self.arrays, i)

    def flush_journal(self) -> None:
        """Move the journal buffer's records to the journal (compiled kernels call for this when full)."""
        n = int(self.arrays.meta[M_NJOURNAL])
        if n:
            self.journal.append(self.arrays.journal[:n].copy())
            self.arrays.meta[M_NJOURNAL] = 0

    def ensure_journal_room(self, records: int) -> None:
        """Make sure the buffer can take ``records`` more (flushing, then growing)."""
        if not self.keep_journal:
            return
        if self.arrays.journal.shape[0] - int(self.arrays.meta[M_NJOURNAL]) < records:
            self.flush_journal()
        if self.arrays.journal.shape[0] < records:
            self.arrays = self.arrays._replace(journal=np.zeros(2 * records, JOURNAL))

    # --- convenience ------------------------------------------------------------------
    def deposit(self, account: int, asset: str, amount: int, ts: int = 0) -> None:
        """Money enters the venue from outside."""
        self.transfer(asset, OUTSIDE, account, amount, Kind.DEPOSIT, ts)

    def withdraw(self, account: int, asset: str, amount: int, ts: int = 0) -> None:
        """Money leaves the venue (the caller checks that it is allowed)."""
        self.transfer(asset, account, OUTSIDE, amount, Kind.WITHDRAW, ts)

    def total(self, asset: str | int, include_outside: bool = True) -> int:
        """Exact sum of one asset over all accounts."""
        a = self._asset_id(asset)
        s = exact_sum(self.arrays.bal[a, : self.n_accounts])
        s += sum(self.balance(sid, a) for sid in self.system_names if include_outside or sid != OUTSIDE)
        return s

    def journal_records(self) -> np.ndarray:
        """The whole journal as one JOURNAL record array (flushes the buffer first)."""
        self.flush_journal()
        if not self.journal:
            return np.zeros(0, JOURNAL)
        return np.concatenate(self.journal)

    def check(self, replay_journal: bool = False) -> None:
        """Prove conservation exactly; raise :class:`ConservationError` on any discrepancy."""
        for a, code in enumerate(self.assets):
            if self.total(a) != 0:
                raise ConservationError(f"{code}: sum over all accounts is {self.total(a)}, not 0")
        if not replay_journal:
            return
        if not self.keep_journal:
            raise ConservationError("journal replay requested, but this ledger keeps no journal")
        j = self.journal_records()
        if len(self.journal) > 1:
            self.journal = [j]
        bal = np.zeros_like(self.arrays.bal)
        for ids, sign in ((j["src"], -1), (j["dst"], 1)):
            t = ids >= 0
            np.add.at(bal, (j["asset"][t].astype(np.int64), ids[t]), sign * j["amount"][t])
        if not np.array_equal(bal[:, : self.n_accounts], self.arrays.bal[:, : self.n_accounts]):
            raise ConservationError("journal replay does not reproduce trader balances")
        for sid in self.system_names:
            for a in range(len(self.assets)):
                got = exact_sum(j["amount"][(j["dst"] == sid) & (j["asset"] == a)])
                got -= exact_sum(j["amount"][(j["src"] == sid) & (j["asset"] == a)])
                if got != self.balance(sid, a):
                    raise ConservationError(f"journal replay does not reproduce {self.system_names[sid]} in {self.assets[a]}")
