"""Compiled order entry: validate -> match -> settle for a batch of typed requests.

:func:`process_requests` takes ORDER_REQUEST records (already in time order) and handles
each exactly as if it were submitted alone: the same validation and reject codes, the same
book operation, the same settlement and journal records, the same bookkeeping of open
orders, as :class:`cascadelab.venue.reference.ReferenceVenue` does one order at a time in
Python. Python touches the batch; nothing here is per-order Python.

**Open-order bookkeeping is linear in quantity**, so it follows from the book's own
records with no per-order state: a resting perpetual order adds its lots and notional to
its owner's buy or sell tally; a resting spot order reserves ``lots x per-lot amount``
(a buy: price plus the per-lot taker fee rounded up; a sell: the base lots). A fill of a
resting (maker) order or a cancellation of resting quantity releases exactly that
quantity's share. Cancel records of the incoming order itself (IOC remainder, FOK,
post-only, self-trade, reduce-only excess) never rested and release nothing.

**Reserved margin** (initial margin held by open perpetual orders) is, per instrument,
the larger of the increasing buy and sell sides at the account's leverage; it is
recomputed for every account an operation touched.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from cascadelab.arith import ceil_div, muldiv_ceil, muldiv_floor
from cascadelab.book import kernels as BK
from cascadelab.clearing.ledger import journal_room
from cascadelab.clearing.margin import account_figures, tier_of
from cascadelab.clearing.settlement import settle_perp_fill, settle_spot_fill
from cascadelab.compiled import kernel

KIND_PERP, KIND_SPOT = 0, 1
MAX_NOTIONAL = 1 << 61
"""Orders whose worst-case notional exceeds this (about $23B at 1e-8 units) are rejected, so no product overflows."""

# Reject codes (cascadelab.records.Reject) as plain ints for the compiler.
R_OK, R_UNKNOWN_INSTRUMENT, R_UNKNOWN_ACCOUNT, R_NOT_NORMAL, R_SIDE, R_QTY, R_PRICE = 0, 1, 2, 3, 4, 5, 6
R_MIN_NOTIONAL, R_REDUCE_ONLY, R_POSITION_LIMIT, R_LEVERAGE, R_MARGIN, R_BALANCE = 9, 10, 11, 12, 13, 14
R_NO_LIQUIDITY, R_POST_ONLY, R_FOK, R_UNKNOWN_ORDER, R_INVALID, R_UNAVAILABLE = 15, 16, 17, 18, 19, 20
F_REDUCE_ONLY, F_LIQUIDATION, F_UNWIND = 1, 2, 4
FK_TRADE, FK_LIQUIDATION, FK_UNWIND = 0, 1, 2
ST_NORMAL = 0


class InstrumentArrays(NamedTuple):
    """Per venue instrument (perpetuals first, then spot pairs): what order entry needs to know."""

    kind: np.ndarray  # KIND_PERP / KIND_SPOT
    perp: np.ndarray  # perpetual index, -1 for spot
    unit: np.ndarray  # money per tick-lot (quote asset)
    maker_rate: np.ndarray  # millionths
    taker_rate: np.ndarray
    min_notional: np.ndarray  # money units
    lot_units: np.ndarray  # spot: base money units per lot
    base: np.ndarray  # spot: base asset index
    quote: np.ndarray  # quote asset index
    position_limit: np.ndarray  # perps: lots, -1 for none
    pool: np.ndarray  # perps: settlement pool (system account id)
    ref: np.ndarray  # the price market orders are protected around (ticks; the mark for perpetuals), 0 for none yet


class OrderArrays(NamedTuple):
    """The venue's bookkeeping of open orders, per account (capacity-wide)."""

    buy_qty: np.ndarray  # (perps, cap) lots of resting perpetual buys
    sell_qty: np.ndarray
    buy_notional: np.ndarray  # (perps, cap) their notional at their limit prices
    sell_notional: np.ndarray
    spot_reserved: np.ndarray  # (assets, cap) balance set aside by resting spot orders
    blocked: np.ndarray  # (cap,) bool: order entry refused (an outage for this account)
    meta: np.ndarray  # [next order id, accounts, market protection bps]


M_NEXT_ID, M_ACCOUNTS, M_PROTECTION = 0, 1, 2
O_NFILLS, O_NCANCELS = 0, 1


@kernel
def spot_per_lot(IS, b, side, price):
    """Balance one lot of a spot order ties up: a buy its price plus the per-lot taker fee (rounded up); a sell its base."""
    if side == 1:
        v = price * IS.unit[b]
        return v + muldiv_ceil(v, IS.taker_rate[b], 1_000_000)
    return IS.lot_units[b]


@kernel
def tally(IS, OS, b, owner, side, price, qty):
    """Add (qty > 0) or release (qty < 0) resting quantity of ``owner``'s order on instrument ``b``."""
    if IS.kind[b] == KIND_PERP:
        k = IS.perp[b]
        if side == 1:
            OS.buy_qty[k, owner] += qty
            OS.buy_notional[k, owner] += qty * price * IS.unit[b]
        else:
            OS.sell_qty[k, owner] += qty
            OS.sell_notional[k, owner] += qty * price * IS.unit[b]
    else:
        a = IS.quote[b] if side == 1 else IS.base[b]
        OS.spot_reserved[a, owner] += qty * spot_per_lot(IS, b, side, price)


@kernel
def order_margin(A, OS, i):
    """Initial margin held by account ``i``'s open perpetual orders: per instrument, the larger increasing side."""
    total = 0
    for k in range(A.size.shape[0]):
        bq = OS.buy_qty[k, i]
        sq = OS.sell_qty[k, i]
        if bq == 0 and sq == 0:
            continue
        size = A.size[k, i]
        inc_b = max(0, bq - max(0, -size))
        inc_s = max(0, sq - max(0, size))
        nb = muldiv_floor(OS.buy_notional[k, i], inc_b, bq) if bq else 0
        ns = muldiv_floor(OS.sell_notional[k, i], inc_s, sq) if sq else 0
        total += ceil_div(max(nb, ns), A.leverage[k, i])
    return total


@kernel
def _check_perp(P, A, OS, IS, bal, b, i, side, qty, worst, notional, reduce_only):
    k = IS.perp[b]
    size = A.size[k, i]
    if reduce_only:
        if size == 0 or (size > 0) == (side > 0):
            return R_REDUCE_ONLY
    elif notional < IS.min_notional[b]:
        return R_MIN_NOTIONAL
    buy_q = OS.buy_qty[k, i] + (qty if side == 1 else 0)
    sell_q = OS.sell_qty[k, i] + (qty if side == -1 else 0)
    worst_lots = max(abs(size + buy_q), abs(size - sell_q))
    if IS.position_limit[b] >= 0 and worst_lots > IS.position_limit[b]:
        return R_POSITION_LIMIT
    if reduce_only:
        return R_OK  # a reduce-only order cannot raise the margin requirement
    mark = P.marks[k] if P.marks[k] > 0 else worst
    worst_notional = worst_lots * max(mark, worst) * IS.unit[b]
    if A.leverage[k, i] > P.max_lev[k, tier_of(P, k, worst_notional)]:
        return R_LEVERAGE
    tally(IS, OS, b, i, side, worst, qty)
    reserved = order_margin(A, OS, i)
    tally(IS, OS, b, i, side, worst, -qty)
    eq, _mm, im, _b = account_figures(P, A, bal, i)
    return R_OK if eq - im - reserved >= 0 else R_MARGIN


@kernel
def _check_spot(A, OS, IS, bal, quote_settle, b, i, side, qty, worst, notional):
    if notional < IS.min_notional[b]:
        return R_MIN_NOTIONAL
    a = IS.quote[b] if side == 1 else IS.base[b]
    free = bal[a, i] - OS.spot_reserved[a, i]
    if a == quote_settle:
        for k in range(A.size.shape[0]):
            if A.isolated[k, i]:
                free -= A.iso_margin[k, i]
    return R_OK if free >= qty * spot_per_lot(IS, b, side, worst) else R_BALANCE


@kernel
def _emit_cancels(st, IS, OS, b, own_id, cancels_out, outm, touched, nt):
    """Release resting quantity for the book's cancel records and copy them out; returns the touched count."""
    for j in range(st.meta[BK.M_NCANCELS]):
        x = st.cancels[j]
        if x.order_id != own_id:
            tally(IS, OS, b, x.owner, x.side, x.price, -x.qty)
            touched[nt] = x.owner
            nt += 1
        c = cancels_out[outm[O_NCANCELS]]
        c.ts = x.ts
        c.order_id = x.order_id
        c.account = x.owner
        c.price = x.price
        c.qty = x.qty
        c.instrument = b
        c.side = x.side
        c.reason = x.reason
        outm[O_NCANCELS] += 1
    st.meta[BK.M_NCANCELS] = 0
    return nt


@kernel
def _settle_fills(st, L, A, P, IS, OS, b, fills_out, outm, touched, nt):
    """Release makers' resting quantity, settle every fill, copy them out; returns the touched count."""
    perp = IS.kind[b] == KIND_PERP
    k = IS.perp[b]
    for j in range(st.meta[BK.M_NFILLS]):
        f = st.fills[j]
        tally(IS, OS, b, f.maker_owner, -f.aggressor, f.price, -f.qty)
        notional = f.price * f.qty * IS.unit[b]
        mf = muldiv_ceil(notional, IS.maker_rate[b], 1_000_000)
        tf = muldiv_ceil(notional, IS.taker_rate[b], 1_000_000)
        pm = 0
        pt = 0
        if perp:
            pm, pt = settle_perp_fill(
                L, A, IS.unit[b], k, IS.pool[b], P.quote, f.ts, f.maker_owner, f.taker_owner, f.aggressor, f.price, f.qty, mf, tf
            )
        else:
            settle_spot_fill(
                L, IS.quote[b], IS.base[b], IS.lot_units[b], IS.unit[b], f.ts, f.maker_owner, f.taker_owner, f.aggressor,
                f.price, f.qty, mf, tf,
            )  # fmt: skip
        r = fills_out[outm[O_NFILLS]]
        r.ts = f.ts
        r.maker_order = f.maker_id
        r.taker_order = f.taker_id
        r.maker_account = f.maker_owner
        r.taker_account = f.taker_owner
        r.price = f.price
        r.qty = f.qty
        r.maker_fee = mf
        r.taker_fee = tf
        r.maker_pnl = pm
        r.taker_pnl = pt
        r.instrument = b
        r.aggressor = f.aggressor
        kind = FK_TRADE
        if f.taker_flags & F_LIQUIDATION:
            kind = FK_UNWIND if f.taker_flags & F_UNWIND else FK_LIQUIDATION
        r.kind = kind
        outm[O_NFILLS] += 1
        touched[nt] = f.maker_owner
        touched[nt + 1] = f.taker_owner
        nt += 2
    st.meta[BK.M_NFILLS] = 0
    return nt


@kernel
def after_op(st, L, A, P, IS, OS, b, own_id, taker, side, price, resting, ts, fills_out, cancels_out, outm, touched, res):
    """Everything that follows a book operation on instrument ``b``: tallies, settlement, stale reduce-only, reserved margin."""
    nt = 0
    touched[nt] = taker
    nt += 1
    had_fills = st.meta[BK.M_NFILLS] > 0
    nt = _emit_cancels(st, IS, OS, b, own_id, cancels_out, outm, touched, nt)
    nt = _settle_fills(st, L, A, P, IS, OS, b, fills_out, outm, touched, nt)
    if resting > 0:
        tally(IS, OS, b, taker, side, price, resting)
    if IS.kind[b] != KIND_PERP:
        return
    k = IS.perp[b]
    if had_fills:
        BK.cancel_stale_reduce_only(st, b, A.size[k], touched, nt, ts, res)
        nt = _emit_cancels(st, IS, OS, b, -1, cancels_out, outm, touched, nt)
    for t in range(nt):
        i = touched[t]
        if i >= 0:
            A.reserved[i] = order_margin(A, OS, i)


@kernel
def _room(st, b, owner, L, fills_out, cancels_out, outm, touched):
    """Is there room in the book, the journal, the outputs and the scratch for one more request on this book?"""
    n = st.bmeta[b, BK.B_NORDERS]
    nro = st.bmeta[b, BK.B_NRO]
    if not BK.has_room(st, b, nro, owner):
        return False
    if touched.shape[0] < 4 * n + 16 + nro:
        return False
    if journal_room(L) < 4 * (n + 2) + 8:
        return False
    if fills_out.shape[0] - outm[O_NFILLS] < n + 2:
        return False
    return cancels_out.shape[0] - outm[O_NCANCELS] >= 2 * n + 3 + nro


@kernel
def process_requests(st, L, A, P, IS, OS, reqs, start, acks, fills_out, cancels_out, outm, touched, res_arr, no_pos):
    """Handle ``reqs[start:]`` in order (see the module docstring); returns the index of the first not handled.

    It stops early only when a book, the journal buffer, an output buffer or the scratch
    might overflow; the caller makes room and calls again from there. ``res_arr`` is a
    one-record BOOK_RESULT scratch; ``no_pos`` an empty int64 array (the reduce-only rule off).
    """
    n_books = st.bmeta.shape[0]
    res = res_arr[0]
    for r in range(start, reqs.shape[0]):
        q = reqs[r]
        b = q.instrument
        owner = q.account if 0 <= q.account < OS.meta[M_ACCOUNTS] else 0
        if 0 <= b < n_books and not _room(st, b, owner, L, fills_out, cancels_out, outm, touched):
            return r
        ack = acks[r]
        ack.ts = q.ts
        ack.request = r
        ack.order_id = q.order_id
        ack.account = q.account
        ack.instrument = b
        ack.filled = 0
        ack.resting = 0
        ack.cancelled = 0
        ack.reason = R_OK
        i = q.account
        if b < 0 or b >= n_books:
            ack.reason = R_UNKNOWN_INSTRUMENT
            continue
        if i < 0 or i >= OS.meta[M_ACCOUNTS]:
            ack.reason = R_UNKNOWN_ACCOUNT
            continue
        force = (q.flags & F_LIQUIDATION) != 0
        if not force and OS.blocked[i]:
            ack.reason = R_UNAVAILABLE
            continue
        st.meta[BK.M_NFILLS] = 0
        st.meta[BK.M_NCANCELS] = 0
        perp = IS.kind[b] == KIND_PERP
        pos = A.size[IS.perp[b]] if perp else no_pos
        if q.kind == BK.OP_CANCEL or q.kind == BK.OP_CANCEL_ALL:
            BK.apply_op(st, b, q.kind, q.order_id, i, 0, 0, 0, 0, 0, 0, q.ts, res, pos)
            if res.status != BK.ST_OK:
                ack.reason = R_UNKNOWN_ORDER
                continue
            ack.cancelled = res.cancelled
            after_op(st, L, A, P, IS, OS, b, -1, i, 0, 0, 0, q.ts, fills_out, cancels_out, outm, touched, res)
            continue
        if q.kind != BK.OP_LIMIT and q.kind != BK.OP_MARKET:
            ack.reason = R_INVALID
            continue
        if not force and A.state[i] != ST_NORMAL:
            ack.reason = R_NOT_NORMAL
            continue
        side = q.side
        if side != 1 and side != -1:
            ack.reason = R_SIDE
            continue
        if q.qty <= 0:
            ack.reason = R_QTY
            continue
        if q.kind == BK.OP_LIMIT and (q.price <= 0 or q.price > MAX_NOTIONAL // IS.unit[b]):
            ack.reason = R_PRICE
            continue
        if q.tif < 0 or q.tif > 3 or q.stp < 0 or q.stp > 3 or (not perp and q.flags & F_REDUCE_ONLY):
            ack.reason = R_INVALID
            continue
        if q.kind == BK.OP_MARKET and (q.tif == 2 or q.tif == 3):  # a market order is IOC: FOK and post-only are refused
            ack.reason = R_INVALID
            continue
        protection = 0
        if q.kind == BK.OP_MARKET:
            best = BK.best_price(st, b, 1 if side == 1 else 0)
            if best < 0:
                ack.reason = R_NO_LIQUIDITY
                continue
            ref = IS.ref[b]
            if ref > 0:  # no worse than the protection band around the reference (the mark): the book walks no further
                band = ref * OS.meta[M_PROTECTION] // 10_000
                worst = ref + band if side == 1 else max(1, ref - band)
                protection = worst - best if side == 1 else best - worst
                if protection < 0:
                    ack.reason = R_NO_LIQUIDITY  # nothing within the band
                    continue
            else:
                protection = best * OS.meta[M_PROTECTION] // 10_000
                worst = best + protection if side == 1 else max(1, best - protection)
        else:
            worst = q.price
        if q.qty > MAX_NOTIONAL // (worst * IS.unit[b]):
            ack.reason = R_QTY
            continue
        notional = q.qty * worst * IS.unit[b]
        if not force:
            if perp:
                reason = _check_perp(P, A, OS, IS, L.bal, b, i, side, q.qty, worst, notional, (q.flags & F_REDUCE_ONLY) != 0)
            else:
                reason = _check_spot(A, OS, IS, L.bal, P.quote, b, i, side, q.qty, worst, notional)
            if reason != R_OK:
                ack.reason = reason
                continue
        oid = OS.meta[M_NEXT_ID]
        OS.meta[M_NEXT_ID] = oid + 1
        ack.order_id = oid
        if q.kind == BK.OP_MARKET:
            BK.apply_op(st, b, BK.OP_MARKET, oid, i, side, protection, q.qty, BK.TIF_IOC, q.stp, q.flags, q.ts, res, pos)
        else:
            BK.apply_op(st, b, BK.OP_LIMIT, oid, i, side, q.price, q.qty, q.tif, q.stp, q.flags, q.ts, res, pos)
        if res.status == BK.ST_POST_ONLY:
            ack.reason = R_POST_ONLY
        elif res.status == BK.ST_FOK:
            ack.reason = R_FOK
        elif res.status == BK.ST_NO_LIQ:
            ack.reason = R_NO_LIQUIDITY
        ack.filled = res.filled
        ack.resting = res.resting
        ack.cancelled = res.cancelled
        after_op(st, L, A, P, IS, OS, b, oid, i, side, q.price, res.resting, q.ts, fills_out, cancels_out, outm, touched, res)
    return reqs.shape[0]


@kernel
def cancel_accounts(st, L, A, P, IS, OS, owners, only_book, reason, ts, fills_out, cancels_out, outm, touched, res_arr):
    """Cancel every resting order of the accounts ``owners`` (ascending) on every book (or ``only_book`` >= 0), with ``reason``.

    Book by book; within a book, owner by owner, each owner's orders in ascending order id.
    Only the owners' own order lists are walked. Returns False (having done nothing) when an
    output buffer might overflow.
    """
    total = st.meta[BK.M_NORDERS]
    if cancels_out.shape[0] - outm[O_NCANCELS] < total + 1 or touched.shape[0] < total + 1:
        return False
    res = res_arr[0]
    if st.cancels.shape[0] < total + 1:
        return False
    for b in range(st.bmeta.shape[0]):
        if only_book >= 0 and b != only_book:
            continue
        st.meta[BK.M_NFILLS] = 0
        st.meta[BK.M_NCANCELS] = 0
        BK.cancel_owners(st, b, owners, reason, ts, res)
        nt = _emit_cancels(st, IS, OS, b, -1, cancels_out, outm, touched, 0)
        if IS.kind[b] == KIND_PERP:
            for t in range(nt):
                A.reserved[touched[t]] = order_margin(A, OS, touched[t])
    return True
