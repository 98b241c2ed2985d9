"""Exact position accounting for perpetuals: size, cost basis, realized PnL.

A position holds ``size`` (lots, signed) and ``cost`` (signed entry notional in money
units). A fill of signed quantity ``dq`` at price ``p`` first closes what it can of the
opposite position, then opens the rest:

* closing ``c`` lots removes ``trunc(cost * c / |size|)`` of the cost and realizes
  ``-closed_dq * p * unit - removed``; closing the whole position removes all its cost,
  so over a position's life realized PnL equals its cash flows to the unit;
* opening adds ``dq * p * unit`` to the cost.

Summed over all accounts, realized PnL equals the total open cost, so the settlement pool
that pays it always holds exactly ``-sum(cost)``: the unrealized PnL of all open positions.
"""

from __future__ import annotations

from numba import njit

from cascadelab.clearing.arith import muldiv_trunc


@njit(cache=True)
def apply_fill(size, cost, realized, i, dq, price, unit):
    """Apply one fill of signed ``dq`` lots at ``price`` ticks to account ``i``; return realized PnL."""
    q = size[i]
    pnl = 0
    if q != 0 and (q > 0) != (dq > 0):
        c = min(abs(dq), abs(q))
        closed = c if dq > 0 else -c
        if c == abs(q):
            removed = cost[i]
        else:
            removed = muldiv_trunc(cost[i], c, abs(q))
        pnl = -closed * price * unit - removed
        size[i] = q + closed
        cost[i] -= removed
        realized[i] += pnl
        dq -= closed
    if dq != 0:
        size[i] += dq
        cost[i] += dq * price * unit
    return pnl


@njit(cache=True)
def apply_fills(
    size, cost, realized, maker, taker, aggressor, price, qty, unit, pnl_maker, pnl_taker, size_before_maker, size_before_taker
):
    """Apply a batch of fills in order; records each side's realized PnL and prior size."""
    for j in range(len(qty)):
        m = maker[j]
        t = taker[j]
        dq = aggressor[j] * qty[j]
        size_before_maker[j] = size[m]
        pnl_maker[j] = apply_fill(size, cost, realized, m, -dq, price[j], unit)
        size_before_taker[j] = size[t]
        pnl_taker[j] = apply_fill(size, cost, realized, t, dq, price[j], unit)
