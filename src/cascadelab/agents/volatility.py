"""Online volatility on several timescales, and the regime it implies (BRIEF §2).

:class:`MultiScaleVolatility` keeps, for each half-life (default 1 s, 1 min, 1 h, 1 day),
an exponentially weighted mean of squared log returns per second of market time, so each
scale's σ is per √second whatever the sampling interval. Scales start from a prior (the
daily volatility a participant knows from the days before), so the day scale moves slowly
while the second scale reacts at once.

:func:`regime` classifies intraday vs inter-day volatility against their priors into the
brief's four regimes: stable (both low), ranging (intraday high), trending (inter-day high),
crisis (both high).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from cascadelab.units import SECOND_NS

DAY_S = 86_400.0


class Regime(IntEnum):
    """Market regimes of the brief's table (intraday vs inter-day volatility)."""

    STABLE = 0
    RANGING = 1
    TRENDING = 2
    CRISIS = 3


@dataclass
class MultiScaleVolatility:
    """EWMA of squared log returns per second on several half-lives (seconds), from a prior daily σ."""

    daily_sigma: float  # prior: volatility per day (e.g. 0.03)
    half_lives_s: tuple[float, ...] = (1.0, 60.0, 3_600.0, DAY_S)
    var: np.ndarray = field(init=False)  # per scale: variance per second
    last_price: float = math.nan
    last_ns: int = -1

    def __post_init__(self) -> None:
        if not self.daily_sigma > 0:
            raise ValueError(f"daily_sigma must be > 0, got {self.daily_sigma}")
        self.hl = np.asarray(self.half_lives_s, np.float64)
        self.var = np.full(len(self.hl), self.daily_sigma**2 / DAY_S)

    def update(self, now_ns: int, price: float) -> None:
        """Add one price observation (ignored if not positive and finite, or if no time passed)."""
        if not (price > 0 and math.isfinite(price)):
            return
        if self.last_ns < 0:
            self.last_ns, self.last_price = now_ns, price
            return
        dt = (now_ns - self.last_ns) / SECOND_NS
        if dt <= 0:
            return
        r2 = math.log(price / self.last_price) ** 2
        alpha = -np.expm1(-dt / self.hl)
        self.var += alpha * (r2 / dt - self.var)
        self.last_ns, self.last_price = now_ns, price

    def sigma(self, scale: int) -> float:
        """σ per √second of scale ``scale`` (0 = fastest)."""
        return float(math.sqrt(self.var[scale]))

    def ratio(self, scale: int) -> float:
        """σ of ``scale`` over the prior σ (1 = as the days before)."""
        return float(math.sqrt(self.var[scale] * DAY_S) / self.daily_sigma)


def regime(intraday_ratio: float, interday_ratio: float, high: float = 2.0) -> Regime:
    """The regime from volatility ratios to their priors; a ratio >= ``high`` counts as high."""
    hi_in, hi_out = intraday_ratio >= high, interday_ratio >= high
    if hi_in and hi_out:
        return Regime.CRISIS
    if hi_in:
        return Regime.RANGING
    if hi_out:
        return Regime.TRENDING
    return Regime.STABLE


__all__ = ["DAY_S", "MultiScaleVolatility", "Regime", "regime"]
