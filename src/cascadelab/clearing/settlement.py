"""Settlement of fills: positions, cost basis, realized PnL, isolated margin, fees, spot delivery.

One fill settles in a fixed order, which is also the order of its journal records:

* perpetual: the maker's position, then the taker's (:func:`apply_fill`); the maker's
  realized PnL (settlement pool <-> maker), the taker's; the maker's fee (maker <-> fee
  pool; a rebate flows back), the taker's; then each side's isolated margin, if isolated;
* spot: the quote notional from buyer to seller, the base from seller to buyer, the
  maker's fee, the taker's (both in the quote asset).

Fees are :func:`cascadelab.fees.fee` (rounded toward the venue), computed by the caller. The compiled functions here are what the
venue's batch path runs; :class:`ReferenceSettlement` is the same thing in plain Python,
one fill at a time, kept as the reference the compiled path is tested against.
"""

from __future__ import annotations

import numpy as np

from cascadelab.arith import ceil_div, muldiv_floor, muldiv_trunc
from cascadelab.clearing.core import ClearingCore
from cascadelab.clearing.ledger import FEE_POOL, Ledger, journal_transfer, note_touched
from cascadelab.compiled import kernel, kernel_inline
from cascadelab.fees import fee
from cascadelab.records import FILL, FillKind, Kind


# --- compiled ----------------------------------------------------------------------------
@kernel
def apply_fill(size, cost, realized, i, dq, price, unit):
    """Apply one fill of signed ``dq`` lots at ``price`` ticks to account ``i``; return realized PnL.

    Closing ``c`` lots removes ``trunc(cost x c / |size|)`` of the cost (all of it when the
    position closes) and realizes ``-closed x price x unit - removed``; opening adds
    ``dq x price x unit``. Over a position's life realized PnL equals its cash flows exactly.
    """
    q = size[i]
    pnl = 0
    if q != 0 and (q > 0) != (dq > 0):
        c = min(abs(dq), abs(q))
        closed = c if dq > 0 else -c
        removed = cost[i] if c == abs(q) else muldiv_trunc(cost[i], c, abs(q))
        pnl = -closed * price * unit - removed
        size[i] = q + closed
        cost[i] -= removed
        realized[i] += pnl
        dq -= closed
    if dq != 0:
        size[i] += dq
        cost[i] += dq * price * unit
    return pnl


@kernel_inline
def _signed_transfer(L, ts, asset, account, other, amount, kind):
    """``amount`` > 0 moves from ``account`` to ``other``; < 0 the other way."""
    if amount > 0:
        journal_transfer(L, ts, asset, account, other, amount, kind)
    elif amount < 0:
        journal_transfer(L, ts, asset, other, account, -amount, kind)


@kernel
def _isolated_after(A, unit, k, i, d, before, pnl, fee_paid, price):
    """An isolated position's margin after a fill: PnL and fee hit it, closing releases, opening allocates."""
    if not A.isolated[k, i]:
        return
    after = before + d
    m = A.iso_margin[k, i] + pnl - fee_paid
    if before != 0 and (before > 0) != (d > 0):
        closed = min(abs(d), abs(before))
        m -= m if closed == abs(before) else muldiv_floor(m, closed, abs(before))
    opened = abs(after) - abs(before) if (after > 0) == (before > 0) or before == 0 else abs(after)
    if opened > 0 and after != 0:
        m += ceil_div(opened * price * unit, A.leverage[k, i])
    A.iso_margin[k, i] = m


@kernel
def settle_perp_fill(L, A, unit, k, pool, quote, ts, maker, taker, aggressor, price, qty, mf, tf):
    """Settle one perpetual fill (journal: 4 records at most); returns (maker PnL, taker PnL)."""
    dq = aggressor * qty
    note_touched(L, maker)
    note_touched(L, taker)
    before_m = A.size[k, maker]
    pnl_m = apply_fill(A.size[k], A.cost[k], A.realized[k], maker, -dq, price, unit)
    before_t = A.size[k, taker]
    pnl_t = apply_fill(A.size[k], A.cost[k], A.realized[k], taker, dq, price, unit)
    _signed_transfer(L, ts, quote, pool, maker, pnl_m, 4)  # Kind.REALIZED_PNL
    _signed_transfer(L, ts, quote, pool, taker, pnl_t, 4)
    _signed_transfer(L, ts, quote, maker, FEE_POOL, mf, 3)  # Kind.TRADE_FEE
    _signed_transfer(L, ts, quote, taker, FEE_POOL, tf, 3)
    _isolated_after(A, unit, k, maker, -dq, before_m, pnl_m, mf, price)
    _isolated_after(A, unit, k, taker, dq, before_t, pnl_t, tf, price)
    return pnl_m, pnl_t


@kernel
def settle_spot_fill(L, quote, base, lot_units, unit, ts, maker, taker, aggressor, price, qty, mf, tf):
    """Deliver one spot fill (journal: 4 records at most)."""
    buyer = taker if aggressor == 1 else maker
    seller = maker if aggressor == 1 else taker
    journal_transfer(L, ts, quote, buyer, seller, price * qty * unit, 6)  # Kind.SPOT_TRADE
    journal_transfer(L, ts, base, seller, buyer, qty * lot_units, 6)
    _signed_transfer(L, ts, quote, maker, FEE_POOL, mf, 3)
    _signed_transfer(L, ts, quote, taker, FEE_POOL, tf, 3)


@kernel
def settle_auction(L, A, unit, k, pool, quote, ts, buyers, buy_qty, sellers, sell_qty, price, out_buyer, out_seller, out_qty):
    """Cross every buyer with every seller at one price, in account order, with no fees; returns the fill count.

    Buyers and sellers are paired greedily (the first buyer against the first sellers until
    it is filled, and so on), each pair one fill settled by :func:`settle_perp_fill` with the
    seller as maker. The total bought must equal the total sold.
    """
    i = 0
    j = 0
    n = 0
    rb = buy_qty[0] if buyers.shape[0] else 0
    rs = sell_qty[0] if sellers.shape[0] else 0
    while i < buyers.shape[0] and j < sellers.shape[0]:
        q = min(rb, rs)
        settle_perp_fill(L, A, unit, k, pool, quote, ts, sellers[j], buyers[i], 1, price, q, 0, 0)
        out_buyer[n] = buyers[i]
        out_seller[n] = sellers[j]
        out_qty[n] = q
        n += 1
        rb -= q
        rs -= q
        if rb == 0:
            i += 1
            rb = buy_qty[i] if i < buyers.shape[0] else 0
        if rs == 0:
            j += 1
            rs = sell_qty[j] if j < sellers.shape[0] else 0
    return n


# --- the plain-Python reference ------------------------------------------------------------
class ReferenceSettlement:
    """The same settlement, one fill at a time in plain Python integers (the reference)."""

    def __init__(self, ledger: Ledger, accounts: object) -> None:
        self.ledger = ledger
        self.accounts = accounts

    @staticmethod
    def _apply(size: list[int] | object, cost: object, realized: object, i: int, dq: int, price: int, unit: int) -> int:
        q = int(size[i])  # type: ignore[index]
        pnl = 0
        if q != 0 and (q > 0) != (dq > 0):
            c = min(abs(dq), abs(q))
            closed = c if dq > 0 else -c
            cst = int(cost[i])  # type: ignore[index]
            removed = cst if c == abs(q) else (abs(cst) * c // abs(q)) * (1 if cst >= 0 else -1)
            pnl = -closed * price * unit - removed
            size[i] = q + closed  # type: ignore[index]
            cost[i] = cst - removed  # type: ignore[index]
            realized[i] = int(realized[i]) + pnl  # type: ignore[index]
            dq -= closed
        if dq != 0:
            size[i] = int(size[i]) + dq  # type: ignore[index]
            cost[i] = int(cost[i]) + dq * price * unit  # type: ignore[index]
        return pnl

    def _pay(self, asset: int, account: int, other: int, amount: int, kind: Kind, ts: int) -> None:
        if amount > 0:
            self.ledger.transfer(asset, account, other, amount, kind, ts)
        elif amount < 0:
            self.ledger.transfer(asset, other, account, -amount, kind, ts)

    def _isolated(self, unit: int, k: int, i: int, d: int, before: int, pnl: int, fee_paid: int, price: int) -> None:
        acc = self.accounts.arrays  # type: ignore[attr-defined]
        if not acc.isolated[k, i]:
            return
        after = before + d
        m = int(acc.iso_margin[k, i]) + pnl - fee_paid
        if before != 0 and (before > 0) != (d > 0):
            closed = min(abs(d), abs(before))
            m -= m if closed == abs(before) else (m * closed) // abs(before)
        opened = abs(after) - abs(before) if (after > 0) == (before > 0) or before == 0 else abs(after)
        if opened > 0 and after != 0:
            m += -((-opened * price * unit) // int(acc.leverage[k, i]))
        acc.iso_margin[k, i] = m

    def perp(
        self,
        unit: int,
        k: int,
        pool: int,
        quote: int,
        ts: int,
        maker: int,
        taker: int,
        aggressor: int,
        price: int,
        qty: int,
        mf: int,
        tf: int,
    ) -> tuple[int, int]:
        """Settle one perpetual fill; returns (maker PnL, taker PnL)."""
        acc = self.accounts.arrays  # type: ignore[attr-defined]
        dq = aggressor * qty
        self.ledger.note(np.array([maker, taker]))
        before_m = int(acc.size[k, maker])
        pnl_m = self._apply(acc.size[k], acc.cost[k], acc.realized[k], maker, -dq, price, unit)
        before_t = int(acc.size[k, taker])
        pnl_t = self._apply(acc.size[k], acc.cost[k], acc.realized[k], taker, dq, price, unit)
        self._pay(quote, pool, maker, pnl_m, Kind.REALIZED_PNL, ts)
        self._pay(quote, pool, taker, pnl_t, Kind.REALIZED_PNL, ts)
        self._pay(quote, maker, FEE_POOL, mf, Kind.TRADE_FEE, ts)
        self._pay(quote, taker, FEE_POOL, tf, Kind.TRADE_FEE, ts)
        self._isolated(unit, k, maker, -dq, before_m, pnl_m, mf, price)
        self._isolated(unit, k, taker, dq, before_t, pnl_t, tf, price)
        return pnl_m, pnl_t

    def spot(
        self,
        quote: int,
        base: int,
        lot_units: int,
        unit: int,
        ts: int,
        maker: int,
        taker: int,
        aggressor: int,
        price: int,
        qty: int,
        mf: int,
        tf: int,
    ) -> None:
        """Deliver one spot fill."""
        buyer, seller = (taker, maker) if aggressor == 1 else (maker, taker)
        self.ledger.transfer(quote, buyer, seller, price * qty * unit, Kind.SPOT_TRADE, ts)
        self.ledger.transfer(base, seller, buyer, qty * lot_units, Kind.SPOT_TRADE, ts)
        self._pay(quote, maker, FEE_POOL, mf, Kind.TRADE_FEE, ts)
        self._pay(quote, taker, FEE_POOL, tf, Kind.TRADE_FEE, ts)


class Settlement:
    """Settlement pools and the reference (per-fill Python) settlement of book fills.

    Each perpetual has a settlement pool (a system account) that pays realized PnL; it always
    holds exactly minus the open cost basis (the unrealized PnL it owes). Instrument ids in
    the FILL records are venue ids: perpetual ``k`` is ``k``, spot pair ``j`` is ``len(perps) + j``.
    """

    def __init__(self, core: ClearingCore) -> None:
        self.core = core
        self.pools = np.array([core.ledger.system_account(f"settlement:{p.instrument.symbol}") for p in core.perps], np.int64)
        self.reference = ReferenceSettlement(core.ledger, core.accounts)

    def perp_fills(
        self,
        k: int,
        fills: np.ndarray,
        kind: FillKind = FillKind.TRADE,
        maker_rate: int | None = None,
        taker_rate: int | None = None,
    ) -> np.ndarray:
        """Settle BOOK_FILL records of perpetual ``k`` one at a time; returns FILL records.

        ``maker_rate``/``taker_rate`` override the instrument's fee rates (0 for takeovers and ADL).
        """
        c = self.core
        inst = c.perps[k].instrument
        mr = inst.maker_rate if maker_rate is None else maker_rate
        tr = inst.taker_rate if taker_rate is None else taker_rate
        unit = int(c.units[k])
        out = np.zeros(len(fills), FILL)
        for j, f in enumerate(fills):
            m, t, price, qty, agg, ts = (int(f[x]) for x in ("maker_owner", "taker_owner", "price", "qty", "aggressor", "ts"))
            for acct in (m, t):
                c.acct(acct)
            notional = price * qty * unit
            mf, tf = fee(notional, mr), fee(notional, tr)
            pm, pt = self.reference.perp(unit, k, int(self.pools[k]), c.q, ts, m, t, agg, price, qty, mf, tf)
            out[j] = (ts, f["maker_id"], f["taker_id"], m, t, price, qty, mf, tf, pm, pt, k, agg, kind)
        return out

    def spot_fills(self, j: int, fills: np.ndarray, kind: FillKind = FillKind.TRADE) -> np.ndarray:
        """Deliver BOOK_FILL records of spot pair ``j`` one at a time; returns FILL records."""
        c = self.core
        s = c.spots[j]
        qa, ba = c.ledger.asset(s.quote), c.ledger.asset(s.base)
        out = np.zeros(len(fills), FILL)
        for r, f in enumerate(fills):
            m, t, price, qty, agg, ts = (int(f[x]) for x in ("maker_owner", "taker_owner", "price", "qty", "aggressor", "ts"))
            notional = price * qty * s.unit_notional
            mf, tf = fee(notional, s.maker_rate), fee(notional, s.taker_rate)
            self.reference.spot(qa, ba, int(s.lot_units or 0), s.unit_notional, ts, m, t, agg, price, qty, mf, tf)
            out[r] = (ts, f["maker_id"], f["taker_id"], m, t, price, qty, mf, tf, 0, 0, len(c.perps) + j, agg, kind)
        return out
