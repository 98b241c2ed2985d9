"""Phase clocks: where a step's wall time goes, kept as totals per named phase.

The venue's step, the liquidation engine and the simulation loop each own one; ``make bench``
prints their breakdowns. Reading the clock costs about 0.1 us, so it stays on in every run.
"""

from __future__ import annotations

import time


class PhaseClock:
    """Accumulates wall time per phase: call :meth:`lap` at the end of each phase."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self._last = time.perf_counter_ns()

    def start(self) -> None:
        """Begin timing from now (time since the last lap is dropped)."""
        self._last = time.perf_counter_ns()

    def lap(self, phase: str) -> None:
        """Charge the time since the last lap (or :meth:`start`) to ``phase``."""
        now = time.perf_counter_ns()
        self.totals[phase] = self.totals.get(phase, 0) + now - self._last
        self._last = now

    def reset(self) -> None:
        """Forget every total."""
        self.totals.clear()
        self._last = time.perf_counter_ns()

    def seconds(self) -> dict[str, float]:
        """Totals in seconds, in the order the phases first appeared."""
        return {k: v / 1e9 for k, v in self.totals.items()}

    def breakdown(self, unit: str = "ms") -> str:
        """One line: each phase's total and share, e.g. ``detect 1.2 ms (4%)``."""
        scale = {"s": 1e9, "ms": 1e6, "us": 1e3}[unit]
        total = sum(self.totals.values()) or 1
        return ", ".join(f"{k} {v / scale:,.1f} {unit} ({100 * v / total:.0f}%)" for k, v in self.totals.items())
