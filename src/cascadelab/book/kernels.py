"""Numba kernels of the fast order book: an order pool with index-linked FIFO queues.

State lives in preallocated NumPy arrays (:class:`BookArrays`). Orders occupy slots of a
pool recycled through a free stack; an open-addressing hash table maps order ids to
slots. Each side keeps its price levels in a sorted array of keys with the *best level
last* (key = price for bids, -price for asks), so the levels touched most often sit at
the end and inserting or removing them moves almost nothing.

:func:`apply_op` applies one operation and writes fills and cancellations (records of
:data:`cascadelab.records.BOOK_FILL` / ``BOOK_CANCEL``) into output buffers;
:func:`process_ops` applies a batch of :data:`cascadelab.records.BOOK_OP` records. They
stop early, returning the index of the first op they did not apply, when a buffer might
overflow; the Python wrapper grows the buffers and calls again.

**Reduce-only orders.** The book cannot know positions, so the caller passes ``pos``: the
owners' net positions in this instrument *before* the operation, indexed by owner (an
empty array switches the rule off, e.g. for spot books and replayed data). A reduce-only
order then never trades beyond the position it reduces: the incoming order is cut to the
position, and a resting reduce-only order that is reached when its owner's position (as
moved by this operation's earlier fills) no longer allows it is cancelled with reason
``REDUCE_ONLY`` (Binance: "canceled, as it's knocked out by ... or reversed positions
would be opened"). The book keeps a registry of its resting reduce-only orders so that a
caller can cancel those that can no longer reduce after positions change
(:func:`cancel_stale_reduce_only`) without walking the whole book.

Public functions (no leading underscore) are the book's compiled API: other compiled code
(the venue's order entry, the LOBSTER replay) uses these and nothing private.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from cascadelab.records import BOOK_CANCEL, BOOK_FILL

# Codes duplicated as plain ints so Numba folds them (tests check they equal the enums).
OP_LIMIT, OP_MARKET, OP_CANCEL, OP_AMEND, OP_CANCEL_ALL, OP_REDUCE = 0, 1, 2, 3, 4, 5
TIF_GTC, TIF_IOC, TIF_FOK, TIF_POST_ONLY = 0, 1, 2, 3
STP_NONE, STP_CANCEL_RESTING, STP_CANCEL_INCOMING, STP_CANCEL_BOTH = 0, 1, 2, 3
ST_OK, ST_INVALID, ST_DUP, ST_UNKNOWN, ST_NOT_OWNER, ST_POST_ONLY, ST_FOK, ST_NO_LIQ = 0, 1, 2, 3, 4, 5, 6, 7
RS_USER, RS_IOC, RS_FOK, RS_POST_ONLY, RS_STP_RESTING, RS_STP_INCOMING = 0, 1, 2, 3, 4, 5
RS_AMEND_DOWN, RS_CANCEL_ALL, RS_EXTERNAL, RS_NO_LIQ, RS_REDUCE_ONLY = 6, 7, 8, 9, 10
FLAG_REDUCE_ONLY = 1

# meta slots
M_NFREE, M_NLV_BID, M_NLV_ASK, M_NORDERS, M_HTBITS, M_NFILLS, M_NCANCELS, M_SEQ, M_LAST_PRICE, M_NRO, M_OPFILL0 = range(11)
N_META = 11
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
    o_ro: np.ndarray  # index in ``ro_slots`` of a resting reduce-only order, else -1
    free: np.ndarray
    ro_slots: np.ndarray  # slots of resting reduce-only orders (first ``meta[M_NRO]``)
    lv_key: np.ndarray  # (2, L): side 0 bids (key=price), side 1 asks (key=-price); ascending, best last
    lv_head: np.ndarray
    lv_tail: np.ndarray
    lv_qty: np.ndarray
    lv_cnt: np.ndarray
    ht_keys: np.ndarray
    ht_vals: np.ndarray
    meta: np.ndarray
    fills: np.ndarray  # BOOK_FILL records
    cancels: np.ndarray  # BOOK_CANCEL records


ORDER_FIELDS = ("o_id", "o_owner", "o_side", "o_price", "o_qty", "o_next", "o_prev", "o_tif", "o_stp", "o_flags", "o_ts", "o_seq")
"""Per-slot columns (``o_ro`` and ``free`` are grown separately)."""


def ht_bits_for(capacity: int) -> int:
    """Bits of the id hash table for ``capacity`` order slots (load factor <= 1/2)."""
    bits = 4
    while (1 << bits) < 2 * capacity:
        bits += 1
    return bits


def new_book_arrays(order_capacity: int = 1 << 12, level_capacity: int = 1 << 10, out_capacity: int = 1 << 14) -> BookArrays:
    """Allocate an empty book with room for ``order_capacity`` resting orders."""
    c, lcap = int(order_capacity), int(level_capacity)
    bits = ht_bits_for(c)
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
        o_ro=np.full(c, -1, np.int64),
        free=np.arange(c - 1, -1, -1, dtype=np.int64),
        ro_slots=np.zeros(c, np.int64),
        lv_key=np.zeros((2, lcap), np.int64),
        lv_head=np.full((2, lcap), -1, np.int64),
        lv_tail=np.full((2, lcap), -1, np.int64),
        lv_qty=np.zeros((2, lcap), np.int64),
        lv_cnt=np.zeros((2, lcap), np.int64),
        ht_keys=np.full(1 << bits, EMPTY, np.int64),
        ht_vals=np.full(1 << bits, -1, np.int64),
        meta=meta,
        fills=np.zeros(int(out_capacity), BOOK_FILL),
        cancels=np.zeros(int(out_capacity), BOOK_CANCEL),
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


@njit(cache=True)
def rebuild_hash(ids, new_keys, new_vals, bits):
    """Re-insert every live order id after the table was enlarged."""
    for slot in range(ids.shape[0]):
        oid = ids[slot]
        if oid >= 0:
            ht_put(new_keys, new_vals, bits, oid, slot)


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
def _emit_fill(st, ts, maker, taker_id, taker_owner, price, qty, aggressor, taker_flags):
    k = st.meta[M_NFILLS]
    f = st.fills[k]
    f.ts = ts
    f.maker_id = st.o_id[maker]
    f.taker_id = taker_id
    f.maker_owner = st.o_owner[maker]
    f.taker_owner = taker_owner
    f.price = price
    f.qty = qty
    f.aggressor = aggressor
    f.maker_flags = st.o_flags[maker]
    f.taker_flags = taker_flags
    st.meta[M_NFILLS] = k + 1
    st.meta[M_LAST_PRICE] = price


@njit(cache=True)
def _emit_cancel(st, ts, oid, owner, side, price, qty, reason, flags):
    k = st.meta[M_NCANCELS]
    x = st.cancels[k]
    x.ts = ts
    x.order_id = oid
    x.owner = owner
    x.side = side
    x.price = price
    x.qty = qty
    x.reason = reason
    x.flags = flags
    st.meta[M_NCANCELS] = k + 1


@njit(cache=True)
def _free_slot(st, slot):
    ht_del(st.ht_keys, st.ht_vals, st.meta[M_HTBITS], st.o_id[slot])
    j = st.o_ro[slot]
    if j >= 0:  # swap-remove from the reduce-only registry
        last = st.meta[M_NRO] - 1
        moved = st.ro_slots[last]
        st.ro_slots[j] = moved
        st.o_ro[moved] = j
        st.o_ro[slot] = -1
        st.meta[M_NRO] = last
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
def remove_order(st, slot):
    """Take the resting order in ``slot`` out of the book (no record is emitted)."""
    _unlink(st, slot)
    _free_slot(st, slot)


@njit(cache=True)
def add_resting(st, oid, owner, side, price, qty, tif, stp, flags, ts):
    """Put a new order at the back of its price level (no matching); returns its slot."""
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
    st.o_ro[slot] = -1
    if flags & FLAG_REDUCE_ONLY:
        st.o_ro[slot] = st.meta[M_NRO]
        st.ro_slots[st.meta[M_NRO]] = slot
        st.meta[M_NRO] += 1
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
    return slot


@njit(cache=True)
def shrink_order(st, slot, qty):
    """Take ``qty`` (less than its size) off a resting order in place, keeping its priority."""
    si = 0 if st.o_side[slot] == 1 else 1
    pos = _level_pos(st, si, _key(si, st.o_price[slot]))
    st.o_qty[slot] -= qty
    st.lv_qty[si, pos] -= qty


@njit(cache=True)
def grow_order(st, slot, qty):
    """Add ``qty`` to a resting order in place (replayed data only: it keeps its priority)."""
    si = 0 if st.o_side[slot] == 1 else 1
    pos = _level_pos(st, si, _key(si, st.o_price[slot]))
    st.o_qty[slot] += qty
    st.lv_qty[si, pos] += qty


@njit(cache=True)
def find(st, oid):
    """Slot of resting order ``oid``, or -1."""
    return ht_get(st.ht_keys, st.ht_vals, st.meta[M_HTBITS], oid)


@njit(cache=True)
def level_count(st, si):
    """Number of price levels on side ``si`` (0 bids, 1 asks)."""
    return st.meta[M_NLV_BID + si]


@njit(cache=True)
def level_at(st, si, rank):
    """(price, quantity) of the ``rank``-th best level of side ``si`` (0 = best)."""
    pos = st.meta[M_NLV_BID + si] - 1 - rank
    return _price(si, st.lv_key[si, pos]), st.lv_qty[si, pos]


@njit(cache=True)
def level_qty(st, si, price):
    """Quantity resting at ``price`` on side ``si`` (0 if no level)."""
    pos = _level_pos(st, si, _key(si, price))
    return st.lv_qty[si, pos] if pos >= 0 else 0


@njit(cache=True)
def level_head(st, si, price):
    """Slot of the first order in the FIFO at ``price`` on side ``si``, or -1."""
    pos = _level_pos(st, si, _key(si, price))
    return st.lv_head[si, pos] if pos >= 0 else -1


@njit(cache=True)
def best_price(st, si):
    """Best price of side ``si`` in ticks, or -1 for an empty side."""
    n = st.meta[M_NLV_BID + si]
    if n == 0:
        return -1
    return _price(si, st.lv_key[si, n - 1])


@njit(cache=True, inline="always")
def acceptable(si_in, level_price, limit):
    """Would an order of side index ``si_in`` with ``limit`` trade at ``level_price``?"""
    return level_price <= limit if si_in == 0 else level_price >= limit


@njit(cache=True)
def _fok_fillable(st, si_in, limit, qty, owner, stp):
    """Would a fill-or-kill order fill in full? Walks the book as matching would."""
    so = 1 - si_in
    acc = 0
    pos = st.meta[M_NLV_BID + so] - 1
    while pos >= 0:
        price = _price(so, st.lv_key[so, pos])
        if not acceptable(si_in, price, limit):
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
def _position_now(st, pos, owner):
    """``owner``'s position as moved by the current operation's fills so far."""
    cur = pos[owner]
    for j in range(st.meta[M_OPFILL0], st.meta[M_NFILLS]):
        f = st.fills[j]
        if f.maker_owner == owner:
            cur -= f.aggressor * f.qty
        if f.taker_owner == owner:
            cur += f.aggressor * f.qty
    return cur


@njit(cache=True, inline="always")
def _reducible(cur, side):
    """Lots an order of ``side`` can trade while only reducing a position of ``cur`` lots."""
    if cur > 0 and side == -1:
        return cur
    if cur < 0 and side == 1:
        return -cur
    return 0


@njit(cache=True)
def _drop_head(st, so, pos, r):
    """Unlink the head order ``r`` of level ``pos`` and free its slot."""
    nxt = st.o_next[r]
    st.lv_head[so, pos] = nxt
    if nxt != -1:
        st.o_prev[nxt] = -1
    else:
        st.lv_tail[so, pos] = -1
    st.lv_qty[so, pos] -= st.o_qty[r]
    st.lv_cnt[so, pos] -= 1
    _free_slot(st, r)


@njit(cache=True)
def _match(st, side, limit, qty, taker_id, owner, stp, flags, ts, pos):
    """Trade an incoming order against the other side. Returns (filled, remaining, stp_stopped)."""
    si_in = 0 if side == 1 else 1
    so = 1 - si_in
    filled = 0
    stopped = False
    ro_on = pos.shape[0] > 0
    while qty > 0 and st.meta[M_NLV_BID + so] > 0:
        lp = st.meta[M_NLV_BID + so] - 1
        price = _price(so, st.lv_key[so, lp])
        if not acceptable(si_in, price, limit):
            break
        while qty > 0 and st.lv_cnt[so, lp] > 0:
            r = st.lv_head[so, lp]
            mo = st.o_owner[r]
            if stp != STP_NONE and mo == owner:
                if stp == STP_CANCEL_RESTING or stp == STP_CANCEL_BOTH:
                    _emit_cancel(st, ts, st.o_id[r], mo, st.o_side[r], price, st.o_qty[r], RS_STP_RESTING, st.o_flags[r])
                    _drop_head(st, so, lp, r)
                if stp == STP_CANCEL_INCOMING or stp == STP_CANCEL_BOTH:
                    stopped = True
                    break
                continue
            room = st.o_qty[r]
            if ro_on and st.o_flags[r] & FLAG_REDUCE_ONLY:
                room = min(room, _reducible(_position_now(st, pos, mo), st.o_side[r]))
                if room == 0:
                    _emit_cancel(st, ts, st.o_id[r], mo, st.o_side[r], price, st.o_qty[r], RS_REDUCE_ONLY, st.o_flags[r])
                    _drop_head(st, so, lp, r)
                    continue
            q = min(qty, room)
            _emit_fill(st, ts, r, taker_id, owner, price, q, side, flags)
            st.o_qty[r] -= q
            st.lv_qty[so, lp] -= q
            qty -= q
            filled += q
            if st.o_qty[r] > 0 and q == room and room < st.o_qty[r] + q:
                # a reduce-only maker reached its position: the rest can no longer reduce
                _emit_cancel(st, ts, st.o_id[r], mo, st.o_side[r], price, st.o_qty[r], RS_REDUCE_ONLY, st.o_flags[r])
                _drop_head(st, so, lp, r)
            elif st.o_qty[r] == 0:
                _drop_head(st, so, lp, r)
        if st.lv_cnt[so, lp] == 0:
            st.meta[M_NLV_BID + so] = lp
        if stopped:
            break
    return filled, qty, stopped


@njit(cache=True)
def _limit(st, oid, owner, side, price, qty, tif, stp, flags, ts, res, pos):
    """A limit order of any time in force; fills in its result record ``res``."""
    si = 0 if side == 1 else 1
    so = 1 - si
    if flags & FLAG_REDUCE_ONLY and pos.shape[0] > 0:
        room = _reducible(_position_now(st, pos, owner), side)
        if room < qty:
            _emit_cancel(st, ts, oid, owner, side, price, qty - room, RS_REDUCE_ONLY, flags)
            res.cancelled += qty - room
            qty = room
            if qty == 0:
                return
    if tif == TIF_POST_ONLY:
        best = best_price(st, so)
        if best != -1 and acceptable(si, best, price):
            _emit_cancel(st, ts, oid, owner, side, price, qty, RS_POST_ONLY, flags)
            res.status = ST_POST_ONLY
            res.cancelled += qty
            return
    if tif == TIF_FOK and not _fok_fillable(st, si, price, qty, owner, stp):
        _emit_cancel(st, ts, oid, owner, side, price, qty, RS_FOK, flags)
        res.status = ST_FOK
        res.cancelled += qty
        return
    filled, rem, stopped = _match(st, side, price, qty, oid, owner, stp, flags, ts, pos)
    res.filled += filled
    if rem > 0:
        if stopped:
            _emit_cancel(st, ts, oid, owner, side, price, rem, RS_STP_INCOMING, flags)
            res.cancelled += rem
        elif tif == TIF_GTC or tif == TIF_POST_ONLY:
            add_resting(st, oid, owner, side, price, rem, tif, stp, flags, ts)
            res.resting = rem
        else:
            _emit_cancel(st, ts, oid, owner, side, price, rem, RS_IOC, flags)
            res.cancelled += rem


@njit(cache=True)
def _cancel_slot(st, slot, reason, ts, res):
    res.cancelled += st.o_qty[slot]
    _emit_cancel(st, ts, st.o_id[slot], st.o_owner[slot], st.o_side[slot], st.o_price[slot], st.o_qty[slot], reason, st.o_flags[slot])
    _unlink(st, slot)
    _free_slot(st, slot)


@njit(cache=True)
def cancel_owners(st, owner_mask, reason, ts, res):
    """Cancel every resting order whose owner is set in ``owner_mask`` (one pass over the book).

    Cancellations come out level by level, best level first, FIFO within a level; a single
    owner (``CANCEL_ALL``) and a whole batch of liquidated accounts use the same pass.
    """
    n = st.meta[M_NORDERS]
    slots = np.empty(n, np.int64)
    k = 0
    for si in range(2):
        for lp in range(st.meta[M_NLV_BID + si] - 1, -1, -1):
            r = st.lv_head[si, lp]
            while r != -1:
                o = st.o_owner[r]
                if 0 <= o < owner_mask.shape[0] and owner_mask[o]:
                    slots[k] = r
                    k += 1
                r = st.o_next[r]
    for j in range(k):
        _cancel_slot(st, slots[j], reason, ts, res)
    return k


@njit(cache=True)
def _cancel_owner(st, owner, reason, ts, res):
    n = st.meta[M_NORDERS]
    slots = np.empty(n, np.int64)
    k = 0
    for si in range(2):
        for lp in range(st.meta[M_NLV_BID + si] - 1, -1, -1):
            r = st.lv_head[si, lp]
            while r != -1:
                if st.o_owner[r] == owner:
                    slots[k] = r
                    k += 1
                r = st.o_next[r]
    for j in range(k):
        _cancel_slot(st, slots[j], reason, ts, res)
    return k


@njit(cache=True)
def cancel_stale_reduce_only(st, pos, owners, n_owners, ts, res):
    """Cancel resting reduce-only orders of ``owners[:n_owners]`` that can no longer reduce.

    An order can no longer reduce when its owner's position ``pos`` is flat or on the
    order's own side. Only the registry of reduce-only orders is walked; cancellations come
    out in ascending order id. Returns how many.
    """
    nro = st.meta[M_NRO]
    if nro == 0 or n_owners == 0:
        return 0
    ids = np.empty(nro, np.int64)
    cnt = 0
    for j in range(nro):
        slot = st.ro_slots[j]
        o = st.o_owner[slot]
        for t in range(n_owners):
            if owners[t] == o:
                if _reducible(pos[o], st.o_side[slot]) == 0:
                    ids[cnt] = st.o_id[slot]
                    cnt += 1
                break
    ids = np.sort(ids[:cnt])
    for j in range(cnt):
        _cancel_slot(st, find(st, ids[j]), RS_REDUCE_ONLY, ts, res)
    return cnt


@njit(cache=True)
def has_room(st, extra_orders):
    """Is there room for the worst case of one more operation (plus ``extra_orders`` cancels)?"""
    n = st.meta[M_NORDERS]
    if st.meta[M_NFREE] < 1:
        return False
    lcap = st.lv_key.shape[1]
    if st.meta[M_NLV_BID] >= lcap - 1 or st.meta[M_NLV_ASK] >= lcap - 1:
        return False
    if st.fills.shape[0] - st.meta[M_NFILLS] < n + 2:
        return False
    if st.cancels.shape[0] - st.meta[M_NCANCELS] < n + 3 + extra_orders:
        return False
    return True


@njit(cache=True)
def apply_op(st, kind, oid, owner, side, price, qty, tif, stp, flags, ts, res, pos):
    """Apply one operation (the caller has checked :func:`has_room`); fill in its result ``res``.

    ``pos`` is the owners' positions for reduce-only orders (see the module docstring).
    """
    res.status = ST_OK
    res.filled = 0
    res.resting = 0
    res.cancelled = 0
    st.meta[M_OPFILL0] = st.meta[M_NFILLS]
    bits = st.meta[M_HTBITS]
    if kind == OP_LIMIT or kind == OP_MARKET:
        if (side != 1 and side != -1) or qty <= 0 or oid < 0 or stp < 0 or stp > 3:
            res.status = ST_INVALID
            return
        if kind == OP_LIMIT and (price <= 0 or tif < 0 or tif > 3):
            res.status = ST_INVALID
            return
        if kind == OP_MARKET and price < 0:
            res.status = ST_INVALID
            return
        if ht_get(st.ht_keys, st.ht_vals, bits, oid) != -1:
            res.status = ST_DUP
            return
        if kind == OP_LIMIT:
            _limit(st, oid, owner, side, price, qty, tif, stp, flags, ts, res, pos)
        else:
            si = 0 if side == 1 else 1
            best = best_price(st, 1 - si)
            if best == -1:
                _emit_cancel(st, ts, oid, owner, side, 0, qty, RS_NO_LIQ, flags)
                res.status = ST_NO_LIQ
                res.cancelled = qty
                return
            bound = best + price if side == 1 else max(1, best - price)
            _limit(st, oid, owner, side, bound, qty, TIF_IOC, stp, flags, ts, res, pos)
    elif kind == OP_CANCEL or kind == OP_AMEND or kind == OP_REDUCE:
        slot = ht_get(st.ht_keys, st.ht_vals, bits, oid)
        if slot == -1:
            res.status = ST_UNKNOWN
            return
        if kind != OP_REDUCE and st.o_owner[slot] != owner:
            res.status = ST_NOT_OWNER
            return
        if kind == OP_CANCEL:
            _cancel_slot(st, slot, RS_USER, ts, res)
        elif kind == OP_REDUCE:
            if qty <= 0:
                res.status = ST_INVALID
                return
            cut = min(qty, st.o_qty[slot])
            if cut == st.o_qty[slot]:
                _cancel_slot(st, slot, RS_EXTERNAL, ts, res)
            else:
                _emit_cancel(st, ts, oid, st.o_owner[slot], st.o_side[slot], st.o_price[slot], cut, RS_EXTERNAL, st.o_flags[slot])
                shrink_order(st, slot, cut)
                res.cancelled = cut
                res.resting = st.o_qty[slot]
        else:  # amend: price = new price, qty = new open quantity
            if qty <= 0 or price <= 0:
                res.status = ST_INVALID
                return
            old_qty = st.o_qty[slot]
            oside = st.o_side[slot]
            oflags = st.o_flags[slot]
            if price == st.o_price[slot] and qty <= old_qty:
                if qty < old_qty:
                    shrink_order(st, slot, old_qty - qty)
                    _emit_cancel(st, ts, oid, owner, oside, price, old_qty - qty, RS_AMEND_DOWN, oflags)
                    res.cancelled = old_qty - qty
                res.resting = qty
            else:
                otif = st.o_tif[slot]
                ostp = st.o_stp[slot]
                if qty < old_qty:
                    _emit_cancel(st, ts, oid, owner, oside, st.o_price[slot], old_qty - qty, RS_AMEND_DOWN, oflags)
                    res.cancelled = old_qty - qty
                _unlink(st, slot)
                _free_slot(st, slot)
                _limit(st, oid, owner, oside, price, qty, otif, ostp, oflags, ts, res, pos)
                if res.status == ST_POST_ONLY:
                    res.status = ST_OK  # the amend happened; the order then expired as post-only
    elif kind == OP_CANCEL_ALL:
        _cancel_owner(st, owner, RS_CANCEL_ALL, ts, res)
    else:
        res.status = ST_INVALID


@njit(cache=True)
def process_ops(st, ops, start, out, pos):
    """Apply ``ops[start:]`` (BOOK_OP records) in order; write one BOOK_RESULT per op into ``out``.

    Returns the index of the first op not applied (``len(ops)`` when all were), which is
    less only when an output buffer or the order pool needs to grow first.
    """
    n_ops = ops.shape[0]
    for i in range(start, n_ops):
        if not has_room(st, 0):
            return i
        o = ops[i]
        apply_op(st, o.kind, o.order_id, o.owner, o.side, o.price, o.qty, o.tif, o.stp, o.flags, o.ts, out[i], pos)
    return n_ops


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


@njit(cache=True)
def depth_notional(st, bps, out):
    """Tick-lots (price x qty) resting within ±``bps``/10,000 of the mid on each side.

    ``out[0]`` bids, ``out[1]`` asks; both 0 for a one-sided book. Exact integer test: a bid
    at p counts if 2·p·10⁴ ≥ (bid + ask)(10⁴ − bps).
    """
    out[0] = 0
    out[1] = 0
    nb = st.meta[M_NLV_BID]
    na = st.meta[M_NLV_ASK]
    if nb == 0 or na == 0:
        return
    mid2 = st.lv_key[0, nb - 1] - st.lv_key[1, na - 1]
    for lp in range(nb - 1, -1, -1):
        p = st.lv_key[0, lp]
        if p * 20000 < mid2 * (10000 - bps):
            break
        out[0] += p * st.lv_qty[0, lp]
    for lp in range(na - 1, -1, -1):
        p = -st.lv_key[1, lp]
        if p * 20000 > mid2 * (10000 + bps):
            break
        out[1] += p * st.lv_qty[1, lp]


NO_POSITIONS = np.zeros(0, np.int64)
"""``pos`` argument that switches the reduce-only rule off (spot books, replayed data)."""

__all__ = [
    "NO_POSITIONS",
    "BookArrays",
    "add_resting",
    "apply_op",
    "best_price",
    "cancel_owners",
    "cancel_stale_reduce_only",
    "depth_notional",
    "find",
    "has_room",
    "level_at",
    "level_count",
    "level_head",
    "level_qty",
    "new_book_arrays",
    "process_ops",
    "remove_order",
    "shrink_order",
]
