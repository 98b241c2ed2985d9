"""Mark price rules, selectable per venue profile.

* :class:`BinanceMark`: median(P1, P2, last trade) with
  P1 = index x (1 + last funding rate x time to next funding / interval) and
  P2 = index + moving average of (mid - index) over the last 30 one-second samples.
* :class:`HyperliquidMark`: median of (a) oracle + 150 s EMA of (mid - oracle),
  (b) median(best bid, best ask, last trade), (c) median of other venues' perp mids. With
  no external mids, (c) is left out and the median of two is their mean (assumption:
  Hyperliquid's docs do not say what happens then).

Both return exact fractions; the venue rounds the mark to its tick for margin.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from statistics import median

SECOND_NS = 1_000_000_000


def _median(values: list[Fraction]) -> Fraction:
    return Fraction(median(sorted(values)))


@dataclass
class BinanceMark:
    """Binance USDⓈ-M mark price with its 30-sample basis moving average."""

    samples: int = 30
    sample_every_ns: int = SECOND_NS
    basis: deque = field(default_factory=deque)
    next_sample_ns: int = 0

    def update(
        self,
        now_ns: int,
        index: Fraction,
        mid: Fraction | None,
        last: Fraction | None,
        funding_rate: Fraction,
        ns_to_funding: int,
        interval_ns: int,
    ) -> Fraction:
        """Sample the basis on the one-second grid and return the mark at ``now_ns``."""
        while mid is not None and now_ns >= self.next_sample_ns:
            self.basis.append(mid - index)
            if len(self.basis) > self.samples:
                self.basis.popleft()
            self.next_sample_ns = (now_ns // self.sample_every_ns + 1) * self.sample_every_ns
        p1 = index * (1 + funding_rate * Fraction(ns_to_funding, interval_ns))
        p2 = index + (sum(self.basis, Fraction(0)) / len(self.basis) if self.basis else Fraction(0))
        return _median([p1, p2, last]) if last is not None else (p1 + p2) / 2


@dataclass
class HyperliquidMark:
    """Hyperliquid mark price: oracle + 150 s EMA of the basis, book median, external mids."""

    ema_seconds: float = 150.0
    ema: float | None = None
    last_ns: int | None = None

    def update(
        self,
        now_ns: int,
        oracle: Fraction,
        best_bid: Fraction | None,
        best_ask: Fraction | None,
        last: Fraction | None,
        external_mids: list[Fraction] | None = None,
    ) -> Fraction:
        """Advance the EMA to ``now_ns`` and return the mark."""
        if best_bid is not None and best_ask is not None:
            basis = float((best_bid + best_ask) / 2 - oracle)
            if self.ema is None or self.last_ns is None:
                self.ema = basis
            else:
                alpha = 1.0 - math.exp(-(now_ns - self.last_ns) / (self.ema_seconds * SECOND_NS))
                self.ema += alpha * (basis - self.ema)
            self.last_ns = now_ns
        a = oracle + Fraction(self.ema or 0.0)
        book = [p for p in (best_bid, best_ask, last) if p is not None]
        parts = [a]
        if book:
            parts.append(_median(book))
        if external_mids:
            parts.append(_median(list(external_mids)))
        return _median(parts)
