"""Mark price rules, chosen per venue profile behind one interface (:class:`MarkRule`).

* :class:`BinanceMark`: median(P1, P2, last trade) with
  P1 = index x (1 + last funding rate x time to next funding / interval) and
  P2 = index + moving average of (mid - index) over 30 one-second samples (Binance
  announcement of 16 Sept 2025, effective 18 Sept 2025: "30 data points over a 30 seconds
  period", sampled each second). Samples sit on the one-second grid of market time: an
  update after several seconds records one sample per second that elapsed (holding the
  latest basis), and an update within a second records none; a second in which the book
  had no mid has no sample. The average is over the samples of the last 30 seconds.
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
from typing import Protocol

from cascadelab.prices.funding import FundingClock
from cascadelab.units import SECOND_NS


def _median(values: list[Fraction]) -> Fraction:
    s = sorted(values)
    if len(s) % 2:  # the middle value itself (statistics.median's answer, without sorting again)
        return Fraction(s[len(s) // 2])
    return Fraction(median(s))


class MarkRule(Protocol):
    """A mark price rule: fed the index, the book's top and last trade, and the funding clock."""

    def update(
        self,
        now_ns: int,
        index: Fraction,
        best_bid: Fraction | None,
        best_ask: Fraction | None,
        last: Fraction | None,
        funding: FundingClock,
    ) -> Fraction: ...


@dataclass
class BinanceMark:
    """Binance USDⓈ-M mark price with its 30-second basis moving average (see the module docstring)."""

    window_s: int = 30
    basis: deque = field(default_factory=deque)  # (second, mid - index)
    next_sample_s: int | None = None
    last_basis: Fraction | None = None
    basis_sum: Fraction = Fraction(0)  # exact sum of the samples in ``basis`` (kept as they come and go)

    def update(
        self,
        now_ns: int,
        index: Fraction,
        best_bid: Fraction | None,
        best_ask: Fraction | None,
        last: Fraction | None,
        funding: FundingClock,
    ) -> Fraction:
        """Sample the basis on the one-second grid up to ``now_ns`` and return the mark."""
        now_s = now_ns // SECOND_NS
        mid = (best_bid + best_ask) / 2 if best_bid is not None and best_ask is not None else None
        if self.next_sample_s is None:
            self.next_sample_s = now_s
        current = None if mid is None else mid - index
        while self.next_sample_s <= now_s:
            # seconds before this update hold the previous basis; the current second takes the current one
            b = current if self.next_sample_s == now_s else self.last_basis
            if b is not None:
                self.basis.append((self.next_sample_s, b))
                self.basis_sum += b
            self.next_sample_s += 1
        self.last_basis = current
        while self.basis and self.basis[0][0] <= now_s - self.window_s:
            self.basis_sum -= self.basis.popleft()[1]
        if not self.basis:
            self.basis_sum = Fraction(0)
        rate, dt, iv = Fraction(funding.last_rate), funding.next_funding_ns - now_ns, funding.interval_ns
        # index x (1 + rate x dt / iv) = index x (rd iv + rn dt) / (rd iv): the same exact value, reduced once
        rn, rd = rate.numerator, rate.denominator
        p1 = Fraction(index.numerator * (rd * iv + rn * dt), index.denominator * rd * iv)
        p2 = index + (self.basis_sum / len(self.basis) if self.basis else Fraction(0))
        return _median([p1, p2, last]) if last is not None else (p1 + p2) / 2


@dataclass
class HyperliquidMark:
    """Hyperliquid mark price: oracle + 150 s EMA of the basis, book median, external mids."""

    ema_seconds: float = 150.0
    ema: float | None = None
    last_ns: int | None = None
    external_mids: list[Fraction] = field(default_factory=list)

    def update(
        self,
        now_ns: int,
        index: Fraction,
        best_bid: Fraction | None,
        best_ask: Fraction | None,
        last: Fraction | None,
        funding: FundingClock,
    ) -> Fraction:
        """Advance the EMA to ``now_ns`` and return the mark."""
        if best_bid is not None and best_ask is not None:
            basis = float((best_bid + best_ask) / 2 - index)
            if self.ema is None or self.last_ns is None:
                self.ema = basis
            else:
                alpha = 1.0 - math.exp(-(now_ns - self.last_ns) / (self.ema_seconds * SECOND_NS))
                self.ema += alpha * (basis - self.ema)
            self.last_ns = now_ns
        a = index + Fraction(self.ema or 0.0)
        book = [p for p in (best_bid, best_ask, last) if p is not None]
        parts = [a]
        if book:
            parts.append(_median(book))
        if self.external_mids:
            parts.append(_median(list(self.external_mids)))
        return _median(parts)


MARK_RULES = {"binance": BinanceMark, "hyperliquid": HyperliquidMark}


def mark_rule(name: str) -> MarkRule:
    """A fresh mark rule by name; the error lists the known ones."""
    try:
        return MARK_RULES[name]()
    except KeyError:
        raise ValueError(f"mark rule must be one of {sorted(MARK_RULES)}, got {name!r}") from None
