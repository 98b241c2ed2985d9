"""The reference venue: order entry one order at a time in plain Python.

:class:`ReferenceVenue` is a :class:`~cascadelab.venue.venue.Venue` whose batch path is
replaced by the obvious loop: for each request, validate it in Python, send it to its
book (the array book, itself tested against :class:`~cascadelab.book.ReferenceBook`),
then release open-order tallies, settle each fill with
:class:`~cascadelab.clearing.settlement.ReferenceSettlement`, cancel stale reduce-only
orders and refresh reserved margin, in the order documented in
:mod:`cascadelab.venue.entry`. The compiled path must give identical acks, fills,
cancels, balances, positions and journal; the differential tests check that.
"""

from __future__ import annotations

import numpy as np

from cascadelab.book import kernels as BK
from cascadelab.book.fast import op_record
from cascadelab.clearing.accounts import AccountState
from cascadelab.fees import fee
from cascadelab.records import (
    CANCEL,
    FILL,
    FLAG_LIQUIDATION,
    FLAG_REDUCE_ONLY,
    FLAG_UNWIND,
    TIF,
    CancelReason,
    FillKind,
    Op,
    Reject,
    Status,
)
from cascadelab.units import RATE_SCALE
from cascadelab.venue import entry as E
from cascadelab.venue.venue import Venue

_BOOK_REJECTS = {Status.REJECTED_POST_ONLY: Reject.POST_ONLY_WOULD_TAKE, Status.REJECTED_FOK: Reject.FOK_NOT_FILLABLE,
                 Status.REJECTED_NO_LIQUIDITY: Reject.NO_LIQUIDITY}  # fmt: skip


class ReferenceVenue(Venue):
    """Same API and results as :class:`Venue`; order entry is per-order Python (the reference)."""

    # --- open-order bookkeeping -------------------------------------------------------------
    def _per_lot(self, b: int, side: int, price: int) -> int:
        inst = self.instruments[b]
        if side == 1:
            v = price * inst.unit_notional
            return v + fee(v, inst.taker_rate)
        return int(inst.lot_units or 0)

    def _tally(self, b: int, owner: int, side: int, price: int, qty: int) -> None:
        o = self.orders
        inst = self.instruments[b]
        if b < self.n_perps:
            if side == 1:
                o.buy_qty[b, owner] += qty
                o.buy_notional[b, owner] += qty * price * inst.unit_notional
            else:
                o.sell_qty[b, owner] += qty
                o.sell_notional[b, owner] += qty * price * inst.unit_notional
        else:
            a = self.clearing.ledger.asset(inst.quote if side == 1 else inst.base)
            o.spot_reserved[a, owner] += qty * self._per_lot(b, side, price)

    def _order_margin(self, i: int) -> int:
        o, acc = self.orders, self.clearing.accounts.arrays
        total = 0
        for k in range(self.n_perps):
            bq, sq = int(o.buy_qty[k, i]), int(o.sell_qty[k, i])
            if bq == 0 and sq == 0:
                continue
            size = int(acc.size[k, i])
            inc_b = max(0, bq - max(0, -size))
            inc_s = max(0, sq - max(0, size))
            nb = int(o.buy_notional[k, i]) * inc_b // bq if bq else 0
            ns = int(o.sell_notional[k, i]) * inc_s // sq if sq else 0
            total += -(-max(nb, ns) // int(acc.leverage[k, i]))
        return total

    # --- validation ---------------------------------------------------------------------------
    def _check_perp(self, b: int, i: int, side: int, qty: int, worst: int, notional: int, reduce_only: bool) -> Reject:
        ch, o = self.clearing, self.orders
        acc = ch.accounts.arrays
        inst = self.instruments[b]
        size = int(acc.size[b, i])
        if reduce_only:
            if size == 0 or (size > 0) == (side > 0):
                return Reject.REDUCE_ONLY_WOULD_INCREASE
        elif notional < inst.min_notional_units:
            return Reject.BELOW_MIN_NOTIONAL
        buy_q = int(o.buy_qty[b, i]) + (qty if side == 1 else 0)
        sell_q = int(o.sell_qty[b, i]) + (qty if side == -1 else 0)
        worst_lots = max(abs(size + buy_q), abs(size - sell_q))
        limit = ch.perps[b].position_limit
        if limit is not None and worst_lots > limit:
            return Reject.POSITION_LIMIT
        if reduce_only:
            return Reject.OK
        mark = int(ch.marks[b]) or worst
        tiers = ch.perps[b].tiers
        if int(acc.leverage[b, i]) > tiers.max_leverage[tiers.tier(worst_lots * max(mark, worst) * inst.unit_notional)]:
            return Reject.LEVERAGE_EXCEEDS_TIER
        self._tally(b, i, side, worst, qty)
        reserved = self._order_margin(i)
        self._tally(b, i, side, worst, -qty)
        am = ch.account_margin(i)
        return Reject.OK if am.equity - am.initial - reserved >= 0 else Reject.INSUFFICIENT_MARGIN

    def _check_spot(self, b: int, i: int, side: int, qty: int, worst: int, notional: int) -> Reject:
        ch = self.clearing
        inst = self.instruments[b]
        if notional < inst.min_notional_units:
            return Reject.BELOW_MIN_NOTIONAL
        a = ch.ledger.asset(inst.quote if side == 1 else inst.base)
        free = int(ch.ledger.balances[a, i]) - int(self.orders.spot_reserved[a, i])
        if a == ch.q:
            free -= ch.accounts.iso_total(i)
        return Reject.OK if free >= qty * self._per_lot(b, side, worst) else Reject.INSUFFICIENT_BALANCE

    # --- after the book -----------------------------------------------------------------------
    def _book_output(self, b: int, own_id: int, touched: list[int], fills_out: list, cancels_out: list) -> None:
        ch = self.clearing
        book = self.books[b]
        bf, bc = book.take_output()
        for x in bc:
            if int(x["order_id"]) != own_id:
                self._tally(b, int(x["owner"]), int(x["side"]), int(x["price"]), -int(x["qty"]))
                touched.append(int(x["owner"]))
            cancels_out.append((x["ts"], x["order_id"], x["owner"], x["price"], x["qty"], b, x["side"], x["reason"]))
        inst = self.instruments[b]
        for f in bf:
            m, t, price, qty, agg = (int(f[k]) for k in ("maker_owner", "taker_owner", "price", "qty", "aggressor"))
            self._tally(b, m, -agg, price, -qty)
            notional = price * qty * inst.unit_notional
            mf, tf = fee(notional, inst.maker_rate), fee(notional, inst.taker_rate)
            pm = pt = 0
            if b < self.n_perps:
                pool = int(ch.settlement.pools[b])
                pm, pt = ch.settlement.reference.perp(
                    inst.unit_notional, b, pool, ch.q, int(f["ts"]), m, t, agg, price, qty, mf, tf
                )
            else:
                qa, ba = ch.ledger.asset(inst.quote), ch.ledger.asset(inst.base)
                ch.settlement.reference.spot(
                    qa, ba, int(inst.lot_units or 0), inst.unit_notional, int(f["ts"]), m, t, agg, price, qty, mf, tf
                )
            tfl = int(f["taker_flags"])
            kind = FillKind.TRADE
            if tfl & FLAG_LIQUIDATION:
                kind = FillKind.UNWIND if tfl & FLAG_UNWIND else FillKind.LIQUIDATION
            fills_out.append((f["ts"], f["maker_id"], f["taker_id"], m, t, price, qty, mf, tf, pm, pt, b, agg, kind))
            touched += [m, t]

    def _after_op(self, b: int, own_id: int, taker: int, side: int, price: int, resting: int, ts: int, had_fills: bool,
                  fills_out: list, cancels_out: list) -> None:  # fmt: skip
        touched = [taker]
        self._book_output(b, own_id, touched, fills_out, cancels_out)
        if resting > 0:
            self._tally(b, taker, side, price, resting)
        if b >= self.n_perps:
            return
        if had_fills:
            book = self.books[b]
            res = np.zeros(1, book.submit(op_record(Op.CANCEL, -1, -1)).results.dtype)
            BK.cancel_stale_reduce_only(
                book.st, b, self.clearing.accounts.arrays.size[b], np.array(touched, np.int64), len(touched), ts, res[0]
            )
            self._book_output(b, -1, touched, fills_out, cancels_out)
        for i in touched:
            if i >= 0:
                self.clearing.accounts.arrays.reserved[i] = self._order_margin(i)

    # --- the per-order loop ---------------------------------------------------------------------
    def _process(self, reqs: np.ndarray, acks: np.ndarray) -> None:
        fills_out: list = []
        cancels_out: list = []
        for r, q in enumerate(reqs):
            acks[r] = (q["ts"], r, q["order_id"], q["account"], 0, 0, 0, q["instrument"], Reject.OK)
            acks[r]["reason"] = self._one_request(q, acks[r], fills_out, cancels_out)
        if fills_out:
            self.fill_log.append(np.array(fills_out, FILL))
        if cancels_out:
            self.cancel_log.append(np.array(cancels_out, CANCEL))

    def _one_request(self, q: np.void, ack: np.void, fills_out: list, cancels_out: list) -> Reject:
        ch = self.clearing
        b, i, kind, flags, ts = int(q["instrument"]), int(q["account"]), int(q["kind"]), int(q["flags"]), int(q["ts"])
        if not 0 <= b < len(self.books):
            return Reject.UNKNOWN_INSTRUMENT
        if not 0 <= i < ch.accounts.n:
            return Reject.UNKNOWN_ACCOUNT
        force = bool(flags & FLAG_LIQUIDATION)
        if not force and self.orders.blocked[i]:
            return Reject.VENUE_UNAVAILABLE
        book = self.books[b]
        perp = b < self.n_perps
        pos = ch.accounts.arrays.size[b] if perp else None
        if kind in (Op.CANCEL, Op.CANCEL_ALL):
            res = book.submit(op_record(Op(kind), int(q["order_id"]) if kind == Op.CANCEL else 0, i, ts=ts), positions=pos)
            if res.status != Status.OK:
                return Reject.UNKNOWN_ORDER
            ack["cancelled"] = res.cancelled
            self._requeue(book, res)
            self._after_op(b, -1, i, 0, 0, 0, ts, False, fills_out, cancels_out)
            return Reject.OK
        if kind not in (Op.LIMIT, Op.MARKET):
            return Reject.INVALID_REQUEST
        if not force and ch.accounts.state[i] != AccountState.NORMAL:
            return Reject.ACCOUNT_NOT_NORMAL
        side, qty, price, tif, stp = int(q["side"]), int(q["qty"]), int(q["price"]), int(q["tif"]), int(q["stp"])
        inst = self.instruments[b]
        if side not in (1, -1):
            return Reject.INVALID_SIDE
        if qty <= 0:
            return Reject.INVALID_QUANTITY
        if kind == Op.LIMIT and (price <= 0 or price > E.MAX_NOTIONAL // inst.unit_notional):
            return Reject.INVALID_PRICE
        if not 0 <= tif <= 3 or not 0 <= stp <= 3 or (not perp and flags & FLAG_REDUCE_ONLY):
            return Reject.INVALID_REQUEST
        if kind == Op.MARKET and tif in (TIF.FOK, TIF.POST_ONLY):  # a market order is IOC
            return Reject.INVALID_REQUEST
        protection = 0
        if kind == Op.MARKET:
            best = book.best_ask() if side == 1 else book.best_bid()
            if best is None:
                return Reject.NO_LIQUIDITY
            ref = int(self.spec.ref[b])
            if ref > 0:  # protected around the reference price (the mark for perpetuals)
                band = ref * self.market_protection_bps // 10_000
                worst = ref + band if side == 1 else max(1, ref - band)
                protection = worst - best if side == 1 else best - worst
                if protection < 0:
                    return Reject.NO_LIQUIDITY
            else:
                protection = best * self.market_protection_bps // 10_000
                worst = best + protection if side == 1 else max(1, best - protection)
        else:
            worst = price
        if qty > E.MAX_NOTIONAL // (worst * inst.unit_notional):
            return Reject.INVALID_QUANTITY
        notional = qty * worst * inst.unit_notional
        if not force:
            reason = (
                self._check_perp(b, i, side, qty, worst, notional, bool(flags & FLAG_REDUCE_ONLY))
                if perp
                else self._check_spot(b, i, side, qty, worst, notional)
            )
            if reason != Reject.OK:
                return reason
        oid = int(self.orders.meta[E.M_NEXT_ID])
        self.orders.meta[E.M_NEXT_ID] = oid + 1
        ack["order_id"] = oid
        if kind == Op.MARKET:
            op = op_record(Op.MARKET, oid, i, side, protection, qty, 1, stp, flags, ts)
        else:
            op = op_record(Op.LIMIT, oid, i, side, price, qty, tif, stp, flags, ts)
        res = book.submit(op, positions=pos)
        self._requeue(book, res)
        ack["filled"], ack["resting"], ack["cancelled"] = res.filled, res.resting, res.cancelled
        self._after_op(b, oid, i, side, price, res.resting, ts, len(res.fills) > 0, fills_out, cancels_out)
        return _BOOK_REJECTS.get(res.status, Reject.OK)

    @staticmethod
    def _requeue(book, res) -> None:
        """Hand a submit's fills and cancels back to the book's buffers so :meth:`_book_output` reads them."""
        st = book.st
        nf, nc = len(res.fills), len(res.cancels)
        book.grow_for(orders=0, levels=0, outputs=max(nf, nc))
        st = book.st
        st.fills[:nf] = res.fills
        st.cancels[:nc] = res.cancels
        st.meta[BK.M_NFILLS] = nf
        st.meta[BK.M_NCANCELS] = nc

    def cancel_accounts(self, mask: np.ndarray, reason: CancelReason, ts: int | None = None, instrument: int = -1) -> np.ndarray:
        """Cancel every resting order of the accounts in ``mask``: book by book, owner by owner, by order id."""
        ts = self.now_ns if ts is None else ts
        owners = np.flatnonzero(np.asarray(mask, np.bool_)).tolist()
        out = []
        for b, book in enumerate(self.books):
            if instrument >= 0 and b != instrument:
                continue
            for owner in owners:
                for oid in book.open_orders(owner):
                    o = book.order(oid)
                    assert o is not None
                    book.submit(op_record(Op.CANCEL, oid, owner, ts=ts))
                    self._tally(b, owner, o.side, o.price, -o.qty)
                    out.append((ts, oid, owner, o.price, o.qty, b, o.side, int(reason)))
                if b < self.n_perps and book.order_count >= 0:
                    self.clearing.accounts.arrays.reserved[owner] = self._order_margin(owner)
        recs = np.array(out, CANCEL) if out else np.zeros(0, CANCEL)
        if len(recs):
            self.cancel_log.append(recs)
        return recs


__all__ = ["RATE_SCALE", "ReferenceVenue"]
