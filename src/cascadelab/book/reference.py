"""A small, obviously correct order book in plain Python, for differential testing.

It implements exactly the semantics of the fast book (:mod:`.kernels`) with lists and
dicts and no cleverness: each price level is a list in arrival order, the best price is
found with ``max``/``min`` over the level dict. Reduce-only orders follow the same rule as
the fast book: given the owners' positions before an operation, no reduce-only order ever
trades beyond the position it reduces. Slow on purpose; never use it in a simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascadelab.book.fast import L2
from cascadelab.records import FLAG_REDUCE_ONLY, STP, TIF, CancelReason, Op, Status


@dataclass
class RefOrder:
    """A resting order."""

    oid: int
    owner: int
    side: int
    price: int
    qty: int
    tif: int
    stp: int
    flags: int
    ts: int


class ReferenceBook:
    """Same operations and outputs as :class:`cascadelab.book.fast.OrderBook`."""

    def __init__(self) -> None:
        self.levels: dict[int, dict[int, list[RefOrder]]] = {1: {}, -1: {}}
        self.orders: dict[int, RefOrder] = {}
        self.fills: list[tuple[int, ...]] = []  # (ts, maker id, taker id, maker owner, taker owner, price, qty, aggressor)
        self.cancels: list[tuple[int, ...]] = []  # (ts, id, owner, side, price, qty, reason)
        self.positions: dict[int, int] | None = None  # owners' positions during the current operation

    # --- helpers --------------------------------------------------------------------------
    def best(self, side: int) -> int | None:
        """Best price on ``side`` (+1 bids, -1 asks)."""
        lv = self.levels[side]
        if not lv:
            return None
        return max(lv) if side == 1 else min(lv)

    @staticmethod
    def _acceptable(side_in: int, level_price: int, limit: int) -> bool:
        return level_price <= limit if side_in == 1 else level_price >= limit

    def _cancel_event(self, ts: int, o_id: int, owner: int, side: int, price: int, qty: int, reason: CancelReason) -> None:
        self.cancels.append((ts, o_id, owner, side, price, qty, int(reason)))

    def _remove(self, o: RefOrder) -> None:
        queue = self.levels[o.side][o.price]
        queue.remove(o)
        if not queue:
            del self.levels[o.side][o.price]
        del self.orders[o.oid]

    def _rest(self, o: RefOrder) -> None:
        self.levels[o.side].setdefault(o.price, []).append(o)
        self.orders[o.oid] = o

    def _fok_fillable(self, side: int, limit: int, qty: int, owner: int, stp: int) -> bool:
        available = 0
        opposite = self.levels[-side]
        for price in sorted(opposite, reverse=(side == -1)):
            if not self._acceptable(side, price, limit):
                break
            for o in opposite[price]:
                if stp != STP.NONE and o.owner == owner:
                    if stp != STP.CANCEL_RESTING:
                        return False
                    continue
                available += o.qty
                if available >= qty:
                    return True
        return False

    def _room(self, owner: int, side: int) -> int:
        """Lots an order of ``owner`` on ``side`` may trade while only reducing its position."""
        cur = self.positions.get(owner, 0) if self.positions is not None else 0
        return cur if cur > 0 and side == -1 else (-cur if cur < 0 and side == 1 else 0)

    def _match(self, side: int, limit: int, qty: int, oid: int, owner: int, stp: int, ts: int) -> tuple[int, int, bool]:
        filled = 0
        while qty > 0:
            price = self.best(-side)
            if price is None or not self._acceptable(side, price, limit):
                break
            maker = self.levels[-side][price][0]
            if stp != STP.NONE and maker.owner == owner:
                if stp in (STP.CANCEL_RESTING, STP.CANCEL_BOTH):
                    self._cancel_event(ts, maker.oid, maker.owner, maker.side, price, maker.qty, CancelReason.STP_RESTING)
                    self._remove(maker)
                if stp in (STP.CANCEL_INCOMING, STP.CANCEL_BOTH):
                    return filled, qty, True
                continue
            room = maker.qty
            if self.positions is not None and maker.flags & FLAG_REDUCE_ONLY:
                room = min(room, self._room(maker.owner, maker.side))
                if room == 0:
                    self._cancel_event(ts, maker.oid, maker.owner, maker.side, price, maker.qty, CancelReason.REDUCE_ONLY)
                    self._remove(maker)
                    continue
            q = min(qty, room)
            self.fills.append((ts, maker.oid, oid, maker.owner, owner, price, q, side))
            if self.positions is not None:
                self.positions[maker.owner] = self.positions.get(maker.owner, 0) - side * q
                self.positions[owner] = self.positions.get(owner, 0) + side * q
            maker.qty -= q
            qty -= q
            filled += q
            if maker.qty > 0 and q == room < maker.qty + q:
                self._cancel_event(ts, maker.oid, maker.owner, maker.side, price, maker.qty, CancelReason.REDUCE_ONLY)
                self._remove(maker)
            elif maker.qty == 0:
                self._remove(maker)
        return filled, qty, False

    def _limit(
        self, oid: int, owner: int, side: int, price: int, qty: int, tif: int, stp: int, flags: int, ts: int, res: list[int]
    ) -> None:
        if self.positions is not None and flags & FLAG_REDUCE_ONLY:
            room = self._room(owner, side)
            if room < qty:
                self._cancel_event(ts, oid, owner, side, price, qty - room, CancelReason.REDUCE_ONLY)
                res[3] += qty - room
                qty = room
                if qty == 0:
                    return
        if tif == TIF.POST_ONLY:
            best = self.best(-side)
            if best is not None and self._acceptable(side, best, price):
                self._cancel_event(ts, oid, owner, side, price, qty, CancelReason.POST_ONLY)
                res[0], res[3] = Status.REJECTED_POST_ONLY, res[3] + qty
                return
        if tif == TIF.FOK and not self._fok_fillable(side, price, qty, owner, stp):
            self._cancel_event(ts, oid, owner, side, price, qty, CancelReason.FOK)
            res[0], res[3] = Status.REJECTED_FOK, res[3] + qty
            return
        filled, rem, stopped = self._match(side, price, qty, oid, owner, stp, ts)
        res[1] += filled
        if rem:
            if stopped:
                self._cancel_event(ts, oid, owner, side, price, rem, CancelReason.STP_INCOMING)
                res[3] += rem
            elif tif in (TIF.GTC, TIF.POST_ONLY):
                self._rest(RefOrder(oid, owner, side, price, rem, tif, stp, flags, ts))
                res[2] = rem
            else:
                self._cancel_event(ts, oid, owner, side, price, rem, CancelReason.IOC_REMAINDER)
                res[3] += rem

    # --- the one entry point ------------------------------------------------------------------
    def apply(self, op: np.void | dict, positions: dict[int, int] | None = None) -> list[int]:
        """Apply one BOOK_OP record; return its result as [status, filled, resting, cancelled].

        ``positions`` (owner -> position before the operation) switches on the reduce-only rule.
        """
        self.positions = None if positions is None else dict(positions)
        try:
            return self._apply(
                *(int(op[f]) for f in ("kind", "order_id", "owner", "side", "price", "qty", "tif", "stp", "flags", "ts"))
            )
        finally:
            self.positions = None

    def _apply(
        self, kind: int, oid: int, owner: int, side: int, price: int, qty: int, tif: int, stp: int, flags: int, ts: int
    ) -> list[int]:
        res = [int(Status.OK), 0, 0, 0]
        if kind in (Op.LIMIT, Op.MARKET):
            if side not in (1, -1) or qty <= 0 or oid < 0 or not 0 <= stp <= 3:
                return [Status.REJECTED_INVALID, 0, 0, 0]
            if kind == Op.LIMIT and (price <= 0 or not 0 <= tif <= 3):
                return [Status.REJECTED_INVALID, 0, 0, 0]
            if kind == Op.MARKET and price < 0:
                return [Status.REJECTED_INVALID, 0, 0, 0]
            if oid in self.orders:
                return [Status.REJECTED_DUPLICATE_ID, 0, 0, 0]
            if kind == Op.LIMIT:
                self._limit(oid, owner, side, price, qty, tif, stp, flags, ts, res)
            else:
                best = self.best(-side)
                if best is None:
                    self._cancel_event(ts, oid, owner, side, 0, qty, CancelReason.NO_LIQUIDITY)
                    return [Status.REJECTED_NO_LIQUIDITY, 0, 0, qty]
                bound = best + price if side == 1 else max(1, best - price)
                self._limit(oid, owner, side, bound, qty, TIF.IOC, stp, flags, ts, res)
            return res
        if kind in (Op.CANCEL, Op.AMEND, Op.REDUCE):
            o = self.orders.get(oid)
            if o is None:
                return [Status.REJECTED_UNKNOWN_ID, 0, 0, 0]
            if kind != Op.REDUCE and o.owner != owner:
                return [Status.REJECTED_NOT_OWNER, 0, 0, 0]
            if kind == Op.CANCEL:
                self._cancel_event(ts, oid, owner, o.side, o.price, o.qty, CancelReason.USER)
                self._remove(o)
                return [Status.OK, 0, 0, o.qty]
            if kind == Op.REDUCE:
                if qty <= 0:
                    return [Status.REJECTED_INVALID, 0, 0, 0]
                cut = min(qty, o.qty)
                self._cancel_event(ts, oid, o.owner, o.side, o.price, cut, CancelReason.EXTERNAL)
                o.qty -= cut
                if o.qty == 0:
                    self._remove(o)
                return [Status.OK, 0, o.qty, cut]
            if qty <= 0 or price <= 0:
                return [Status.REJECTED_INVALID, 0, 0, 0]
            if price == o.price and qty <= o.qty:
                if qty < o.qty:
                    self._cancel_event(ts, oid, owner, o.side, price, o.qty - qty, CancelReason.AMEND_DOWN)
                    res[3] = o.qty - qty
                    o.qty = qty
                res[2] = qty
                return res
            if qty < o.qty:
                self._cancel_event(ts, oid, owner, o.side, o.price, o.qty - qty, CancelReason.AMEND_DOWN)
                res[3] = o.qty - qty
            self._remove(o)
            self._limit(oid, owner, o.side, price, qty, o.tif, o.stp, o.flags, ts, res)
            if res[0] == Status.REJECTED_POST_ONLY:
                res[0] = Status.OK
            return res
        if kind == Op.CANCEL_ALL:
            mine = sorted((o for o in self.orders.values() if o.owner == owner), key=lambda o: o.oid)
            for o in mine:
                self._cancel_event(ts, o.oid, owner, o.side, o.price, o.qty, CancelReason.CANCEL_ALL)
                res[3] += o.qty
                self._remove(o)
            return res
        return [Status.REJECTED_INVALID, 0, 0, 0]

    def all_orders(self) -> list[RefOrder]:
        """Every resting order: bids then asks, best level first, FIFO within a level."""
        return [o for side_ in (1, -1) for p in sorted(self.levels[side_], reverse=(side_ == 1)) for o in self.levels[side_][p]]

    def cancel_stale_reduce_only(self, positions: dict[int, int], owners: list[int], ts: int) -> int:
        """Cancel resting reduce-only orders of ``owners`` that can no longer reduce, in ascending order id."""
        self.positions = dict(positions)
        n = 0
        for o in sorted(
            (o for o in self.orders.values() if o.flags & FLAG_REDUCE_ONLY and o.owner in owners), key=lambda o: o.oid
        ):
            if self._room(o.owner, o.side) == 0:
                self._cancel_event(ts, o.oid, o.owner, o.side, o.price, o.qty, CancelReason.REDUCE_ONLY)
                self._remove(o)
                n += 1
        self.positions = None
        return n

    def l2(self, depth: int | None = None) -> L2:
        """Aggregated levels, best first, like :meth:`OrderBook.l2`."""
        sides = []
        for side in (1, -1):
            prices = sorted(self.levels[side], reverse=(side == 1))[:depth]
            sides.append([(p, sum(o.qty for o in self.levels[side][p])) for p in prices])
        return L2(sides[0], sides[1])

    def queues(self) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
        """Every level's FIFO as (order id, owner, qty), keyed by (side, price)."""
        return {(s, p): [(o.oid, o.owner, o.qty) for o in q] for s in (1, -1) for p, q in self.levels[s].items()}
