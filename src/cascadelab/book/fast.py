"""The fast order book: a thin Python shell around the Numba kernels.

Callers hand it batches of operations (:data:`cascadelab.records.BOOK_OP` records) and get
back one result record per operation plus the fills and cancellations the batch produced.
Single-order helpers (:meth:`OrderBook.limit`, ...) build one-row batches for clarity in
tests; hot paths batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascadelab.book import kernels as K
from cascadelab.records import BOOK_CANCEL, BOOK_FILL, BOOK_OP, BOOK_RESULT, STP, TIF, Op, Side, Status


@dataclass
class BatchResult:
    """What one batch did: ``results`` (one BOOK_RESULT per op), ``fills`` and ``cancels`` records."""

    results: np.ndarray
    fills: np.ndarray
    cancels: np.ndarray

    @property
    def status(self) -> Status:
        """Status of the first (for single-op batches: the only) operation."""
        return Status(int(self.results[0]["status"]))

    @property
    def filled(self) -> int:
        """Quantity filled by the first operation's order."""
        return int(self.results[0]["filled"])

    @property
    def resting(self) -> int:
        """Quantity of the first operation's order left resting in the book."""
        return int(self.results[0]["resting"])

    @property
    def cancelled(self) -> int:
        """Quantity of the first operation's order cancelled by it."""
        return int(self.results[0]["cancelled"])


@dataclass(frozen=True)
class L2:
    """An aggregated snapshot: (price, quantity) per level, best first, on each side."""

    bids: list[tuple[int, int]]
    asks: list[tuple[int, int]]


@dataclass(frozen=True)
class RestingOrder:
    """A resting order as the book holds it."""

    order_id: int
    owner: int
    side: int
    price: int
    qty: int
    tif: int
    flags: int
    ts: int


def op_record(
    kind: Op,
    order_id: int = 0,
    owner: int = 0,
    side: int = 0,
    price: int = 0,
    qty: int = 0,
    tif: TIF | int = TIF.GTC,
    stp: STP | int = STP.NONE,
    flags: int = 0,
    ts: int = 0,
) -> np.ndarray:
    """One operation as a one-row BOOK_OP array."""
    op = np.zeros(1, BOOK_OP)
    op[0] = (order_id, owner, price, qty, ts, kind, side, tif, stp, flags)
    return op


def new_ops(n: int) -> np.ndarray:
    """A zeroed batch of ``n`` BOOK_OP records to fill in by field."""
    return np.zeros(n, BOOK_OP)


class BookSet:
    """The arrays of several books that share one order pool (see :class:`~.kernels.BookArrays`).

    Owns growth: when a kernel stops for room, :meth:`grow_for` enlarges the pool, the levels
    of every book, or the output buffers, keeping everything in place.
    """

    def __init__(
        self, n_books: int = 1, order_capacity: int = 1 << 12, level_capacity: int = 1 << 10, out_capacity: int = 1 << 14
    ) -> None:
        self.st = K.new_book_arrays(order_capacity, level_capacity, out_capacity, n_books)
        self.n_books = n_books

    def book(self, bk: int) -> OrderBook:
        """A view of book ``bk`` of this set."""
        return OrderBook(book_set=self, bk=bk)

    def grow_for(self, orders: int, levels: int, outputs: int = 0, owner: int = -1) -> None:
        """Make room for ``orders`` more resting orders, ``levels`` more levels a side, ``outputs`` records, ``owner``."""
        st = self.st
        meta = st.meta
        n = int(st.bmeta[:, K.B_NORDERS].max()) + orders
        changes: dict[str, np.ndarray] = {}
        if meta[K.M_NFREE] < orders:
            c = st.o_id.shape[0]
            new_c = 2 * c
            while new_c - c + int(meta[K.M_NFREE]) < orders:
                new_c *= 2
            for name in (*K.ORDER_FIELDS, "o_ro", "o_onext", "o_oprev"):
                new = np.full(new_c, -1 if name in ("o_id", "o_next", "o_prev", "o_ro", "o_onext", "o_oprev") else 0, np.int64)
                new[:c] = getattr(st, name)
                changes[name] = new
            nfree = int(meta[K.M_NFREE])
            free = np.empty(new_c, np.int64)
            free[:nfree] = st.free[:nfree]
            free[nfree : nfree + new_c - c] = np.arange(new_c - 1, c - 1, -1)
            changes["free"] = free
            changes["scratch"] = np.zeros(new_c, np.int64)
            ro = np.zeros((self.n_books, new_c), np.int64)
            ro[:, :c] = st.ro_slots
            changes["ro_slots"] = ro
            meta[K.M_NFREE] = nfree + new_c - c
            bits = K.ht_bits_for(new_c)
            keys = np.full(1 << bits, K.EMPTY, np.int64)
            vals = np.full(1 << bits, -1, np.int64)
            K.rebuild_hash(changes["o_id"], keys, vals, bits)
            changes["ht_keys"], changes["ht_vals"] = keys, vals
            meta[K.M_HTBITS] = bits
        lcap = st.lv_key.shape[2]
        if int(st.bmeta[:, K.B_NLV_BID : K.B_NLV_ASK + 1].max()) + levels >= lcap - 1:
            for name, fill in K.LEVEL_FIELDS:
                new = np.full((self.n_books, 2, 2 * lcap + levels), fill, np.int64)
                new[:, :, :lcap] = getattr(st, name)
                changes[name] = new
        need_f = int(meta[K.M_NFILLS]) + n + 2 + outputs
        if st.fills.shape[0] < need_f:
            grown = np.zeros(2 * need_f, BOOK_FILL)
            grown[: int(meta[K.M_NFILLS])] = st.fills[: int(meta[K.M_NFILLS])]
            changes["fills"] = grown
        need_c = int(meta[K.M_NCANCELS]) + n + 3 + outputs
        if st.cancels.shape[0] < need_c:
            grown = np.zeros(2 * need_c, BOOK_CANCEL)
            grown[: int(meta[K.M_NCANCELS])] = st.cancels[: int(meta[K.M_NCANCELS])]
            changes["cancels"] = grown
        if owner >= st.own_head.shape[0]:
            heads = np.full(max(2 * st.own_head.shape[0], owner + 1), -1, np.int64)
            heads[: st.own_head.shape[0]] = st.own_head
            changes["own_head"] = heads
        if changes:
            self.st = st._replace(**changes)

    def take_output(self) -> tuple[np.ndarray, np.ndarray]:
        """Fills and cancels written since the last call (then cleared)."""
        meta = self.st.meta
        nf, nc = int(meta[K.M_NFILLS]), int(meta[K.M_NCANCELS])
        out = self.st.fills[:nf].copy(), self.st.cancels[:nc].copy()
        meta[K.M_NFILLS] = 0
        meta[K.M_NCANCELS] = 0
        return out


class OrderBook:
    """One limit order book with price-time priority: book ``bk`` of a :class:`BookSet`.

    ``OrderBook()`` makes a standalone book (a set of one); a venue's books are views of
    its one set, so compiled order entry reaches every book through one structure.
    """

    def __init__(
        self,
        order_capacity: int = 1 << 12,
        level_capacity: int = 1 << 10,
        out_capacity: int = 1 << 14,
        book_set: BookSet | None = None,
        bk: int = 0,
    ) -> None:
        self.set = book_set or BookSet(1, order_capacity, level_capacity, out_capacity)
        self.bk = int(bk)

    @property
    def st(self) -> K.BookArrays:
        """The arrays of this book's set (replaced when the set grows)."""
        return self.set.st

    # --- batches ------------------------------------------------------------------
    def submit(self, ops: np.ndarray, positions: np.ndarray | None = None) -> BatchResult:
        """Apply a batch of BOOK_OP records in order; fills/cancels come back in the same order.

        ``positions`` (owner-indexed int64 positions in this instrument) switches on the
        reduce-only rule (see :mod:`.kernels`); positions are read, never written.
        """
        if ops.dtype != BOOK_OP:
            raise TypeError(f"ops must be BOOK_OP records, got dtype {ops.dtype}")
        ops = np.ascontiguousarray(ops)
        pos = K.NO_POSITIONS if positions is None else np.ascontiguousarray(positions, np.int64)
        out = np.zeros(len(ops), BOOK_RESULT)
        fills: list[np.ndarray] = []
        cancels: list[np.ndarray] = []
        i = 0
        while True:
            i = K.process_ops(self.st, self.bk, ops, i, out, pos)
            f, x = self.set.take_output()
            fills.append(f)
            cancels.append(x)
            if i >= len(ops):
                break
            self.grow_for(orders=1, levels=1, owner=int(ops[i]["owner"]))
        return BatchResult(out, _cat(fills, BOOK_FILL), _cat(cancels, BOOK_CANCEL))

    def take_output(self) -> tuple[np.ndarray, np.ndarray]:
        """Fills and cancels written by compiled callers since the last call (then cleared)."""
        return self.set.take_output()

    def grow_for(self, orders: int, levels: int, outputs: int = 0, owner: int = -1) -> None:
        """Make room in this book's set (see :meth:`BookSet.grow_for`)."""
        self.set.grow_for(orders, levels, outputs, owner)

    # --- single operations ---------------------------------------------------------------
    def limit(
        self,
        order_id: int,
        owner: int,
        side: Side | int,
        price: int,
        qty: int,
        tif: TIF = TIF.GTC,
        stp: STP = STP.NONE,
        flags: int = 0,
        ts: int = 0,
        positions: np.ndarray | None = None,
    ) -> BatchResult:
        """Submit a limit order (GTC, IOC, FOK or post-only)."""
        return self.submit(op_record(Op.LIMIT, order_id, owner, side, price, qty, tif, stp, flags, ts), positions)

    def market(
        self,
        order_id: int,
        owner: int,
        side: Side | int,
        qty: int,
        protection_ticks: int,
        stp: STP = STP.NONE,
        flags: int = 0,
        ts: int = 0,
        positions: np.ndarray | None = None,
    ) -> BatchResult:
        """Market order that trades no further than ``protection_ticks`` from the best price."""
        return self.submit(op_record(Op.MARKET, order_id, owner, side, protection_ticks, qty, TIF.IOC, stp, flags, ts), positions)

    def cancel(self, order_id: int, owner: int, ts: int = 0) -> BatchResult:
        """Cancel a resting order of ``owner``."""
        return self.submit(op_record(Op.CANCEL, order_id, owner, ts=ts))

    def amend(self, order_id: int, owner: int, price: int, qty: int, ts: int = 0) -> BatchResult:
        """Change price and/or open size; only a size decrease at the same price keeps priority."""
        return self.submit(op_record(Op.AMEND, order_id, owner, 0, price, qty, ts=ts))

    def cancel_all(self, owner: int, ts: int = 0) -> BatchResult:
        """Cancel every resting order of ``owner``."""
        return self.submit(op_record(Op.CANCEL_ALL, 0, owner, ts=ts))

    def reduce(self, order_id: int, qty: int, ts: int = 0) -> BatchResult:
        """Shrink a resting order by ``qty`` as replayed data says (no owner check)."""
        return self.submit(op_record(Op.REDUCE, order_id, 0, 0, 0, qty, ts=ts))

    # --- queries -------------------------------------------------------------------------
    @staticmethod
    def _side_index(side: int) -> int:
        if side not in (1, -1):
            raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side}")
        return 0 if side == 1 else 1

    def best_bid(self) -> int | None:
        """Highest bid price in ticks, or None."""
        # read in Python (as K.best_price does): a compiled call's argument checks cost more than the read
        st = self.set.st
        n = int(st.bmeta[self.bk, K.B_NLV_BID])
        p = int(st.lv_key[self.bk, 0, n - 1]) if n > 0 else -1
        return None if p < 0 else p

    def best_ask(self) -> int | None:
        """Lowest ask price in ticks, or None."""
        st = self.set.st
        n = int(st.bmeta[self.bk, K.B_NLV_ASK])
        p = -int(st.lv_key[self.bk, 1, n - 1]) if n > 0 else -1
        return None if p < 0 else p

    @property
    def last_price(self) -> int | None:
        """Price of the most recent fill, or None before the first."""
        p = int(self.st.bmeta[self.bk, K.B_LAST_PRICE])
        return p or None

    @property
    def order_count(self) -> int:
        """Number of resting orders."""
        return int(self.st.bmeta[self.bk, K.B_NORDERS])

    def levels(self, side: int, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(prices, quantities) of one side, best first, at most ``depth`` levels."""
        si = self._side_index(side)
        n = int(self.st.bmeta[self.bk, K.B_NLV_BID + si])
        k = n if depth is None else min(n, depth)
        keys = self.st.lv_key[self.bk, si, n - k : n][::-1]
        prices = keys if si == 0 else -keys
        return prices.copy(), self.st.lv_qty[self.bk, si, n - k : n][::-1].copy()

    def l2(self, depth: int = 10) -> L2:
        """L2 snapshot, best level first on each side."""
        bp, bq = self.levels(1, depth)
        ap, aq = self.levels(-1, depth)
        return L2(list(zip(bp.tolist(), bq.tolist(), strict=True)), list(zip(ap.tolist(), aq.tolist(), strict=True)))

    def depth_within(self, bps: int) -> tuple[int, int]:
        """Cumulative price x qty (tick-lots) on each side within ±``bps``/10,000 of mid.

        Multiply by the instrument's ``unit_notional`` for money. Measured from the remaining touch
        on a one-sided book, (0, 0) on an empty one.
        """
        out = np.zeros(2, np.int64)
        K.depth_notional(self.st, self.bk, int(bps), out)
        return int(out[0]), int(out[1])

    def order(self, order_id: int) -> RestingOrder | None:
        """A resting order, or None if it is not in the book."""
        s = int(K.find(self.st, order_id))
        if s < 0 or self.st.o_book[s] != self.bk:
            return None
        st = self.st
        return RestingOrder(
            order_id, int(st.o_owner[s]), int(st.o_side[s]), int(st.o_price[s]), int(st.o_qty[s]), int(st.o_tif[s]),
            int(st.o_flags[s]), int(st.o_ts[s]),
        )  # fmt: skip

    def queue_position(self, order_id: int) -> tuple[int, int] | None:
        """(orders ahead, quantity ahead) in the order's FIFO queue, or None if absent."""
        s = int(K.find(self.st, order_id))
        if s < 0 or self.st.o_book[s] != self.bk:
            return None
        n, q = K.queue_position(self.st, s)
        return int(n), int(q)

    def level_queue(self, side: int, price: int) -> list[tuple[int, int, int]]:
        """Orders at one price, FIFO order, as (order id, owner, qty)."""
        si = self._side_index(side)
        key = price if si == 0 else -price
        n = int(self.st.bmeta[self.bk, K.B_NLV_BID + si])
        keys = self.st.lv_key[self.bk, si, :n]
        pos = int(np.searchsorted(keys, key))
        if pos >= n or keys[pos] != key:
            return []
        slots = np.empty(int(self.st.lv_cnt[self.bk, si, pos]), np.int64)
        k = K.level_orders(self.st, self.bk, si, pos, slots)
        st = self.st
        return [(int(st.o_id[s]), int(st.o_owner[s]), int(st.o_qty[s])) for s in slots[:k]]

    def queues(self) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
        """Every level's FIFO as (order id, owner, qty), keyed by (side, price)."""
        out = {}
        for side in (1, -1):
            for price in self.levels(side)[0].tolist():
                out[(side, price)] = self.level_queue(side, price)
        return out

    def open_orders(self, owner: int) -> list[int]:
        """Ids of the resting orders of ``owner``."""
        st = self.st
        live = (st.o_id >= 0) & (st.o_book == self.bk)
        return sorted(st.o_id[live & (st.o_owner == owner)].tolist())

    def check_invariants(self) -> None:
        """Raise AssertionError unless the book is sound: uncrossed, sorted, FIFO, sizes > 0, registry exact."""
        st, bk = self.st, self.bk
        total = 0
        for si in (0, 1):
            n = int(st.bmeta[bk, K.B_NLV_BID + si])
            keys = st.lv_key[bk, si, :n]
            assert np.all(np.diff(keys) > 0), "levels not strictly sorted"
            for pos in range(n):
                slots = np.empty(int(st.lv_cnt[bk, si, pos]) + 1, np.int64)
                k = K.level_orders(st, bk, si, pos, slots)
                assert k == st.lv_cnt[bk, si, pos] and k > 0, "level count mismatch or empty level"
                s = slots[:k]
                price = keys[pos] if si == 0 else -keys[pos]
                assert np.all(st.o_book[s] == bk), "order in the wrong book"
                assert np.all(st.o_qty[s] > 0), "non-positive order size"
                assert np.all(st.o_price[s] == price), "order on wrong level"
                assert np.all(st.o_side[s] == (1 if si == 0 else -1)), "order on wrong side"
                assert np.all(np.diff(st.o_seq[s]) > 0), "FIFO order broken"
                assert st.o_qty[s].sum() == st.lv_qty[bk, si, pos], "level quantity mismatch"
                total += k
        assert total == st.bmeta[bk, K.B_NORDERS], "order count mismatch"
        live = np.flatnonzero((st.o_id >= 0) & (st.o_book == bk))
        ro = set(live[(st.o_flags[live] & K.FLAG_REDUCE_ONLY) != 0].tolist())
        nro = int(st.bmeta[bk, K.B_NRO])
        assert set(st.ro_slots[bk, :nro].tolist()) == ro and nro == len(ro), "reduce-only registry out of date"
        assert all(st.o_ro[s] == j for j, s in enumerate(st.ro_slots[bk, :nro].tolist())), "reduce-only index broken"
        for owner in np.unique(st.o_owner[live]).tolist():
            if owner >= 0:
                listed = []
                r = int(st.own_head[owner])
                while r != -1:
                    listed.append(r)
                    r = int(st.o_onext[r])
                mine = set(np.flatnonzero((st.o_id >= 0) & (st.o_owner == owner)).tolist())
                assert set(listed) == mine and len(listed) == len(mine), f"owner list of {owner} out of date"
        bb, ba = self.best_bid(), self.best_ask()
        assert bb is None or ba is None or bb < ba, f"crossed book {bb} >= {ba}"


def _cat(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    if not parts:
        return np.zeros(0, dtype)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
