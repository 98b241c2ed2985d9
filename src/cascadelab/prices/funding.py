"""Funding: premium index from impact prices, time-weighted average, interest, clamp.

Binance (since Sept 2025; Hyperliquid has the same shape):

* impact notional = 200 USDT / initial margin rate at max leverage; the impact bid (ask)
  is the average price at which that notional would sell into the bids (buy from the asks);
* premium index P = [max(0, impact bid - index) - max(0, index - impact ask)] / index,
  sampled every 5 s and averaged with weights 1, 2, ..., n over the interval;
* F = avg P + clamp(I - avg P, -0.05%, +0.05%), I = 0.01% per 8 h, scaled by N/8 for an
  N-hour interval, then capped, and rounded to 1e-8 (half away from zero).

Hyperliquid pays hourly at 1/8 of the 8 h rate, capped at 4 %/h (community mirrors: an
assumption, kept configurable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from cascadelab.units import HOUR_NS


def impact_price(
    prices: np.ndarray, qtys: np.ndarray, unit_notional: int, tick_value: Fraction, impact_notional: int
) -> Fraction | None:
    """Average fill price (as a price, not ticks) to trade ``impact_notional`` money units through levels.

    ``prices``/``qtys`` are one side's levels best first (ticks, lots); ``tick_value`` converts
    ticks to a price. None when the side is too thin to absorb the impact notional.
    """
    remaining = impact_notional
    lots = Fraction(0)
    for p, q in zip(prices.tolist(), qtys.tolist(), strict=True):
        level = p * q * unit_notional
        if level >= remaining:
            lots += Fraction(remaining, p * unit_notional)
            remaining = 0
            break
        lots += q
        remaining -= level
    if remaining > 0 or lots == 0:
        return None
    # average price in ticks = notional / (lots * unit_notional)
    return Fraction(impact_notional, unit_notional) / lots * tick_value


def premium_index(impact_bid: Fraction | None, impact_ask: Fraction | None, index: Fraction) -> Fraction:
    """P = [max(0, impact bid - index) - max(0, index - impact ask)] / index (a missing side counts 0)."""
    up = max(Fraction(0), impact_bid - index) if impact_bid is not None else Fraction(0)
    down = max(Fraction(0), index - impact_ask) if impact_ask is not None else Fraction(0)
    return (up - down) / index


@dataclass
class FundingRule:
    """One venue's funding parameters."""

    interval_hours: int = 8
    interest_8h: Fraction = Fraction(1, 10_000)  # 0.01% per 8 h
    clamp: Fraction = Fraction(5, 10_000)  # ±0.05%
    cap: Fraction = Fraction(75, 10_000)  # rate cap per interval (Binance: per symbol; 0.75% typical)
    sample_every_ns: int = 5_000_000_000

    def rate(self, avg_premium: Fraction) -> Fraction:
        """Funding rate for one interval: [P + clamp(I - P, -c, +c)] / (8 / N), then capped."""
        f = (avg_premium + min(max(self.interest_8h - avg_premium, -self.clamp), self.clamp)) * Fraction(self.interval_hours, 8)
        return min(max(f, -self.cap), self.cap)

    @classmethod
    def hyperliquid(cls) -> FundingRule:
        """Hourly payment at 1/8 of the 8 h rate, capped at 4 %/h (assumption; see module docstring)."""
        return cls(interval_hours=1, cap=Fraction(4, 100))


@dataclass
class FundingClock:
    """Samples the premium index every 5 s and settles it each interval with weights 1..n."""

    rule: FundingRule
    start_ns: int = 0
    samples: list[Fraction] = field(default_factory=list)
    next_sample_ns: int = 0
    last_rate: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        self.next_sample_ns = self.start_ns
        self.next_funding_ns = self.start_ns + self.rule.interval_hours * HOUR_NS

    @property
    def interval_ns(self) -> int:
        """Length of one funding interval."""
        return self.rule.interval_hours * HOUR_NS

    def sample_due(self, now_ns: int) -> bool:
        """Has ``now_ns`` reached a 5 s grid point not yet sampled (so the premium is worth computing)?"""
        return now_ns >= self.next_sample_ns and self.next_sample_ns < self.next_funding_ns

    def sample(self, now_ns: int, premium: Fraction) -> None:
        """Record the premium at every 5 s grid point reached by ``now_ns``."""
        while now_ns >= self.next_sample_ns and self.next_sample_ns < self.next_funding_ns:
            self.samples.append(premium)
            self.next_sample_ns += self.rule.sample_every_ns

    def average_premium(self) -> Fraction:
        """(1*P1 + 2*P2 + ... + n*Pn) / (1 + 2 + ... + n); 0 with no samples."""
        n = len(self.samples)
        if n == 0:
            return Fraction(0)
        return sum((j + 1) * p for j, p in enumerate(self.samples)) / Fraction(n * (n + 1), 2)

    def due(self, now_ns: int) -> bool:
        """Has the funding time been reached?"""
        return now_ns >= self.next_funding_ns

    def settle(self) -> Fraction:
        """Close the interval: return its funding rate and start the next one."""
        self.last_rate = self.rule.rate(self.average_premium())
        self.samples = []
        self.next_funding_ns += self.interval_ns
        self.next_sample_ns = self.next_funding_ns - self.interval_ns
        return self.last_rate


def rate_units(rate: Fraction, scale: int = 10**8) -> int:
    """A funding rate as an integer in 1/scale, rounded half away from zero."""
    x = rate * scale
    n = abs(x.numerator) * 2 + x.denominator
    q = n // (2 * x.denominator)
    return q if x >= 0 else -q
