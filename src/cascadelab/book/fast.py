"""The fast order book: a thin Python shell around the Numba kernels.

Callers hand it batches of operations (``int64`` rows, see :mod:`.codes`) and get back
one result row per operation plus the fills and cancellations the batch produced.
Single-order helpers (:meth:`OrderBook.limit`, ...) build one-row batches for clarity
in tests and agents; hot paths should batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascadelab.book import kernels as K
from cascadelab.book.codes import (
    N_CANCEL_COLS,
    N_FILL_COLS,
    N_OP_COLS,
    N_RESULT_COLS,
    STP,
    TIF,
    Op,
    Side,
    Status,
)


@dataclass
class BatchResult:
    """What one batch did: ``results`` (one row per op), ``fills`` and ``cancels`` rows."""

    results: np.ndarray
    fills: np.ndarray
    cancels: np.ndarray

    @property
    def status(self) -> Status:
        """Status of the first (for single-op batches: the only) operation."""
        return Status(int(self.results[0, 0]))

    @property
    def filled(self) -> int:
        """Quantity filled by the first operation's order."""
        return int(self.results[0, 1])

    @property
    def resting(self) -> int:
        """Quantity of the first operation's order left resting in the book."""
        return int(self.results[0, 2])

    @property
    def cancelled(self) -> int:
        """Quantity of the first operation's order cancelled by it."""
        return int(self.results[0, 3])


def op_row(
    kind: Op,
    order_id: int = 0,
    owner: int = 0,
    side: int = 0,
    price: int = 0,
    qty: int = 0,
    tif: TIF = TIF.GTC,
    stp: STP = STP.NONE,
    flags: int = 0,
    ts: int = 0,
) -> list[int]:
    """One operation as a list in column order (``codes.C_*``)."""
    return [int(kind), int(order_id), int(owner), int(side), int(price), int(qty), int(tif), int(stp), int(flags), int(ts)]


class OrderBook:
    """One limit order book with price-time priority, backed by :mod:`.kernels`."""

    def __init__(self, order_capacity: int = 1 << 12, level_capacity: int = 1 << 10, out_capacity: int = 1 << 14) -> None:
        self.st = K.new_book_arrays(order_capacity, level_capacity, out_capacity)

    # --- batches ------------------------------------------------------------------
    def submit(self, ops: np.ndarray) -> BatchResult:
        """Apply a batch of operations in row order; fills/cancels are in the same order."""
        ops = np.ascontiguousarray(ops, dtype=np.int64)
        if ops.ndim != 2 or ops.shape[1] != N_OP_COLS:
            raise ValueError(f"ops must have shape (n, {N_OP_COLS}), got {ops.shape}")
        out = np.zeros((ops.shape[0], N_RESULT_COLS), np.int64)
        fills: list[np.ndarray] = []
        cancels: list[np.ndarray] = []
        i = 0
        while True:
            i = K.process_ops(self.st, ops, i, out)
            self._drain(fills, cancels)
            if i >= ops.shape[0]:
                break
            self._grow()
        f = np.concatenate(fills) if len(fills) > 1 else (fills[0] if fills else np.zeros((0, N_FILL_COLS), np.int64))
        x = np.concatenate(cancels) if len(cancels) > 1 else (cancels[0] if cancels else np.zeros((0, N_CANCEL_COLS), np.int64))
        return BatchResult(out, f, x)

    def _drain(self, fills: list[np.ndarray], cancels: list[np.ndarray]) -> None:
        meta = self.st.meta
        nf, nc = int(meta[K.M_NFILLS]), int(meta[K.M_NCANCELS])
        if nf:
            fills.append(self.st.fills[:nf].copy())
            meta[K.M_NFILLS] = 0
        if nc:
            cancels.append(self.st.cancels[:nc].copy())
            meta[K.M_NCANCELS] = 0

    def _grow(self) -> None:
        """Enlarge whatever could overflow on the next operation."""
        self.grow_for(orders=1, levels=1)

    def grow_for(self, orders: int, levels: int) -> None:
        """Make room for ``orders`` more resting orders and ``levels`` more levels a side."""
        st = self.st
        meta = st.meta
        n = int(meta[K.M_NORDERS]) + orders
        changes: dict[str, np.ndarray] = {}
        if meta[K.M_NFREE] < orders:
            c = st.o_id.shape[0]
            new_c = 2 * c
            while new_c - c + int(meta[K.M_NFREE]) < orders:
                new_c *= 2
            for name in (
                "o_id",
                "o_owner",
                "o_side",
                "o_price",
                "o_qty",
                "o_next",
                "o_prev",
                "o_tif",
                "o_stp",
                "o_flags",
                "o_ts",
                "o_seq",
            ):
                new = np.full(new_c, -1 if name in ("o_id", "o_next", "o_prev") else 0, np.int64)
                new[:c] = getattr(st, name)
                changes[name] = new
            nfree = int(meta[K.M_NFREE])
            free = np.empty(new_c, np.int64)
            free[:nfree] = st.free[:nfree]
            free[nfree : nfree + new_c - c] = np.arange(new_c - 1, c - 1, -1)
            changes["free"] = free
            meta[K.M_NFREE] = nfree + new_c - c
            bits = K._ht_bits_for(new_c)
            keys = np.full(1 << bits, K.EMPTY, np.int64)
            vals = np.full(1 << bits, -1, np.int64)
            K.rebuild_hash(changes["o_id"], keys, vals, bits)
            changes["ht_keys"], changes["ht_vals"] = keys, vals
            meta[K.M_HTBITS] = bits
        lcap = st.lv_key.shape[1]
        if max(meta[K.M_NLV_BID], meta[K.M_NLV_ASK]) + levels >= lcap:
            for name, fill in (("lv_key", 0), ("lv_head", -1), ("lv_tail", -1), ("lv_qty", 0), ("lv_cnt", 0)):
                new = np.full((2, 2 * lcap + levels), fill, np.int64)
                new[:, :lcap] = getattr(st, name)
                changes[name] = new
        if st.fills.shape[0] < n + 2:
            changes["fills"] = np.zeros((2 * (n + 2), N_FILL_COLS), np.int64)
        if st.cancels.shape[0] < n + 3:
            changes["cancels"] = np.zeros((2 * (n + 3), N_CANCEL_COLS), np.int64)
        self.st = st._replace(**changes)

    # --- single operations ---------------------------------------------------------------
    def _one(self, row: list[int]) -> BatchResult:
        return self.submit(np.array([row], np.int64))

    def limit(
        self,
        order_id: int,
        owner: int,
        side: Side | int,
        price: int,
        qty: int,
        tif: TIF = TIF.GTC,
        stp: STP = STP.NONE,
        reduce_only: bool = False,
        ts: int = 0,
    ) -> BatchResult:
        """Submit a limit order (GTC, IOC, FOK or post-only)."""
        return self._one(op_row(Op.LIMIT, order_id, owner, side, price, qty, tif, stp, int(reduce_only), ts))

    def market(
        self,
        order_id: int,
        owner: int,
        side: Side | int,
        qty: int,
        protection_ticks: int,
        stp: STP = STP.NONE,
        reduce_only: bool = False,
        ts: int = 0,
    ) -> BatchResult:
        """Market order that trades no further than ``protection_ticks`` from the best price."""
        return self._one(op_row(Op.MARKET, order_id, owner, side, protection_ticks, qty, TIF.IOC, stp, int(reduce_only), ts))

    def cancel(self, order_id: int, owner: int, ts: int = 0) -> BatchResult:
        """Cancel a resting order of ``owner``."""
        return self._one(op_row(Op.CANCEL, order_id, owner, ts=ts))

    def amend(self, order_id: int, owner: int, price: int, qty: int, ts: int = 0) -> BatchResult:
        """Change price and/or open size; only a size decrease at the same price keeps priority."""
        return self._one(op_row(Op.AMEND, order_id, owner, 0, price, qty, ts=ts))

    def cancel_all(self, owner: int, ts: int = 0) -> BatchResult:
        """Cancel every resting order of ``owner``."""
        return self._one(op_row(Op.CANCEL_ALL, 0, owner, ts=ts))

    def reduce(self, order_id: int, qty: int, ts: int = 0) -> BatchResult:
        """Shrink a resting order by ``qty`` as replayed data says (no owner check)."""
        return self._one(op_row(Op.REDUCE, order_id, 0, 0, 0, qty, ts=ts))

    # --- queries -------------------------------------------------------------------------
    def _side_index(self, side: int) -> int:
        if side not in (1, -1):
            raise ValueError(f"side must be +1 (buy) or -1 (sell), got {side}")
        return 0 if side == 1 else 1

    def best_bid(self) -> int | None:
        """Highest bid price in ticks, or None."""
        n = int(self.st.meta[K.M_NLV_BID])
        return int(self.st.lv_key[0, n - 1]) if n else None

    def best_ask(self) -> int | None:
        """Lowest ask price in ticks, or None."""
        n = int(self.st.meta[K.M_NLV_ASK])
        return int(-self.st.lv_key[1, n - 1]) if n else None

    @property
    def last_price(self) -> int | None:
        """Price of the most recent fill, or None before the first."""
        p = int(self.st.meta[K.M_LAST_PRICE])
        return p or None

    @property
    def order_count(self) -> int:
        """Number of resting orders."""
        return int(self.st.meta[K.M_NORDERS])

    def levels(self, side: int, depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(prices, quantities) of one side, best first, at most ``depth`` levels."""
        si = self._side_index(side)
        n = int(self.st.meta[K.M_NLV_BID + si])
        k = n if depth is None else min(n, depth)
        keys = self.st.lv_key[si, n - k : n][::-1]
        prices = keys if si == 0 else -keys
        return prices.copy(), self.st.lv_qty[si, n - k : n][::-1].copy()

    def l2(self, depth: int = 10) -> dict[str, list[tuple[int, int]]]:
        """L2 snapshot: ``{"bids": [(price, qty), ...], "asks": [...]}`` best first."""
        out = {}
        for name, side in (("bids", 1), ("asks", -1)):
            p, q = self.levels(side, depth)
            out[name] = list(zip(p.tolist(), q.tolist(), strict=True))
        return out

    def depth_within(self, bps: int) -> tuple[int, int]:
        """Cumulative price x qty (tick-lots) on each side within ±``bps``/10,000 of mid.

        Exact integer test: a bid at p counts if 2·p·10⁴ ≥ (bid+ask)(10⁴ − bps). Multiply by
        the instrument's ``unit_notional`` for money. Returns (0, 0) on a one-sided book.
        """
        bb, ba = self.best_bid(), self.best_ask()
        if bb is None or ba is None:
            return 0, 0
        mid2 = bb + ba
        bp, bq = self.levels(1)
        ap, aq = self.levels(-1)
        bid_mask = bp * 20000 >= mid2 * (10000 - bps)
        ask_mask = ap * 20000 <= mid2 * (10000 + bps)
        return int((bp[bid_mask] * bq[bid_mask]).sum()), int((ap[ask_mask] * aq[ask_mask]).sum())

    def _slot(self, order_id: int) -> int:
        st = self.st
        return int(K.ht_get(st.ht_keys, st.ht_vals, st.meta[K.M_HTBITS], order_id))

    def order(self, order_id: int) -> dict[str, int] | None:
        """A resting order's fields, or None if it is not in the book."""
        s = self._slot(order_id)
        if s < 0:
            return None
        st = self.st
        return {
            "id": order_id,
            "owner": int(st.o_owner[s]),
            "side": int(st.o_side[s]),
            "price": int(st.o_price[s]),
            "qty": int(st.o_qty[s]),
            "tif": int(st.o_tif[s]),
            "flags": int(st.o_flags[s]),
            "ts": int(st.o_ts[s]),
        }

    def queue_position(self, order_id: int) -> tuple[int, int] | None:
        """(orders ahead, quantity ahead) in the order's FIFO queue, or None if absent."""
        s = self._slot(order_id)
        if s < 0:
            return None
        n, q = K.queue_position(self.st, s)
        return int(n), int(q)

    def level_queue(self, side: int, price: int) -> list[tuple[int, int, int]]:
        """Orders at one price, FIFO order, as (order id, owner, qty)."""
        si = self._side_index(side)
        key = price if si == 0 else -price
        n = int(self.st.meta[K.M_NLV_BID + si])
        keys = self.st.lv_key[si, :n]
        pos = int(np.searchsorted(keys, key))
        if pos >= n or keys[pos] != key:
            return []
        slots = np.empty(int(self.st.lv_cnt[si, pos]), np.int64)
        k = K.level_orders(self.st, si, pos, slots)
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
        live = st.o_id >= 0
        return sorted(st.o_id[live & (st.o_owner == owner)].tolist())

    def check_invariants(self) -> None:
        """Raise AssertionError unless the book is sound: uncrossed, sorted, FIFO, sizes > 0."""
        st = self.st
        total = 0
        for si in (0, 1):
            n = int(st.meta[K.M_NLV_BID + si])
            keys = st.lv_key[si, :n]
            assert np.all(np.diff(keys) > 0), "levels not strictly sorted"
            for pos in range(n):
                slots = np.empty(int(st.lv_cnt[si, pos]) + 1, np.int64)
                k = K.level_orders(st, si, pos, slots)
                assert k == st.lv_cnt[si, pos] and k > 0, "level count mismatch or empty level"
                s = slots[:k]
                price = keys[pos] if si == 0 else -keys[pos]
                assert np.all(st.o_qty[s] > 0), "non-positive order size"
                assert np.all(st.o_price[s] == price), "order on wrong level"
                assert np.all(st.o_side[s] == (1 if si == 0 else -1)), "order on wrong side"
                assert np.all(np.diff(st.o_seq[s]) > 0), "FIFO order broken"
                assert st.o_qty[s].sum() == st.lv_qty[si, pos], "level quantity mismatch"
                total += k
        assert total == st.meta[K.M_NORDERS], "order count mismatch"
        bb, ba = self.best_bid(), self.best_ask()
        assert bb is None or ba is None or bb < ba, f"crossed book {bb} >= {ba}"
