"""Multi-asset collateral: what each asset is worth to the margin system, and how that is decided.

An asset's price is a weighted sum of *components*, each a product of price terms:

* ``("book", SYMBOL)``: the venue's own spot book (mid, else last trade), e.g. WBETHUSDT;
* ``("index", ASSET)``: an external index price of the asset;
* ``("fixed", "1.0695")``: a constant, e.g. a redemption (conversion) ratio.

So Binance's pre-crash wBETH valuation, 20% WBETHUSDT spot and 80% WBETH/ETH x ETHUSDT, is
``[(0.2, [book WBETHUSDT]), (0.8, [book WBETHETH, book ETHUSDT])]``; the redemption-rate
pricing adopted on 14 Oct 2025 is ``[(1, [fixed 1.0695, index ETH])]``; USDe at its
redemption value is ``[(1, [fixed 1])]``. An optional floor bounds the price from below.
The collateral ratio (haircut) then scales positive balances.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from cascadelab.units import MONEY_SCALE, RATE_SCALE, rate_to_units

PriceTerm = tuple[str, str]
TERM_KINDS = ("book", "index", "fixed")


class CollateralError(ValueError):
    """An invalid collateral definition; the message names the asset and field."""


@functools.lru_cache(maxsize=1024)
def _fixed_term(name: str) -> Fraction:
    """A fixed price term's exact value (parsed once per distinct string; Fractions are immutable)."""
    return Fraction(name)


@dataclass(frozen=True)
class Valuation:
    """How to price one asset: weighted components (products of terms) and an optional floor."""

    components: tuple[tuple[Fraction, tuple[PriceTerm, ...]], ...]
    floor: Fraction | None = None

    @classmethod
    def of(
        cls,
        components: list[tuple[str | Decimal | Fraction | int, list[PriceTerm]]],
        floor: str | None = None,
        what: str = "valuation",
    ) -> Valuation:
        """Validate and build; weights must be positive and sum to 1."""
        comps = []
        for n, (w, terms) in enumerate(components, start=1):
            wf = Fraction(str(w)) if not isinstance(w, Fraction) else w
            if wf <= 0:
                raise CollateralError(f"{what}: component {n}: weight must be > 0, got {w}")
            if not terms:
                raise CollateralError(f"{what}: component {n}: needs at least one price term")
            for kind, name in terms:
                if kind not in TERM_KINDS:
                    raise CollateralError(f"{what}: component {n}: term kind {kind!r} not in {TERM_KINDS}")
                if kind == "fixed":
                    try:
                        if Fraction(name) <= 0:
                            raise ValueError
                    except ValueError:
                        raise CollateralError(f"{what}: component {n}: fixed term {name!r} must be a positive number") from None
            comps.append((wf, tuple(terms)))
        if not comps:
            raise CollateralError(f"{what}: at least one component is needed")
        if sum(w for w, _ in comps) != 1:
            raise CollateralError(f"{what}: weights sum to {sum(w for w, _ in comps)}, must sum to 1")
        return cls(tuple(comps), Fraction(floor) if floor is not None else None)

    def price(self, resolve: Callable[[str, str], Fraction | None]) -> Fraction | None:
        """The valued price; None when a term has no price yet."""
        # exact: a product starts at its first term and the sum at its first part (components and terms are never empty,
        # see of()): the same values as from 1 and 0, with fewer Fraction operations
        total: Fraction | None = None
        for w, terms in self.components:
            p: Fraction | None = None
            for kind, name in terms:
                v = _fixed_term(name) if kind == "fixed" else resolve(kind, name)
                if v is None:
                    return None
                p = v if p is None else p * v
            assert p is not None  # a component has at least one term
            part = p if w == 1 else w * p
            total = part if total is None else total + part
        assert total is not None  # a valuation has at least one component
        if self.floor is not None and total < self.floor:
            total = self.floor
        return total


@dataclass(frozen=True)
class CollateralAsset:
    """An asset usable as collateral, with its haircut and its valuation."""

    code: str
    ratio: int  # collateral value ratio, millionths
    valuation: Valuation
    notes: str = field(default="", compare=False)

    @classmethod
    def of(cls, code: str, ratio: str, valuation: Valuation, notes: str = "") -> CollateralAsset:
        """Build with the ratio given as a decimal fraction ("0.95")."""
        r = rate_to_units(ratio, f"collateral {code} ratio")
        if not 0 <= r <= RATE_SCALE:
            raise CollateralError(f"collateral {code}: field 'ratio' must be within [0, 1], got {ratio}")
        return cls(code, r, valuation, notes)


def price_units(p: Fraction) -> int:
    """A price as integer money units per whole coin, rounded down (conservative for collateral)."""
    return (p.numerator * MONEY_SCALE) // p.denominator


def fixed(value: str) -> Valuation:
    """Valuation at a constant price (stablecoins at par, redemption at a fixed rate)."""
    return Valuation.of([(1, [("fixed", value)])])


def from_book(symbol: str, floor: str | None = None) -> Valuation:
    """Valuation from the venue's own spot book."""
    return Valuation.of([(1, [("book", symbol)])], floor)


def from_index(asset: str, floor: str | None = None) -> Valuation:
    """Valuation from an external index."""
    return Valuation.of([(1, [("index", asset)])], floor)


def redemption(rate: str, base_asset: str) -> Valuation:
    """Valuation at the redemption (conversion) rate times the base asset's index price."""
    return Valuation.of([(1, [("fixed", rate), ("index", base_asset)])])
