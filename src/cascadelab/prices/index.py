"""Index price: a guarded weighted average of external spot prices (Binance's rules).

* a source silent for longer than ``stale_ns`` (10 s) gets weight 0;
* a source more than ``max_deviation`` (5%) from the median of the live sources gets
  weight 0; if more than one source deviates, the index is the median itself;
* the remaining weights are renormalized.

Prices are exact fractions; nothing here rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from statistics import median


@dataclass
class IndexPrice:
    """One index (e.g. BTC): configured source weights plus the latest quote of each source."""

    weights: dict[str, Fraction]
    max_deviation: Fraction = Fraction(5, 100)
    stale_ns: int = 10_000_000_000
    quotes: dict[str, tuple[Fraction, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.weights:
            raise ValueError("index: at least one source weight is needed")
        self.weights = {k: Fraction(v) for k, v in self.weights.items()}
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("index: weights must be >= 0 with a positive sum")
        self.max_deviation = Fraction(self.max_deviation)
        self.quotes = {k: (Fraction(p), int(ts)) for k, (p, ts) in self.quotes.items()}  # exact, as update() keeps them

    def update(self, source: str, price: Fraction | int | str, ts_ns: int) -> None:
        """Record a quote from one source."""
        if source not in self.weights:
            raise ValueError(f"index: unknown source {source!r}; configured: {sorted(self.weights)}")
        p = Fraction(price)
        if p <= 0:
            raise ValueError(f"index: source {source!r} quoted a non-positive price {price}")
        self.quotes[source] = (p, int(ts_ns))

    def value(self, now_ns: int) -> Fraction | None:
        """The index at ``now_ns``; None when no source is live."""
        live = {s: p for s, (p, ts) in self.quotes.items() if now_ns - ts <= self.stale_ns and self.weights[s] > 0}
        if not live:
            return None
        med = Fraction(median(sorted(live.values())))
        # in integer arithmetic (the same exact value as Fraction arithmetic, normalised once instead of after every
        # operation): |p - med| > dev x med is |pn medd - medn pd| devd > devn medn pd (denominators > 0); the weighted
        # mean is summed over a common denominator
        mn, mdd = med.numerator, med.denominator
        dn, dd = self.max_deviation.numerator, self.max_deviation.denominator
        deviant = set()
        for s, p in live.items():
            pn, pd = p.numerator, p.denominator
            if abs(pn * mdd - mn * pd) * dd > dn * mn * pd:
                deviant.add(s)
        if len(deviant) > 1:
            return med
        num, den = 0, 1  # sum of w x p
        twn, twd = 0, 1  # sum of w
        for s, p in live.items():
            if s in deviant:
                continue
            ws = self.weights[s]
            a, b = ws.numerator * p.numerator, ws.denominator * p.denominator
            num, den = num * b + a * den, den * b
            twn, twd = twn * ws.denominator + ws.numerator * twd, twd * ws.denominator
        return Fraction(num * twd, den * twn)
