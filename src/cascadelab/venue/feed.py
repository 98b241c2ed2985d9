"""The venue's public market data: what any client can read after a step.

One :class:`MarketData` per venue, refreshed in place at the end of every step from one
compiled pass over all books (:func:`cascadelab.book.kernels.snapshot`): top of book, last
trade, marks, funding, depth within ±0.2%, ±1%, ±2% and ±5% of each mid, the public trade
tape of the step (no identities) and the running total traded per instrument. Agents read
it; nothing here can change the venue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cascadelab.book import kernels as BK
from cascadelab.book.fast import L2
from cascadelab.compiled import kernel
from cascadelab.records import TRADE

DEPTH_BPS = np.array([20, 100, 200, 500], np.int64)
"""Depth bands of the feed, in basis points of the mid: ±0.2%, ±1%, ±2%, ±5%."""


@dataclass
class MarketData:
    """Public market data of one venue at ``now_ns`` (arrays indexed by venue instrument)."""

    symbols: tuple[str, ...]
    base: tuple[str, ...]  # base asset of each instrument
    quote: tuple[str, ...]
    is_perp: np.ndarray  # bool
    tick: np.ndarray  # price of one tick (float, for estimates)
    lot: np.ndarray  # base quantity of one lot (float)
    unit_notional: np.ndarray  # money units per tick x lot (exact)
    now_ns: int = 0
    best_bid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ticks, 0 for none
    best_ask: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    last: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # last trade, ticks, 0 before the first
    mark: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # ticks (perpetuals), 0 for spot
    funding_rate: np.ndarray = field(default_factory=lambda: np.zeros(0))  # last settled rate per interval
    depth: np.ndarray = field(default_factory=lambda: np.zeros((0, len(DEPTH_BPS), 2), np.int64))  # money units (n, band, side)
    trades: np.ndarray = field(default_factory=lambda: np.zeros(0, TRADE))  # the step's public tape
    volume: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # money units traded since the start (tape total)
    _venue: object = None
    _ref: np.ndarray | None = None  # reference() of this refresh

    def index(self, symbol: str) -> int:
        """Venue index of ``symbol``."""
        return self.symbols.index(symbol)

    def mid(self) -> np.ndarray:
        """Mid prices (float, in quote per base), NaN where a side is empty."""
        both = (self.best_bid > 0) & (self.best_ask > 0)
        return np.where(both, (self.best_bid + self.best_ask) * 0.5 * self.tick, np.nan)

    def reference(self) -> np.ndarray:
        """Mid where both sides quote, else the last trade, else the mark; NaN with none (float prices).

        Computed once per refresh (agents read it many times a step); treat the result as read-only.
        """
        if self._ref is not None:
            return self._ref
        mid = self.mid()
        last = np.where(self.last > 0, self.last * self.tick, np.nan)
        mark = np.where(self.mark > 0, self.mark * self.tick, np.nan)
        ref = np.where(np.isnan(mid), np.where(np.isnan(last), mark, last), mid)
        ref.flags.writeable = False
        self._ref = ref
        return ref

    def spread_bps(self) -> np.ndarray:
        """(ask - bid) / mid in basis points, NaN where a side is empty."""
        both = (self.best_bid > 0) & (self.best_ask > 0)
        mid2 = np.maximum(self.best_bid + self.best_ask, 1)
        return np.where(both, 20_000.0 * (self.best_ask - self.best_bid) / mid2, np.nan)

    def l2(self, instrument: int, depth: int = 10) -> L2:
        """An L2 snapshot of one book (read through the venue's book, best level first)."""
        return self._venue.books[instrument].l2(depth)  # type: ignore[attr-defined]


@kernel
def _add_traded(instrument: np.ndarray, price: np.ndarray, qty: np.ndarray, traded: np.ndarray) -> None:
    """``traded[instrument[i]] += price[i] x qty[i]`` for every fill (np.add.at in one compiled pass, exact ints)."""
    for i in range(instrument.shape[0]):
        traded[instrument[i]] += price[i] * qty[i]


_NO_TRADES = np.zeros(0, TRADE)
_NO_TRADES.flags.writeable = False


class MarketFeed:
    """Builds and refreshes one venue's :class:`MarketData`."""

    def __init__(self, venue: object) -> None:
        v = venue
        inst = v.instruments  # type: ignore[attr-defined]
        n = len(inst)
        self.venue = v
        self.data = MarketData(
            tuple(i.symbol for i in inst),
            tuple(str(i.base) for i in inst),
            tuple(str(i.quote) for i in inst),
            np.array([j < v.n_perps for j in range(n)], np.bool_),  # type: ignore[attr-defined]
            np.array([float(i.tick_size) for i in inst]),
            np.array([float(i.lot_size) for i in inst]),
            np.array([int(i.unit_notional) for i in inst], np.int64),
            _venue=v,
        )
        self.data.funding_rate = np.zeros(n)
        self.data.volume = np.zeros(n, np.int64)
        self._tops = np.zeros((max(n, 1), 3), np.int64)
        self._depth = np.zeros((max(n, 1), len(DEPTH_BPS), 2), np.int64)
        self._rates: dict[str, object] = {}  # the funding rate last published per perpetual

    def refresh(self, now_ns: int, fills: np.ndarray) -> MarketData:
        """Read every book once, copy marks and funding, and publish ``fills`` as the tape."""
        v = self.venue
        d = self.data
        n = len(d.symbols)
        BK.snapshot(v.book_set.st, n, DEPTH_BPS, self._tops, self._depth)  # type: ignore[attr-defined]
        d.now_ns = now_ns
        d._ref = None
        d.best_bid = self._tops[:n, 0].copy()
        d.best_ask = self._tops[:n, 1].copy()
        d.last = self._tops[:n, 2].copy()
        d.depth = self._depth[:n] * d.unit_notional[:, None, None]
        mark = np.zeros(n, np.int64)
        k = v.n_perps  # type: ignore[attr-defined]
        mark[:k] = v.clearing.marks[:k]  # type: ignore[attr-defined]
        d.mark = mark
        for symbol, m in v.markets.items():  # type: ignore[attr-defined]
            rate = m.funding.last_rate
            if rate is not self._rates.get(symbol):  # a new rate is settled once per funding interval
                self._rates[symbol] = rate
                d.funding_rate[v.index[symbol]] = float(rate)  # type: ignore[attr-defined]
        tape = np.zeros(len(fills), TRADE) if len(fills) else _NO_TRADES
        if len(fills):
            for name in ("ts", "price", "qty", "instrument", "aggressor", "kind"):
                tape[name] = fills[name]
            traded = np.zeros(n, np.int64)  # tick-lots, exact
            _add_traded(fills["instrument"], fills["price"], fills["qty"], traded)
            d.volume = d.volume + traded * d.unit_notional
        d.trades = tape
        return d


__all__ = ["DEPTH_BPS", "MarketData", "MarketFeed"]
