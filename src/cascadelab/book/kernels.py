"""Numba kernels of the fast order book: an order pool with index-linked FIFO queues.

State lives in preallocated NumPy arrays (:class:`BookArrays`). Orders occupy slots of a
pool recycled through a free stack; an open-addressing hash table maps order ids to
slots. Each side keeps its price levels in a sorted array of keys with the *best level
last* (key = price for bids, -price for asks), so the levels touched most often sit at
the end and inserting or removing them moves almost nothing.

:func:`process_ops` applies a batch of operations (rows of an int64 array, columns in
:mod:`cascadelab.book.codes`) and writes fills and cancellations into output buffers.
It stops early, returning the index of the first op it did not apply, when a buffer
might overflow; the Python wrapper grows the buffers and calls again.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from cascadelab.book.codes import (
    C_FLAGS,
    C_ID,
    C_KIND,
    C_OWNER,
    C_PRICE,
    C_QTY,
    C_SIDE,
    C_STP,
    C_TIF,
    C_TS,
    N_CANCEL_COLS,
    N_FILL_COLS,
)

# Constants are duplicated as plain ints so Numba folds them.
OP_LIMIT, OP_MARKET, OP_CANCEL, OP_AMEND, OP_CANCEL_ALL, OP_REDUCE = 0, 1, 2, 3, 4, 5
TIF_GTC, TIF_IOC, TIF_FOK, TIF_POST_ONLY = 0, 1, 2, 3
STP_NONE, STP_CANCEL_RESTING, STP_CANCEL_INCOMING, STP_CANCEL_BOTH = 0, 1, 2, 3
ST_OK, ST_INVALID, ST_DUP, ST_UNKNOWN, ST_NOT_OWNER, ST_POST_ONLY, ST_FOK, ST_NO_LIQ = 0, 1, 2, 3, 4, 5, 6, 7
RS_USER, RS_IOC, RS_FOK, RS_POST_ONLY, RS_STP_RESTING, RS_STP_INCOMING = 0, 1, 2, 3, 4, 5
RS_AMEND_DOWN, RS_CANCEL_ALL, RS_EXTERNAL, RS_NO_LIQ = 6, 7, 8, 9

# meta slots
M_NFREE, M_NLV_BID, M_NLV_ASK, M_NORDERS, M_HTBITS, M_NFILLS, M_NCANCELS, M_SEQ, M_LAST_PRICE = range(9)
N_META = 9
EMPTY = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class BookArrays(NamedTuple):
    """All mutable state of one book, as arrays (see module docstring)."""

    o_id: np.ndarray
    o_owner: np.ndarray
    o_side: np.ndarray  # +1 buy, -1 sell
    o_price: np.ndarray
    o_qty: np.ndarray  # open quantity
    o_next: np.ndarray
    o_prev: np.ndarray
    o_tif: np.ndarray
    o_stp: np.ndarray
    o_flags: np.ndarray
    o_ts: np.ndarray
    o_seq: np.ndarray
    free: np.ndarray
    lv_key: np.ndarray  # (2, L): side 0 bids (key=price), side 1 asks (key=-price); ascending, best last
    lv_head: np.ndarray
    lv_tail: np.ndarray
    lv_qty: np.ndarray
    lv_cnt: np.ndarray
    ht_keys: np.ndarray
    ht_vals: np.ndarray
    meta: np.ndarray
    fills: np.ndarray
    cancels: np.ndarray


def _ht_bits_for(capacity: int) -> int:
    bits = 4
    while (1 << bits) < 2 * capacity:
        bits += 1
    return bits


def new_book_arrays(order_capacity: int = 1 << 12, level_capacity: int = 1 << 10, out_capacity: int = 1 << 14) -> BookArrays:
    """Allocate an empty book with room for ``order_capacity`` resting orders."""
    c, lcap = int(order_capacity), int(level_capacity)
    bits = _ht_bits_for(c)
    meta = np.zeros(N_META, np.int64)
    meta[M_NFREE] = c
    meta[M_HTBITS] = bits
    return BookArrays(
        o_id=np.full(c, -1, np.int64),
        o_owner=np.zeros(c, np.int64),
        o_side=np.zeros(c, np.int64),
        o_price=np.zeros(c, np.int64),
        o_qty=np.zeros(c, np.int64),
        o_next=np.full(c, -1, np.int64),
        o_prev=np.full(c, -1, np.int64),
        o_tif=np.zeros(c, np.int64),
        o_stp=np.zeros(c, np.int64),
        o_flags=np.zeros(c, np.int64),
        o_ts=np.zeros(c, np.int64),
        o_seq=np.zeros(c, np.int64),
        free=np.arange(c - 1, -1, -1, dtype=np.int64),
        lv_key=np.zeros((2, lcap), np.int64),
        lv_head=np.full((2, lcap), -1, np.int64),
        lv_tail=np.full((2, lcap), -1, np.int64),
        lv_qty=np.zeros((2, lcap), np.int64),
        lv_cnt=np.zeros((2, lcap), np.int64),
        ht_keys=np.full(1 << bits, EMPTY, np.int64),
        ht_vals=np.full(1 << bits, -1, np.int64),
        meta=meta,
        fills=np.zeros((int(out_capacity), N_FILL_COLS), np.int64),
        cancels=np.zeros((int(out_capacity), N_CANCEL_COLS), np.int64),
    )


# --- hash table: order id -> slot (linear probing, backward-shift deletion) ---------
@njit(cache=True, inline="always")
def _home(key, bits):
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - bits))


@njit(cache=True)
def ht_get(keys, vals, bits, key):
    """Slot of order ``key``, or -1."""
    mask = (1 << bits) - 1
    i = _home(key, bits)
    while keys[i] != EMPTY:
        if keys[i] == key:
            return vals[i]
        i = (i + 1) & mask
    return -1


@njit(cache=True)
def ht_put(keys, vals, bits, key, val):
    """Insert ``key`` (known to be absent)."""
    mask = (1 << bits) - 1
    i = _home(key, bits)
    while keys[i] != EMPTY:
        i = (i + 1) & mask
    keys[i] = key
    vals[i] = val


@njit(cache=True)
def ht_del(keys, vals, bits, key):
    """Remove ``key`` (known to be present) keeping every probe chain intact."""
    mask = (1 << bits) - 1
    i = _home(key, bits)
    while keys[i] != key:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if keys[j] == EMPTY:
            break
        k = _home(keys[j], bits)
        if i <= j:
            stays = i < k <= j
        else:
            stays = k <= j or k > i
        if stays:
            continue
        keys[i] = keys[j]
        vals[i] = vals[j]
        i = j
    keys[i] = EMPTY
    vals[i] = -1


# --- price levels ---------------------------------------------------------------------
@njit(cache=True, inline="always")
def _key(si, price):
    return price if si == 0 else -price


@njit(cache=True, inline="always")
def _price(si, key):
    return key if si == 0 else -key


@njit(cache=True)
def _level_pos(st, si, key):
    """Index of the level with ``key`` on side ``si`` or -(insertion point) - 1."""
    n = st.meta[M_NLV_BID + si]
    lo, hi = 0, n
    # Activity concentrates at the best end: check it before bisecting.
    if n > 0 and st.lv_key[si, n - 1] <= key:
        if st.lv_key[si, n - 1] == key:
            return n - 1
        return -(n) - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if st.lv_key[si, mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and st.lv_key[si, lo] == key:
        return lo
    return -lo - 1


@njit(cache=True)
def _level_insert(st, si, pos, key):
    n = st.meta[M_NLV_BID + si]
    for j in range(n, pos, -1):
        st.lv_key[si, j] = st.lv_key[si, j - 1]
        st.lv_head[si, j] = st.lv_head[si, j - 1]
        st.lv_tail[si, j] = st.lv_tail[si, j - 1]
        st.lv_qty[si, j] = st.lv_qty[si, j - 1]
        st.lv_cnt[si, j] = st.lv_cnt[si, j - 1]
    st.lv_key[si, pos] = key
    st.lv_head[si, pos] = -1
    st.lv_tail[si, pos] = -1
    st.lv_qty[si, pos] = 0
    st.lv_cnt[si, pos] = 0
    st.meta[M_NLV_BID + si] = n + 1


@njit(cache=True)
def _level_remove(st, si, pos):
    n = st.meta[M_NLV_BID + si]
    for j in range(pos, n - 1):
        st.lv_key[si, j] = st.lv_key[si, j + 1]
        st.lv_head[si, j] = st.lv_head[si, j + 1]
        st.lv_tail[si, j] = st.lv_tail[si, j + 1]
        st.lv_qty[si, j] = st.lv_qty[si, j + 1]
        st.lv_cnt[si, j] = st.lv_cnt[si, j + 1]
    st.meta[M_NLV_BID + si] = n - 1


# --- orders ---------------------------------------------------------------------------
@njit(cache=True)
def _emit_fill(st, ts, maker, taker_id, taker_owner, price, qty, aggressor):
    k = st.meta[M_NFILLS]
    f = st.fills
    f[k, 0] = ts
    f[k, 1] = st.o_id[maker]
    f[k, 2] = taker_id
    f[k, 3] = st.o_owner[maker]
    f[k, 4] = taker_owner
    f[k, 5] = price
    f[k, 6] = qty
    f[k, 7] = aggressor
    st.meta[M_NFILLS] = k + 1
    st.meta[M_LAST_PRICE] = price


@njit(cache=True)
def _emit_cancel(st, ts, oid, owner, side, price, qty, reason):
    k = st.meta[M_NCANCELS]
    x = st.cancels
    x[k, 0] = ts
    x[k, 1] = oid
    x[k, 2] = owner
    x[k, 3] = side
    x[k, 4] = price
    x[k, 5] = qty
    x[k, 6] = reason
    st.meta[M_NCANCELS] = k + 1


@njit(cache=True)
def _free_slot(st, slot):
    ht_del(st.ht_keys, st.ht_vals, st.meta[M_HTBITS], st.o_id[slot])
    st.o_id[slot] = -1
    st.o_qty[slot] = 0
    st.free[st.meta[M_NFREE]] = slot
    st.meta[M_NFREE] += 1
    st.meta[M_NORDERS] -= 1


@njit(cache=True)
def _unlink(st, slot):
    """Take a resting order out of its level (the slot itself stays allocated)."""
    si = 0 if st.o_side[slot] == 1 else 1
    pos = _level_pos(st, si, _key(si, st.o_price[slot]))
    prv = st.o_prev[slot]
    nxt = st.o_next[slot]
    if prv != -1:
        st.o_next[prv] = nxt
    else:
        st.lv_head[si, pos] = nxt
    if nxt != -1:
        st.o_prev[nxt] = prv
    else:
        st.lv_tail[si, pos] = prv
    st.lv_qty[si, pos] -= st.o_qty[slot]
    st.lv_cnt[si, pos] -= 1
    if st.lv_cnt[si, pos] == 0:
        _level_remove(st, si, pos)


@njit(cache=True)
def _rest(st, oid, owner, side, price, qty, tif, stp, flags, ts):
    """Put a new order at the back of its price level."""
    st.meta[M_NFREE] -= 1
    slot = st.free[st.meta[M_NFREE]]
    st.o_id[slot] = oid
    st.o_owner[slot] = owner
    st.o_side[slot] = side
    st.o_price[slot] = price
    st.o_qty[slot] = qty
    st.o_tif[slot] = tif
    st.o_stp[slot] = stp
    st.o_flags[slot] = flags
    st.o_ts[slot] = ts
    st.o_seq[slot] = st.meta[M_SEQ]
    st.meta[M_SEQ] += 1
    st.meta[M_NORDERS] += 1
    ht_put(st.ht_keys, st.ht_vals, st.meta[M_HTBITS], oid, slot)
    si = 0 if side == 1 else 1
    key = _key(si, price)
    pos = _level_pos(st, si, key)
    if pos < 0:
        pos = -pos - 1
        _level_insert(st, si, pos, key)
    tail = st.lv_tail[si, pos]
    st.o_prev[slot] = tail
    st.o_next[slot] = -1
    if tail != -1:
        st.o_next[tail] = slot
    else:
        st.lv_head[si, pos] = slot
    st.lv_tail[si, pos] = slot
    st.lv_qty[si, pos] += qty
    st.lv_cnt[si, pos] += 1


@njit(cache=True)
def _acceptable(si_in, level_price, limit):
    return level_price <= limit if si_in == 0 else level_price >= limit


@njit(cache=True)
def _fok_fillable(st, si_in, limit, qty, owner, stp):
    """Would a fill-or-kill order fill in full? Walks the book as matching would."""
    so = 1 - si_in
    acc = 0
    pos = st.meta[M_NLV_BID + so] - 1
    while pos >= 0:
        price = _price(so, st.lv_key[so, pos])
        if not _acceptable(si_in, price, limit):
            return False
        r = st.lv_head[so, pos]
        while r != -1:
            if stp != STP_NONE and st.o_owner[r] == owner:
                if stp != STP_CANCEL_RESTING:
                    return False
            else:
                acc += st.o_qty[r]
                if acc >= qty:
                    return True
            r = st.o_next[r]
        pos -= 1
    return False


@njit(cache=True)
def _match(st, side, limit, qty, taker_id, owner, stp, ts):
    """Trade an incoming order against the other side. Returns (filled, remaining, stp_stopped)."""
    si_in = 0 if side == 1 else 1
    so = 1 - si_in
    filled = 0
    stopped = False
    while qty > 0 and st.meta[M_NLV_BID + so] > 0:
        pos = st.meta[M_NLV_BID + so] - 1
        price = _price(so, st.lv_key[so, pos])
        if not _acceptable(si_in, price, limit):
            break
        while qty > 0 and st.lv_cnt[so, pos] > 0:
            r = st.lv_head[so, pos]
            if stp != STP_NONE and st.o_owner[r] == owner:
                if stp == STP_CANCEL_RESTING or stp == STP_CANCEL_BOTH:
                    _emit_cancel(st, ts, st.o_id[r], st.o_owner[r], st.o_side[r], price, st.o_qty[r], RS_STP_RESTING)
                    rq = st.o_qty[r]
                    nxt = st.o_next[r]
                    st.lv_head[so, pos] = nxt
                    if nxt != -1:
                        st.o_prev[nxt] = -1
                    else:
                        st.lv_tail[so, pos] = -1
                    st.lv_qty[so, pos] -= rq
                    st.lv_cnt[so, pos] -= 1
                    _free_slot(st, r)
                if stp == STP_CANCEL_INCOMING or stp == STP_CANCEL_BOTH:
                    stopped = True
                    break
                continue
            q = min(qty, st.o_qty[r])
            _emit_fill(st, ts, r, taker_id, owner, price, q, side)
            st.o_qty[r] -= q
            st.lv_qty[so, pos] -= q
            qty -= q
            filled += q
            if st.o_qty[r] == 0:
                nxt = st.o_next[r]
                st.lv_head[so, pos] = nxt
                if nxt != -1:
                    st.o_prev[nxt] = -1
                else:
                    st.lv_tail[so, pos] = -1
                st.lv_cnt[so, pos] -= 1
                _free_slot(st, r)
        if st.lv_cnt[so, pos] == 0:
            st.meta[M_NLV_BID + so] = pos
        if stopped:
            break
    return filled, qty, stopped


@njit(cache=True)
def _best_price(st, si):
    n = st.meta[M_NLV_BID + si]
    if n == 0:
        return -1
    return _price(si, st.lv_key[si, n - 1])


@njit(cache=True)
def _limit(st, oid, owner, side, price, qty, tif, stp, flags, ts, out, i):
    """A limit order of any time in force; writes its result row."""
    si = 0 if side == 1 else 1
    so = 1 - si
    if tif == TIF_POST_ONLY:
        best = _best_price(st, so)
        if best != -1 and _acceptable(si, best, price):
            _emit_cancel(st, ts, oid, owner, side, price, qty, RS_POST_ONLY)
            out[i, 0] = ST_POST_ONLY
            out[i, 3] += qty
            return
    if tif == TIF_FOK and not _fok_fillable(st, si, price, qty, owner, stp):
        _emit_cancel(st, ts, oid, owner, side, price, qty, RS_FOK)
        out[i, 0] = ST_FOK
        out[i, 3] += qty
        return
    filled, rem, stopped = _match(st, side, price, qty, oid, owner, stp, ts)
    out[i, 1] += filled
    if rem > 0:
        if stopped:
            _emit_cancel(st, ts, oid, owner, side, price, rem, RS_STP_INCOMING)
            out[i, 3] += rem
        elif tif == TIF_GTC or tif == TIF_POST_ONLY:
            _rest(st, oid, owner, side, price, rem, tif, stp, flags, ts)
            out[i, 2] = rem
        else:
            _emit_cancel(st, ts, oid, owner, side, price, rem, RS_IOC)
            out[i, 3] += rem


@njit(cache=True)
def _cancel_owner(st, owner, ts, out, i):
    n = st.meta[M_NORDERS]
    slots = np.empty(n, np.int64)
    k = 0
    for si in range(2):
        for pos in range(st.meta[M_NLV_BID + si]):
            r = st.lv_head[si, pos]
            while r != -1:
                if st.o_owner[r] == owner:
                    slots[k] = r
                    k += 1
                r = st.o_next[r]
    for j in range(k):
        r = slots[j]
        _emit_cancel(st, ts, st.o_id[r], owner, st.o_side[r], st.o_price[r], st.o_qty[r], RS_CANCEL_ALL)
        out[i, 3] += st.o_qty[r]
        _unlink(st, r)
        _free_slot(st, r)


@njit(cache=True)
def _has_room(st):
    """Is there room for the worst case of one more operation?"""
    n = st.meta[M_NORDERS]
    if st.meta[M_NFREE] < 1:
        return False
    lcap = st.lv_key.shape[1]
    if st.meta[M_NLV_BID] >= lcap - 1 or st.meta[M_NLV_ASK] >= lcap - 1:
        return False
    if st.fills.shape[0] - st.meta[M_NFILLS] < n + 2:
        return False
    if st.cancels.shape[0] - st.meta[M_NCANCELS] < n + 3:
        return False
    return True


@njit(cache=True)
def process_ops(st, ops, start, out):
    """Apply ``ops[start:]`` in order; write one result row per op into ``out``.

    Returns the index of the first op not applied (``len(ops)`` when all were), which is
    less only when an output buffer or the order pool needs to grow first.
    """
    n_ops = ops.shape[0]
    for i in range(start, n_ops):
        if not _has_room(st):
            return i
        apply_op(st, ops, i, out)
    return n_ops


@njit(cache=True)
def apply_op(st, ops, i, out):
    """Apply operation row ``i`` (the caller has checked :func:`_has_room`)."""
    kind = ops[i, C_KIND]
    oid = ops[i, C_ID]
    owner = ops[i, C_OWNER]
    side = ops[i, C_SIDE]
    price = ops[i, C_PRICE]
    qty = ops[i, C_QTY]
    tif = ops[i, C_TIF]
    stp = ops[i, C_STP]
    flags = ops[i, C_FLAGS]
    ts = ops[i, C_TS]
    out[i, 0] = ST_OK
    out[i, 1] = 0
    out[i, 2] = 0
    out[i, 3] = 0
    bits = st.meta[M_HTBITS]
    if kind == OP_LIMIT or kind == OP_MARKET:
        if (side != 1 and side != -1) or qty <= 0 or oid < 0 or stp < 0 or stp > 3:
            out[i, 0] = ST_INVALID
            return
        if kind == OP_LIMIT and (price <= 0 or tif < 0 or tif > 3):
            out[i, 0] = ST_INVALID
            return
        if kind == OP_MARKET and price < 0:
            out[i, 0] = ST_INVALID
            return
        if ht_get(st.ht_keys, st.ht_vals, bits, oid) != -1:
            out[i, 0] = ST_DUP
            return
        if kind == OP_LIMIT:
            _limit(st, oid, owner, side, price, qty, tif, stp, flags, ts, out, i)
        else:
            si = 0 if side == 1 else 1
            best = _best_price(st, 1 - si)
            if best == -1:
                _emit_cancel(st, ts, oid, owner, side, 0, qty, RS_NO_LIQ)
                out[i, 0] = ST_NO_LIQ
                out[i, 3] = qty
                return
            bound = best + price if side == 1 else max(1, best - price)
            _limit(st, oid, owner, side, bound, qty, TIF_IOC, stp, flags, ts, out, i)
    elif kind == OP_CANCEL or kind == OP_AMEND or kind == OP_REDUCE:
        slot = ht_get(st.ht_keys, st.ht_vals, bits, oid)
        if slot == -1:
            out[i, 0] = ST_UNKNOWN
            return
        if kind != OP_REDUCE and st.o_owner[slot] != owner:
            out[i, 0] = ST_NOT_OWNER
            return
        if kind == OP_CANCEL:
            _emit_cancel(st, ts, oid, owner, st.o_side[slot], st.o_price[slot], st.o_qty[slot], RS_USER)
            out[i, 3] = st.o_qty[slot]
            _unlink(st, slot)
            _free_slot(st, slot)
        elif kind == OP_REDUCE:
            if qty <= 0:
                out[i, 0] = ST_INVALID
                return
            cut = min(qty, st.o_qty[slot])
            _emit_cancel(st, ts, oid, st.o_owner[slot], st.o_side[slot], st.o_price[slot], cut, RS_EXTERNAL)
            out[i, 3] = cut
            if cut == st.o_qty[slot]:
                _unlink(st, slot)
                _free_slot(st, slot)
            else:
                si = 0 if st.o_side[slot] == 1 else 1
                pos = _level_pos(st, si, _key(si, st.o_price[slot]))
                st.o_qty[slot] -= cut
                st.lv_qty[si, pos] -= cut
                out[i, 2] = st.o_qty[slot]
        else:  # amend: price = new price, qty = new open quantity
            if qty <= 0 or price <= 0:
                out[i, 0] = ST_INVALID
                return
            old_qty = st.o_qty[slot]
            oside = st.o_side[slot]
            if price == st.o_price[slot] and qty <= old_qty:
                if qty < old_qty:
                    si = 0 if oside == 1 else 1
                    pos = _level_pos(st, si, _key(si, price))
                    st.o_qty[slot] = qty
                    st.lv_qty[si, pos] -= old_qty - qty
                    _emit_cancel(st, ts, oid, owner, oside, price, old_qty - qty, RS_AMEND_DOWN)
                    out[i, 3] = old_qty - qty
                out[i, 2] = qty
            else:
                otif = st.o_tif[slot]
                ostp = st.o_stp[slot]
                oflags = st.o_flags[slot]
                if qty < old_qty:
                    _emit_cancel(st, ts, oid, owner, oside, st.o_price[slot], old_qty - qty, RS_AMEND_DOWN)
                    out[i, 3] = old_qty - qty
                _unlink(st, slot)
                _free_slot(st, slot)
                _limit(st, oid, owner, oside, price, qty, otif, ostp, oflags, ts, out, i)
                if out[i, 0] == ST_POST_ONLY:
                    out[i, 0] = ST_OK  # the amend happened; the order then expired as post-only
    elif kind == OP_CANCEL_ALL:
        _cancel_owner(st, owner, ts, out, i)
    else:
        out[i, 0] = ST_INVALID


@njit(cache=True)
def rebuild_hash(st_old_ids, new_keys, new_vals, bits):
    """Re-insert every live order id after the table was enlarged."""
    for slot in range(st_old_ids.shape[0]):
        oid = st_old_ids[slot]
        if oid >= 0:
            ht_put(new_keys, new_vals, bits, oid, slot)


@njit(cache=True)
def queue_position(st, slot):
    """(orders ahead, quantity ahead) of a resting order in its level's FIFO."""
    n_ahead = 0
    q_ahead = 0
    r = st.o_prev[slot]
    while r != -1:
        n_ahead += 1
        q_ahead += st.o_qty[r]
        r = st.o_prev[r]
    return n_ahead, q_ahead


@njit(cache=True)
def level_orders(st, si, pos, out_slots):
    """Write the slots of level ``pos`` of side ``si`` in FIFO order; return how many."""
    k = 0
    r = st.lv_head[si, pos]
    while r != -1:
        out_slots[k] = r
        k += 1
        r = st.o_next[r]
    return k


__all__ = ["BookArrays", "apply_op", "new_book_arrays", "process_ops"]
