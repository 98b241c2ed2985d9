"""The account table: one column per account, one row per instrument or asset.

Struct of arrays, so a margin scan over a million accounts is a pass over a few
contiguous int64 rows. Money is in 1e-8 units of the instrument's quote asset; sizes in
lots. The *cost* of a position is its signed entry notional (size x entry price): the
average entry price is ``cost / (size * unit_notional)`` and is never rounded.
"""

from __future__ import annotations

from enum import IntEnum

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


class AccountTable:
    """Positions, leverage, margin mode, isolated margin, debts and state for every account."""

    def __init__(self, n_instruments: int, n_assets: int, capacity: int = 16, default_leverage: int = 20) -> None:
        self.n = 0
        self.default_leverage = default_leverage
        k, a, c = n_instruments, n_assets, max(capacity, 1)
        self.size = np.zeros((k, c), np.int64)
        self.cost = np.zeros((k, c), np.int64)
        self.realized = np.zeros((k, c), np.int64)
        self.leverage = np.full((k, c), default_leverage, np.int64)
        self.isolated = np.zeros((k, c), np.bool_)
        self.iso_margin = np.zeros((k, c), np.int64)
        self.debt = np.zeros((a, c), np.int64)
        self.state = np.zeros(c, np.int8)

    _COLUMNS = ("size", "cost", "realized", "leverage", "isolated", "iso_margin", "debt", "state")

    def add(self, n: int) -> np.ndarray:
        """Append ``n`` empty accounts; returns their ids (aligned with the ledger's)."""
        need = self.n + n
        cap = self.state.shape[0]
        if need > cap:
            new_cap = max(need, 2 * cap)
            for name in self._COLUMNS:
                old = getattr(self, name)
                fill = self.default_leverage if name == "leverage" else 0
                new = np.full((*old.shape[:-1], new_cap), fill, old.dtype)
                new[..., :cap] = old
                setattr(self, name, new)
        ids = np.arange(self.n, need, dtype=np.int64)
        self.n = need
        return ids

    def view(self, name: str) -> np.ndarray:
        """A column trimmed to the live accounts."""
        return getattr(self, name)[..., : self.n]
