"""Funding payments: exactly zero-sum through a per-perpetual funding pool.

Payers pay their exact amount rounded up into the pool; the pool then pays out exactly
what it collected to the receivers, in proportion to their notional (largest remainder,
ties to the lower account id). Isolated positions pay and receive out of their own margin.
"""

from __future__ import annotations

import numpy as np

from cascadelab.arith import exact_sum, largest_remainder, muldiv_vec
from cascadelab.clearing.core import ClearingCore
from cascadelab.records import Kind

FUNDING_SCALE = 10**8
"""Funding rates are integers in 1e-8 (Binance publishes them to 8 decimals)."""


class Funding:
    """Pays funding for the perpetuals of one clearing core."""

    def __init__(self, core: ClearingCore) -> None:
        self.core = core
        self.pools = [core.ledger.system_account(f"funding:{p.instrument.symbol}") for p in core.perps]

    def pay(self, symbol: str, rate: int, mark_ticks: int, ts: int = 0) -> np.ndarray:
        """Pay funding at ``rate`` (1e-8 units; > 0: longs pay shorts) on notional at ``mark_ticks``.

        Returns the signed payment per account (positive = paid).
        """
        c = self.core
        k = c.perp(symbol)
        n = c.accounts.n
        acc = c.accounts.arrays
        size = acc.size[k, :n]
        out = np.zeros(n, np.int64)
        r = abs(int(rate))
        payer_mask = (size > 0) if rate > 0 else (size < 0)
        recv_mask = (size < 0) if rate > 0 else (size > 0)
        if r == 0 or not payer_mask.any() or not recv_mask.any():
            return out
        notional = np.abs(size) * int(mark_ticks) * int(c.units[k])
        payers = np.flatnonzero(payer_mask)
        pay = muldiv_vec(notional[payers], r, FUNDING_SCALE, ceil=True)
        receivers = np.flatnonzero(recv_mask)
        recv = largest_remainder(exact_sum(pay), notional[receivers], tiebreak=receivers)
        pool = self.pools[k]
        keep = pay > 0
        c.ledger.transfer_many(c.q, payers[keep], np.full(int(keep.sum()), pool), pay[keep], Kind.FUNDING, ts)
        keep = recv > 0
        c.ledger.transfer_many(c.q, np.full(int(keep.sum()), pool), receivers[keep], recv[keep], Kind.FUNDING, ts)
        out[payers] = pay
        out[receivers] = -recv
        iso = acc.isolated[k, :n]
        acc.iso_margin[k, :n][iso] -= out[iso]
        return out
