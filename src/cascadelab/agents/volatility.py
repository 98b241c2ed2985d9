"""Online volatility on several timescales, and the regime it implies (BRIEF §2).

:class:`MultiScaleVolatility` measures, for each timescale τ (default 1 s, 1 min, 15 min
(intraday), 1 day (inter-day)), the variance per second of log returns *over τ*: at every observation, the return
since the price τ ago (from a short history sampled at τ/10) squared and divided by τ,
averaged exponentially with a half-life of τ. Measuring over τ matters: a steady slide is
nearly invisible in one-second returns but is the whole story over a minute, and a market
maker's risk is the move over its horizon. Each scale starts from a prior (the daily
volatility a participant knows from the days before), so the day scale moves slowly while
the second scale reacts at once. The day scale uses hourly returns (a run is hours long).

:func:`regime` classifies intraday vs inter-day volatility against their priors into the
brief's four regimes: stable (both low), ranging (intraday high), trending (inter-day high),
crisis (both high).
"""

from __future__ import annotations

import math
from collections import deque
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
    """Variance per second of log returns over each timescale (seconds), from a prior daily σ."""

    daily_sigma: float  # prior: volatility per day (e.g. 0.03)
    scales_s: tuple[float, ...] = (1.0, 60.0, 900.0, DAY_S)
    last_ns: int = field(default=-1, init=False)  # the last observation's time (-1 before the first)

    def __post_init__(self) -> None:
        if not self.daily_sigma > 0:
            raise ValueError(f"daily_sigma must be > 0, got {self.daily_sigma}")
        self._var = [self.daily_sigma**2 / DAY_S] * len(self.scales_s)  # per scale: variance per second
        # returns are measured over min(τ, 1 h): a day-long return cannot be seen inside a run
        horizon = [min(s, 3_600.0) for s in self.scales_s]
        # per scale: (τ, horizon in ns, the spacing of kept samples in ns)
        self._scales = [
            (tau, int(h * SECOND_NS), int(h * SECOND_NS / 10), h) for tau, h in zip(self.scales_s, horizon, strict=True)
        ]
        self._hist: list[deque[tuple[int, float]]] = [deque() for _ in self.scales_s]
        self._alpha_dt = math.nan  # the step (s) the decays below are for (most updates are one requote apart)
        self._alpha = [0.0] * len(self.scales_s)  # per scale: the weight of a new observation after that step

    @property
    def var(self) -> np.ndarray:
        """Variance per second of each scale."""
        return np.array(self._var)

    def update(self, now_ns: int, price: float) -> None:
        """Add one price observation (ignored if not positive and finite, or if no time passed)."""
        if not (price > 0 and math.isfinite(price)) or now_ns <= self.last_ns:
            return
        if self.last_ns < 0:  # the first observation: nothing to measure a return from yet
            self.last_ns = now_ns
            lp = math.log(price)
            for hist in self._hist:
                hist.append((now_ns, lp))
            return
        dt = (now_ns - self.last_ns) / SECOND_NS
        self.last_ns = now_ns
        lp = math.log(price)
        var = self._var
        if dt != self._alpha_dt:
            self._alpha_dt = dt
            self._alpha = [-math.expm1(-dt / tau) for tau in self.scales_s]
        alphas, hists = self._alpha, self._hist
        for j, (_tau, h_ns, space_ns, h) in enumerate(self._scales):
            hist = hists[j]
            if now_ns - hist[-1][0] >= space_ns:
                hist.append((now_ns, lp))
            while len(hist) > 1 and now_ns - hist[1][0] >= h_ns:
                hist.popleft()
            t0, lp0 = hist[0]
            if t0 >= now_ns:
                continue  # no time since the oldest kept sample
            r2_per_s = (lp - lp0) ** 2 / max((now_ns - t0) / SECOND_NS, h)  # the move over (up to) the horizon, per second
            var[j] += alphas[j] * (r2_per_s - var[j])

    def sigma(self, scale: int) -> float:
        """σ per √second of scale ``scale`` (0 = fastest)."""
        return math.sqrt(self._var[scale])

    def ratio(self, scale: int) -> float:
        """σ of ``scale`` over the prior σ (1 = as the days before)."""
        return math.sqrt(self._var[scale] * DAY_S) / self.daily_sigma


def regime(intraday_ratio: float, interday_ratio: float, high: float = 2.0, high_interday: float = 4.0) -> Regime:
    """The regime from volatility ratios to their priors (intraday high from ``high``, inter-day from ``high_interday``)."""
    hi_in, hi_out = intraday_ratio >= high, interday_ratio >= high_interday
    if hi_in and hi_out:
        return Regime.CRISIS
    if hi_in:
        return Regime.RANGING
    if hi_out:
        return Regime.TRENDING
    return Regime.STABLE


__all__ = ["DAY_S", "MultiScaleVolatility", "Regime", "regime"]
