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

from cascadelab.compiled import kernel, kernel_inline
from cascadelab.records import BOOK_CANCEL, BOOK_FILL

# Codes duplicated as plain ints so Numba folds them (tests check they equal the enums).
OP_LIMIT, OP_MARKET, OP_CANCEL, OP_AMEND, OP_CANCEL_ALL, OP_REDUCE = 0, 1, 2, 3, 4, 5
TIF_GTC, TIF_IOC, TIF_FOK, TIF_POST_ONLY = 0, 1, 2, 3
STP_NONE, STP_CANCEL_RESTING, STP_CANCEL_INCOMING, STP_CANCEL_BOTH = 0, 1, 2, 3
ST_OK, ST_INVALID, ST_DUP, ST_UNKNOWN, ST_NOT_OWNER, ST_POST_ONLY, ST_FOK, ST_NO_LIQ = 0, 1, 2, 3, 4, 5, 6, 7
RS_USER, RS_IOC, RS_FOK, RS_POST_ONLY, RS_STP_RESTING, RS_STP_INCOMING = 0, 1, 2, 3, 4, 5
RS_AMEND_DOWN, RS_CANCEL_ALL, RS_EXTERNAL, RS_NO_LIQ, RS_REDUCE_ONLY = 6, 7, 8, 9, 10
FLAG_REDUCE_ONLY = 1

# pool meta slots (shared by the books of one set)
M_NFREE, M_HTBITS, M_SEQ, M_NFILLS, M_NCANCELS, M_OPFILL0, M_NORDERS = range(7)
N_META = 7
# per-book meta slots
B_NLV_BID, B_NLV_ASK, B_NORDERS, B_LAST_PRICE, B_NRO = range(5)
N_BMETA = 5
EMPTY = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class BookArrays(NamedTuple):
    """All mutable state of a set of books, as arrays (see module docstring).

    The order pool, the id hash table and the output buffers are shared by the books of the
    set (order ids are unique across it); levels, the reduce-only registry and the per-book
    counters have a leading book dimension. Every kernel takes the set ``st`` and a book
    index ``bk``, so compiled callers never index a tuple of structures.
    """

    o_book: np.ndarray  # book of the order in each slot
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
    o_ro: np.ndarray  # index in its book's ``ro_slots`` of a resting reduce-only order, else -1
    o_onext: np.ndarray  # next slot of the same owner (any book of the set), -1 at the end
    o_oprev: np.ndarray
    own_head: np.ndarray  # first slot of each owner >= 0 (grown on demand), -1 for none
    scratch: np.ndarray  # slot lists built by cancels (as long as the pool)
    free: np.ndarray
    ro_slots: np.ndarray  # (books, cap): slots of resting reduce-only orders (first ``bmeta[bk, B_NRO]``)
    lv_key: np.ndarray  # (books, 2, L): side 0 bids (key=price), side 1 asks (key=-price); ascending, best last
    lv_head: np.ndarray
    lv_tail: np.ndarray
    lv_qty: np.ndarray
    lv_cnt: np.ndarray
    ht_keys: np.ndarray
    ht_vals: np.ndarray
    meta: np.ndarray  # pool counters (M_*)
    bmeta: np.ndarray  # (books, N_BMETA) per-book counters (B_*)
    fills: np.ndarray  # BOOK_FILL records
    cancels: np.ndarray  # BOOK_CANCEL records


ORDER_FIELDS = (
    "o_book", "o_id", "o_owner", "o_side", "o_price", "o_qty", "o_next", "o_prev", "o_tif", "o_stp", "o_flags", "o_ts", "o_seq",
)  # fmt: skip
"""Per-slot columns (``o_ro``, ``o_onext``, ``o_oprev`` and ``free`` are grown separately)."""
LEVEL_FIELDS = (("lv_key", 0), ("lv_head", -1), ("lv_tail", -1), ("lv_qty", 0), ("lv_cnt", 0))
"""Per-level arrays and their empty value."""


def ht_bits_for(capacity: int) -> int:
    """Bits of the id hash table for ``capacity`` order slots (load factor <= 1/2)."""
    bits = 4
    while (1 << bits) < 2 * capacity:
        bits += 1
    return bits


def new_book_arrays(
    order_capacity: int = 1 << 12, level_capacity: int = 1 << 10, out_capacity: int = 1 << 14, n_books: int = 1
) -> BookArrays:
    """Allocate ``n_books`` empty books sharing room for ``order_capacity`` resting orders."""
    c, lcap, nb = int(order_capacity), int(level_capacity), int(n_books)
    bits = ht_bits_for(c)
    meta = np.zeros(N_META, np.int64)
    meta[M_NFREE] = c
    meta[M_HTBITS] = bits
    return BookArrays(
        o_book=np.zeros(c, np.int64),
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
        o_onext=np.full(c, -1, np.int64),
        o_oprev=np.full(c, -1, np.int64),
        own_head=np.full(64, -1, np.int64),
        scratch=np.zeros(c, np.int64),
        free=np.arange(c - 1, -1, -1, dtype=np.int64),
        ro_slots=np.zeros((nb, c), np.int64),
        lv_key=np.zeros((nb, 2, lcap), np.int64),
        lv_head=np.full((nb, 2, lcap), -1, np.int64),
        lv_tail=np.full((nb, 2, lcap), -1, np.int64),
        lv_qty=np.zeros((nb, 2, lcap), np.int64),
        lv_cnt=np.zeros((nb, 2, lcap), np.int64),
        ht_keys=np.full(1 << bits, EMPTY, np.int64),
        ht_vals=np.full(1 << bits, -1, np.int64),
        meta=meta,
        bmeta=np.zeros((nb, N_BMETA), np.int64),
        fills=np.zeros(int(out_capacity), BOOK_FILL),
        cancels=np.zeros(int(out_capacity), BOOK_CANCEL),
    )


# --- hash table: order id -> slot (linear probing, backward-shift deletion) ---------
@kernel_inline
def _home(key, bits):
    return np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - bits))


@kernel
def ht_get(keys, vals, bits, key):
    """Slot of order ``key``, or -1."""
    mask = (1 << bits) - 1
    i = _home(key, bits)
    while keys[i] != EMPTY:
        if keys[i] == key:
            return vals[i]
        i = (i + 1) & mask
    return -1


@kernel
def ht_put(keys, vals, bits, key, val):
    """Insert ``key`` (known to be absent)."""
    mask = (1 << bits) - 1
    i = _home(key, bits)
    while keys[i] != EMPTY:
        i = (i + 1) & mask
    keys[i] = key
    vals[i] = val


@kernel
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


@kernel
def rebuild_hash(ids, new_keys, new_vals, bits):
    """Re-insert every live order id after the table was enlarged."""
    for slot in range(ids.shape[0]):
        oid = ids[slot]
        if oid >= 0:
            ht_put(new_keys, new_vals, bits, oid, slot)


# --- price levels ---------------------------------------------------------------------
@kernel_inline
def _key(si, price):
    return price if si == 0 else -price


@kernel_inline
def _price(si, key):
    return key if si == 0 else -key


@kernel
def _level_pos(st, bk, si, key):
    """Index of the level with ``key`` on side ``si`` or -(insertion point) - 1."""
    n = st.bmeta[bk, B_NLV_BID + si]
    lo, hi = 0, n
    # Activity concentrates at the best end: check it before bisecting.
    if n > 0 and st.lv_key[bk, si, n - 1] <= key:
        if st.lv_key[bk, si, n - 1] == key:
            return n - 1
        return -(n) - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if st.lv_key[bk, si, mid] < key:
            lo = mid + 1
        else:
            hi = mid
    if lo < n and st.lv_key[bk, si, lo] == key:
        return lo
    return -lo - 1


@kernel
def _level_insert(st, bk, si, pos, key):
    n = st.bmeta[bk, B_NLV_BID + si]
    for j in range(n, pos, -1):
        st.lv_key[bk, si, j] = st.lv_key[bk, si, j - 1]
        st.lv_head[bk, si, j] = st.lv_head[bk, si, j - 1]
        st.lv_tail[bk, si, j] = st.lv_tail[bk, si, j - 1]
        st.lv_qty[bk, si, j] = st.lv_qty[bk, si, j - 1]
        st.lv_cnt[bk, si, j] = st.lv_cnt[bk, si, j - 1]
    st.lv_key[bk, si, pos] = key
    st.lv_head[bk, si, pos] = -1
    st.lv_tail[bk, si, pos] = -1
    st.lv_qty[bk, si, pos] = 0
    st.lv_cnt[bk, si, pos] = 0
    st.bmeta[bk, B_NLV_BID + si] = n + 1


@kernel
def _level_remove(st, bk, si, pos):
    n = st.bmeta[bk, B_NLV_BID + si]
    for j in range(pos, n - 1):
        st.lv_key[bk, si, j] = st.lv_key[bk, si, j + 1]
        st.lv_head[bk, si, j] = st.lv_head[bk, si, j + 1]
        st.lv_tail[bk, si, j] = st.lv_tail[bk, si, j + 1]
        st.lv_qty[bk, si, j] = st.lv_qty[bk, si, j + 1]
        st.lv_cnt[bk, si, j] = st.lv_cnt[bk, si, j + 1]
    st.bmeta[bk, B_NLV_BID + si] = n - 1


# --- orders ---------------------------------------------------------------------------
@kernel
def _emit_fill(st, bk, ts, maker, taker_id, taker_owner, price, qty, aggressor, taker_flags):
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
    st.bmeta[bk, B_LAST_PRICE] = price


@kernel
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


@kernel
def _free_slot(st, slot):
    bk = st.o_book[slot]
    ht_del(st.ht_keys, st.ht_vals, st.meta[M_HTBITS], st.o_id[slot])
    j = st.o_ro[slot]
    if j >= 0:  # swap-remove from the reduce-only registry
        last = st.bmeta[bk, B_NRO] - 1
        moved = st.ro_slots[bk, last]
        st.ro_slots[bk, j] = moved
        st.o_ro[moved] = j
        st.o_ro[slot] = -1
        st.bmeta[bk, B_NRO] = last
    o = st.o_owner[slot]
    if o >= 0:
        prv = st.o_oprev[slot]
        nxt = st.o_onext[slot]
        if prv != -1:
            st.o_onext[prv] = nxt
        else:
            st.own_head[o] = nxt
        if nxt != -1:
            st.o_oprev[nxt] = prv
    st.o_id[slot] = -1
    st.o_qty[slot] = 0
    st.free[st.meta[M_NFREE]] = slot
    st.meta[M_NFREE] += 1
    st.meta[M_NORDERS] -= 1
    st.bmeta[bk, B_NORDERS] -= 1


@kernel
def _unlink(st, slot):
    """Take a resting order out of its level (the slot itself stays allocated)."""
    bk = st.o_book[slot]
    si = 0 if st.o_side[slot] == 1 else 1
    pos = _level_pos(st, bk, si, _key(si, st.o_price[slot]))
    prv = st.o_prev[slot]
    nxt = st.o_next[slot]
    if prv != -1:
        st.o_next[prv] = nxt
    else:
        st.lv_head[bk, si, pos] = nxt
    if nxt != -1:
        st.o_prev[nxt] = prv
    else:
        st.lv_tail[bk, si, pos] = prv
    st.lv_qty[bk, si, pos] -= st.o_qty[slot]
    st.lv_cnt[bk, si, pos] -= 1
    if st.lv_cnt[bk, si, pos] == 0:
        _level_remove(st, bk, si, pos)


@kernel
def remove_order(st, slot):
    """Take the resting order in ``slot`` out of the book (no record is emitted)."""
    _unlink(st, slot)
    _free_slot(st, slot)


@kernel
def add_resting(st, bk, oid, owner, side, price, qty, tif, stp, flags, ts):
    """Put a new order at the back of its price level (no matching); returns its slot."""
    st.meta[M_NFREE] -= 1
    slot = st.free[st.meta[M_NFREE]]
    st.o_book[slot] = bk
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
    st.o_oprev[slot] = -1
    st.o_onext[slot] = -1
    if owner >= 0:
        head = st.own_head[owner]
        st.o_onext[slot] = head
        if head != -1:
            st.o_oprev[head] = slot
        st.own_head[owner] = slot
    if flags & FLAG_REDUCE_ONLY:
        st.o_ro[slot] = st.bmeta[bk, B_NRO]
        st.ro_slots[bk, st.bmeta[bk, B_NRO]] = slot
        st.bmeta[bk, B_NRO] += 1
    st.meta[M_SEQ] += 1
    st.meta[M_NORDERS] += 1
    st.bmeta[bk, B_NORDERS] += 1
    ht_put(st.ht_keys, st.ht_vals, st.meta[M_HTBITS], oid, slot)
    si = 0 if side == 1 else 1
    key = _key(si, price)
    pos = _level_pos(st, bk, si, key)
    if pos < 0:
        pos = -pos - 1
        _level_insert(st, bk, si, pos, key)
    tail = st.lv_tail[bk, si, pos]
    st.o_prev[slot] = tail
    st.o_next[slot] = -1
    if tail != -1:
        st.o_next[tail] = slot
    else:
        st.lv_head[bk, si, pos] = slot
    st.lv_tail[bk, si, pos] = slot
    st.lv_qty[bk, si, pos] += qty
    st.lv_cnt[bk, si, pos] += 1
    return slot


@kernel
def shrink_order(st, slot, qty):
    """Take ``qty`` (less than its size) off a resting order in place, keeping its priority."""
    bk = st.o_book[slot]
    si = 0 if st.o_side[slot] == 1 else 1
    pos = _level_pos(st, bk, si, _key(si, st.o_price[slot]))
    st.o_qty[slot] -= qty
    st.lv_qty[bk, si, pos] -= qty


@kernel
def grow_order(st, slot, qty):
    """Add ``qty`` to a resting order in place (replayed data only: it keeps its priority)."""
    bk = st.o_book[slot]
    si = 0 if st.o_side[slot] == 1 else 1
    pos = _level_pos(st, bk, si, _key(si, st.o_price[slot]))
    st.o_qty[slot] += qty
    st.lv_qty[bk, si, pos] += qty


@kernel
def find(st, oid):
    """Slot of resting order ``oid``, or -1."""
    return ht_get(st.ht_keys, st.ht_vals, st.meta[M_HTBITS], oid)


@kernel
def level_count(st, bk, si):
    """Number of price levels on side ``si`` (0 bids, 1 asks)."""
    return st.bmeta[bk, B_NLV_BID + si]


@kernel
def level_at(st, bk, si, rank):
    """(price, quantity) of the ``rank``-th best level of side ``si`` (0 = best)."""
    pos = st.bmeta[bk, B_NLV_BID + si] - 1 - rank
    return _price(si, st.lv_key[bk, si, pos]), st.lv_qty[bk, si, pos]


@kernel
def level_qty(st, bk, si, price):
    """Quantity resting at ``price`` on side ``si`` (0 if no level)."""
    pos = _level_pos(st, bk, si, _key(si, price))
    return st.lv_qty[bk, si, pos] if pos >= 0 else 0


@kernel
def level_head(st, bk, si, price):
    """Slot of the first order in the FIFO at ``price`` on side ``si``, or -1."""
    pos = _level_pos(st, bk, si, _key(si, price))
    return st.lv_head[bk, si, pos] if pos >= 0 else -1


@kernel
def best_price(st, bk, si):
    """Best price of side ``si`` in ticks, or -1 for an empty side."""
    n = st.bmeta[bk, B_NLV_BID + si]
    if n == 0:
        return -1
    return _price(si, st.lv_key[bk, si, n - 1])


@kernel_inline
def acceptable(si_in, level_price, limit):
    """Would an order of side index ``si_in`` with ``limit`` trade at ``level_price``?"""
    return level_price <= limit if si_in == 0 else level_price >= limit


@kernel
def _fok_fillable(st, bk, si_in, limit, qty, owner, stp):
    """Would a fill-or-kill order fill in full? Walks the book as matching would."""
    so = 1 - si_in
    acc = 0
    pos = st.bmeta[bk, B_NLV_BID + so] - 1
    while pos >= 0:
        price = _price(so, st.lv_key[bk, so, pos])
        if not acceptable(si_in, price, limit):
            return False
        r = st.lv_head[bk, so, pos]
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


@kernel
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


@kernel_inline
def _reducible(cur, side):
    """Lots an order of ``side`` can trade while only reducing a position of ``cur`` lots."""
    if cur > 0 and side == -1:
        return cur
    if cur < 0 and side == 1:
        return -cur
    return 0


@kernel
def _drop_head(st, bk, so, pos, r):
    """Unlink the head order ``r`` of level ``pos`` and free its slot."""
    nxt = st.o_next[r]
    st.lv_head[bk, so, pos] = nxt
    if nxt != -1:
        st.o_prev[nxt] = -1
    else:
        st.lv_tail[bk, so, pos] = -1
    st.lv_qty[bk, so, pos] -= st.o_qty[r]
    st.lv_cnt[bk, so, pos] -= 1
    _free_slot(st, r)


@kernel
def _match(st, bk, side, limit, qty, taker_id, owner, stp, flags, ts, pos):
    """Trade an incoming order against the other side. Returns (filled, remaining, stp_stopped)."""
    si_in = 0 if side == 1 else 1
    so = 1 - si_in
    filled = 0
    stopped = False
    ro_on = pos.shape[0] > 0
    while qty > 0 and st.bmeta[bk, B_NLV_BID + so] > 0:
        lp = st.bmeta[bk, B_NLV_BID + so] - 1
        price = _price(so, st.lv_key[bk, so, lp])
        if not acceptable(si_in, price, limit):
            break
        while qty > 0 and st.lv_cnt[bk, so, lp] > 0:
            r = st.lv_head[bk, so, lp]
            mo = st.o_owner[r]
            if stp != STP_NONE and mo == owner:
                if stp == STP_CANCEL_RESTING or stp == STP_CANCEL_BOTH:
                    _emit_cancel(st, ts, st.o_id[r], mo, st.o_side[r], price, st.o_qty[r], RS_STP_RESTING, st.o_flags[r])
                    _drop_head(st, bk, so, lp, r)
                if stp == STP_CANCEL_INCOMING or stp == STP_CANCEL_BOTH:
                    stopped = True
                    break
                continue
            room = st.o_qty[r]
            if ro_on and st.o_flags[r] & FLAG_REDUCE_ONLY:
                room = min(room, _reducible(_position_now(st, pos, mo), st.o_side[r]))
                if room == 0:
                    _emit_cancel(st, ts, st.o_id[r], mo, st.o_side[r], price, st.o_qty[r], RS_REDUCE_ONLY, st.o_flags[r])
                    _drop_head(st, bk, so, lp, r)
                    continue
            q = min(qty, room)
            _emit_fill(st, bk, ts, r, taker_id, owner, price, q, side, flags)
            st.o_qty[r] -= q
            st.lv_qty[bk, so, lp] -= q
            qty -= q
            filled += q
            if st.o_qty[r] > 0 and q == room and room < st.o_qty[r] + q:
                # a reduce-only maker reached its position: the rest can no longer reduce
                _emit_cancel(st, ts, st.o_id[r], mo, st.o_side[r], price, st.o_qty[r], RS_REDUCE_ONLY, st.o_flags[r])
                _drop_head(st, bk, so, lp, r)
            elif st.o_qty[r] == 0:
                _drop_head(st, bk, so, lp, r)
        if st.lv_cnt[bk, so, lp] == 0:
            st.bmeta[bk, B_NLV_BID + so] = lp
        if stopped:
            break
    return filled, qty, stopped


@kernel
def _limit(st, bk, oid, owner, side, price, qty, tif, stp, flags, ts, res, pos):
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
        best = best_price(st, bk, so)
        if best != -1 and acceptable(si, best, price):
            _emit_cancel(st, ts, oid, owner, side, price, qty, RS_POST_ONLY, flags)
            res.status = ST_POST_ONLY
            res.cancelled += qty
            return
    if tif == TIF_FOK and not _fok_fillable(st, bk, si, price, qty, owner, stp):
        _emit_cancel(st, ts, oid, owner, side, price, qty, RS_FOK, flags)
        res.status = ST_FOK
        res.cancelled += qty
        return
    filled, rem, stopped = _match(st, bk, side, price, qty, oid, owner, stp, flags, ts, pos)
    res.filled += filled
    if rem > 0:
        if stopped:
            _emit_cancel(st, ts, oid, owner, side, price, rem, RS_STP_INCOMING, flags)
            res.cancelled += rem
        elif tif == TIF_GTC or tif == TIF_POST_ONLY:
            add_resting(st, bk, oid, owner, side, price, rem, tif, stp, flags, ts)
            res.resting = rem
        else:
            _emit_cancel(st, ts, oid, owner, side, price, rem, RS_IOC, flags)
            res.cancelled += rem


@kernel
def _cancel_slot(st, slot, reason, ts, res):
    res.cancelled += st.o_qty[slot]
    _emit_cancel(
        st, ts, st.o_id[slot], st.o_owner[slot], st.o_side[slot], st.o_price[slot], st.o_qty[slot], reason, st.o_flags[slot]
    )
    _unlink(st, slot)
    _free_slot(st, slot)


@kernel
def _sort_by_id(st, a, lo, hi):
    """Sort slots ``a[lo:hi]`` by ascending order id, in place (heapsort: no allocation)."""
    n = hi - lo
    for start in range(n // 2 - 1, -1, -1):
        _sift(st, a, lo, start, n)
    for end in range(n - 1, 0, -1):
        a[lo], a[lo + end] = a[lo + end], a[lo]
        _sift(st, a, lo, 0, end)


@kernel
def _sift(st, a, lo, root, n):
    while True:
        child = 2 * root + 1
        if child >= n:
            return
        if child + 1 < n and st.o_id[a[lo + child]] < st.o_id[a[lo + child + 1]]:
            child += 1
        if st.o_id[a[lo + root]] < st.o_id[a[lo + child]]:
            a[lo + root], a[lo + child] = a[lo + child], a[lo + root]
            root = child
        else:
            return


@kernel
def _owner_slots(st, bk, owner, out, k):
    """Append to ``out`` the slots of ``owner``'s resting orders in book ``bk``, in ascending order id; returns the count."""
    if owner < 0 or owner >= st.own_head.shape[0]:
        return k
    k0 = k
    r = st.own_head[owner]
    while r != -1:
        if st.o_book[r] == bk:
            out[k] = r
            k += 1
        r = st.o_onext[r]
    _sort_by_id(st, out, k0, k)
    return k


@kernel
def owner_order_count(st, bk, owner):
    """Resting orders of ``owner`` in book ``bk`` (a walk of the owner's list only)."""
    if owner < 0 or owner >= st.own_head.shape[0]:
        return 0
    n = 0
    r = st.own_head[owner]
    while r != -1:
        if st.o_book[r] == bk:
            n += 1
        r = st.o_onext[r]
    return n


@kernel
def cancel_owners(st, bk, owners, reason, ts, res):
    """Cancel every resting order in book ``bk`` of the owners in ``owners`` (ascending ids expected).

    Each owner's orders come out in ascending order id; only the owners' own order lists
    are walked, never the whole book. Returns how many orders were cancelled.
    """
    slots = st.scratch
    k = 0
    for t in range(owners.shape[0]):
        k = _owner_slots(st, bk, owners[t], slots, k)
    for j in range(k):
        _cancel_slot(st, slots[j], reason, ts, res)
    return k


@kernel
def _cancel_owner(st, bk, owner, reason, ts, res):
    slots = st.scratch
    k = _owner_slots(st, bk, owner, slots, 0)
    for j in range(k):
        _cancel_slot(st, slots[j], reason, ts, res)
    return k


@kernel
def cancel_stale_reduce_only(st, bk, pos, owners, n_owners, ts, res):
    """Cancel resting reduce-only orders of ``owners[:n_owners]`` that can no longer reduce.

    An order can no longer reduce when its owner's position ``pos`` is flat or on the
    order's own side. Only the registry of reduce-only orders is walked; cancellations come
    out in ascending order id. Returns how many.
    """
    nro = st.bmeta[bk, B_NRO]
    if nro == 0 or n_owners == 0:
        return 0
    slots = st.scratch
    cnt = 0
    for j in range(nro):
        slot = st.ro_slots[bk, j]
        o = st.o_owner[slot]
        for t in range(n_owners):
            if owners[t] == o:
                if _reducible(pos[o], st.o_side[slot]) == 0:
                    slots[cnt] = slot
                    cnt += 1
                break
    _sort_by_id(st, slots, 0, cnt)
    for j in range(cnt):
        _cancel_slot(st, slots[j], RS_REDUCE_ONLY, ts, res)
    return cnt


@kernel
def has_room(st, bk, extra_orders, owner):
    """Is there room for the worst case of one more operation on book ``bk`` by ``owner`` (plus ``extra_orders`` cancels)?"""
    n = st.bmeta[bk, B_NORDERS]
    if st.meta[M_NFREE] < 1 or owner >= st.own_head.shape[0]:
        return False
    lcap = st.lv_key.shape[2]
    if st.bmeta[bk, B_NLV_BID] >= lcap - 1 or st.bmeta[bk, B_NLV_ASK] >= lcap - 1:
        return False
    if st.fills.shape[0] - st.meta[M_NFILLS] < n + 2:
        return False
    if st.cancels.shape[0] - st.meta[M_NCANCELS] < n + 3 + extra_orders:
        return False
    return True


@kernel
def apply_op(st, bk, kind, oid, owner, side, price, qty, tif, stp, flags, ts, res, pos):
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
            _limit(st, bk, oid, owner, side, price, qty, tif, stp, flags, ts, res, pos)
        else:
            si = 0 if side == 1 else 1
            best = best_price(st, bk, 1 - si)
            if best == -1:
                _emit_cancel(st, ts, oid, owner, side, 0, qty, RS_NO_LIQ, flags)
                res.status = ST_NO_LIQ
                res.cancelled = qty
                return
            bound = best + price if side == 1 else max(1, best - price)
            _limit(st, bk, oid, owner, side, bound, qty, TIF_IOC, stp, flags, ts, res, pos)
    elif kind == OP_CANCEL or kind == OP_AMEND or kind == OP_REDUCE:
        slot = ht_get(st.ht_keys, st.ht_vals, bits, oid)
        if slot == -1 or st.o_book[slot] != bk:
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
                _limit(st, bk, oid, owner, oside, price, qty, otif, ostp, oflags, ts, res, pos)
                if res.status == ST_POST_ONLY:
                    res.status = ST_OK  # the amend happened; the order then expired as post-only
    elif kind == OP_CANCEL_ALL:
        _cancel_owner(st, bk, owner, RS_CANCEL_ALL, ts, res)
    else:
        res.status = ST_INVALID


@kernel
def process_ops(st, bk, ops, start, out, pos):
    """Apply ``ops[start:]`` (BOOK_OP records) in order; write one BOOK_RESULT per op into ``out``.

    Returns the index of the first op not applied (``len(ops)`` when all were), which is
    less only when an output buffer or the order pool needs to grow first.
    """
    n_ops = ops.shape[0]
    for i in range(start, n_ops):
        o = ops[i]
        if not has_room(st, bk, 0, o.owner):
            return i
        apply_op(st, bk, o.kind, o.order_id, o.owner, o.side, o.price, o.qty, o.tif, o.stp, o.flags, o.ts, out[i], pos)
    return n_ops


@kernel
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


@kernel
def level_orders(st, bk, si, pos, out_slots):
    """Write the slots of level ``pos`` of side ``si`` in FIFO order; return how many."""
    k = 0
    r = st.lv_head[bk, si, pos]
    while r != -1:
        out_slots[k] = r
        k += 1
        r = st.o_next[r]
    return k


@kernel
def band_centre2(st, bk):
    """Twice the centre the depth bands are measured from: the mid, or the touch of a one-sided book; 0 for an empty one.

    A book with one side gone still has depth near its touch (the side that is left), so a
    one-sided book measures from its remaining best price rather than reporting nothing.
    """
    nb = st.bmeta[bk, B_NLV_BID]
    na = st.bmeta[bk, B_NLV_ASK]
    if nb > 0 and na > 0:
        return st.lv_key[bk, 0, nb - 1] - st.lv_key[bk, 1, na - 1]
    if nb > 0:
        return 2 * st.lv_key[bk, 0, nb - 1]
    if na > 0:
        return -2 * st.lv_key[bk, 1, na - 1]
    return 0


@kernel_inline
def _band_sums(st, bk, mid2, bps):
    lo = mid2 * (10000 - bps)
    hi = mid2 * (10000 + bps)
    acc = 0
    for lp in range(st.bmeta[bk, B_NLV_BID] - 1, -1, -1):
        p = st.lv_key[bk, 0, lp]
        if p * 20000 < lo:
            break
        acc += p * st.lv_qty[bk, 0, lp]
    bid = acc
    acc = 0
    for lp in range(st.bmeta[bk, B_NLV_ASK] - 1, -1, -1):
        p = -st.lv_key[bk, 1, lp]
        if p * 20000 > hi:
            break
        acc += p * st.lv_qty[bk, 1, lp]
    return bid, acc


@kernel
def depth_notional(st, bk, bps, out):
    """Tick-lots (price x qty) resting within ±``bps``/10,000 of the band centre on each side.

    ``out[0]`` bids, ``out[1]`` asks. The centre is the mid, or on a one-sided book the
    remaining touch (:func:`band_centre2`); an empty book gives zeros. Exact integer test: a
    bid at p counts if 2·p·10⁴ ≥ 2·centre·(10⁴ − bps).
    """
    out[0] = 0
    out[1] = 0
    mid2 = band_centre2(st, bk)
    if mid2 > 0:
        out[0], out[1] = _band_sums(st, bk, mid2, bps)


@kernel
def owner_depth(st, bk, owner, bps, out):
    """Tick-lots of ``owner``'s own resting orders within the same band as :func:`depth_notional` (bids, asks).

    Walks only the owner's order list, so a market maker can tell the book's depth without
    its own quotes (what the others offer) at the cost of its own order count.
    """
    out[0] = 0
    out[1] = 0
    mid2 = band_centre2(st, bk)
    if mid2 <= 0 or owner < 0 or owner >= st.own_head.shape[0]:
        return
    lo = mid2 * (10000 - bps)
    hi = mid2 * (10000 + bps)
    r = st.own_head[owner]
    while r != -1:
        if st.o_book[r] == bk:
            p = st.o_price[r]
            if st.o_side[r] > 0:
                if p * 20000 >= lo:
                    out[0] += p * st.o_qty[r]
            elif p * 20000 <= hi:
                out[1] += p * st.o_qty[r]
        r = st.o_onext[r]


@kernel
def snapshot(st, n_books, bps, tops, depth):
    """Top of book and banded depth of every book at once (the public feed's per-step read).

    ``tops[b]`` = (best bid, best ask, last trade), 0 where none; ``depth[b, j, s]`` =
    tick-lots within ±``bps[j]``/10,000 of the band centre on side ``s`` (0 bids, 1 asks), as
    :func:`depth_notional`.
    """
    for b in range(n_books):
        nb = st.bmeta[b, B_NLV_BID]
        na = st.bmeta[b, B_NLV_ASK]
        tops[b, 0] = st.lv_key[b, 0, nb - 1] if nb > 0 else 0
        tops[b, 1] = -st.lv_key[b, 1, na - 1] if na > 0 else 0
        tops[b, 2] = st.bmeta[b, B_LAST_PRICE]
        mid2 = band_centre2(st, b)
        for j in range(bps.shape[0]):
            depth[b, j, 0] = 0
            depth[b, j, 1] = 0
            if mid2 > 0:
                depth[b, j, 0], depth[b, j, 1] = _band_sums(st, b, mid2, bps[j])


NO_POSITIONS = np.zeros(0, np.int64)
"""``pos`` argument that switches the reduce-only rule off (spot books, replayed data)."""

__all__ = [
    "NO_POSITIONS",
    "BookArrays",
    "add_resting",
    "apply_op",
    "band_centre2",
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
    "owner_depth",
    "process_ops",
    "remove_order",
    "shrink_order",
    "snapshot",
]
