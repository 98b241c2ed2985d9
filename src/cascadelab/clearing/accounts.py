"""The account table: one column per account, one row per instrument or asset.

Struct of arrays, so a margin scan over a million accounts is a pass over a few
contiguous int64 rows. Money is in 1e-8 units of the instrument's quote asset; sizes in
lots. The *cost* of a position is its signed entry notional (size x entry price): the
average entry price is ``cost / (size * unit_notional)`` and is never rounded.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np


class AccountState(IntEnum):
    """Lifecycle of an account under the risk engine."""

    NORMAL = 0
    LIQUIDATING = 1
    TAKEN_OVER = 2
    BANKRUPT = 3


class MarginMode(IntEnum):
    """Cross: the position shares the account's collateral. Isolated: it has its own margin."""

    CROSS = 0
    ISOLATED = 1


class AccountArrays(NamedTuple):
    """The account table's columns, for compiled kernels (capacity-wide; ``AccountTable.n`` are live)."""

    size: np.ndarray  # (perps, cap) lots, signed
    cost: np.ndarray  # (perps, cap) signed entry notional
    realized: np.ndarray  # (perps, cap) realized PnL to date
    leverage: np.ndarray  # (perps, cap) chosen leverage
    isolated: np.ndarray  # (perps, cap) bool
    iso_margin: np.ndarray  # (perps, cap) margin earmarked for an isolated position (quote asset)
    debt: np.ndarray  # (assets, cap) loans outstanding
    state: np.ndarray  # (cap,) AccountState
    reserved: np.ndarray  # (cap,) initial margin held by open perpetual orders (the venue keeps it current)


class AccountTable:
    """Positions, leverage, margin mode, isolated margin, debts, state and reserved margin of every account."""

    def __init__(self, n_instruments: int, n_assets: int, capacity: int = 16, default_leverage: int = 20) -> None:
        self.n = 0
        self.default_leverage = default_leverage
        k, a, c = n_instruments, n_assets, max(capacity, 1)
        self.arrays = AccountArrays(
            size=np.zeros((k, c), np.int64),
            cost=np.zeros((k, c), np.int64),
            realized=np.zeros((k, c), np.int64),
            leverage=np.full((k, c), default_leverage, np.int64),
            isolated=np.zeros((k, c), np.bool_),
            iso_margin=np.zeros((k, c), np.int64),
            debt=np.zeros((a, c), np.int64),
            state=np.zeros(c, np.int8),
            reserved=np.zeros(c, np.int64),
        )

    # columns by name (capacity-wide views; the first ``n`` are live accounts)
    @property
    def size(self) -> np.ndarray:
        """Signed position sizes in lots, (perps, capacity)."""
        return self.arrays.size

    @property
    def cost(self) -> np.ndarray:
        """Signed entry notionals, (perps, capacity)."""
        return self.arrays.cost

    @property
    def realized(self) -> np.ndarray:
        """Realized PnL to date per position, (perps, capacity)."""
        return self.arrays.realized

    @property
    def leverage(self) -> np.ndarray:
        """Chosen leverage per position, (perps, capacity)."""
        return self.arrays.leverage

    @property
    def isolated(self) -> np.ndarray:
        """Isolated-margin flag per position, (perps, capacity)."""
        return self.arrays.isolated

    @property
    def iso_margin(self) -> np.ndarray:
        """Isolated margin per position, (perps, capacity)."""
        return self.arrays.iso_margin

    @property
    def debt(self) -> np.ndarray:
        """Outstanding loans per asset, (assets, capacity)."""
        return self.arrays.debt

    @property
    def state(self) -> np.ndarray:
        """AccountState per account, (capacity,)."""
        return self.arrays.state

    @property
    def reserved(self) -> np.ndarray:
        """Initial margin held by open perpetual orders, (capacity,)."""
        return self.arrays.reserved

    def add(self, n: int) -> np.ndarray:
        """Append ``n`` empty accounts; returns their ids (aligned with the ledger's)."""
        need = self.n + n
        cap = self.arrays.state.shape[0]
        if need > cap:
            new_cap = max(need, 2 * cap)
            grown = {}
            for name, old in self.arrays._asdict().items():
                fill = self.default_leverage if name == "leverage" else 0
                new = np.full((*old.shape[:-1], new_cap), fill, old.dtype)
                new[..., :cap] = old
                grown[name] = new
            self.arrays = AccountArrays(**grown)
        ids = np.arange(self.n, need, dtype=np.int64)
        self.n = need
        return ids

    def view(self, name: str) -> np.ndarray:
        """A column trimmed to the live accounts."""
        return getattr(self.arrays, name)[..., : self.n]

    def iso_total(self, i: int) -> int:
        """Margin earmarked for account ``i``'s isolated positions (out of its quote balance)."""
        return int(self.arrays.iso_margin[:, i].sum())
