"""The state every part of the clearing house shares: ledger, accounts, instruments, prices.

:class:`ClearingCore` is a plain holder; the jobs that act on it (settlement, funding,
lending, margin) are separate classes that receive it, and
:class:`cascadelab.clearing.house.ClearingHouse` is the facade over them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cascadelab.clearing.accounts import AccountTable
from cascadelab.clearing.collateral import CollateralAsset
from cascadelab.clearing.ledger import Ledger
from cascadelab.clearing.margin import MarginParams, MarginTiers, margin_params
from cascadelab.instruments import Instrument, InstrumentKind


class ClearingError(ValueError):
    """A request the clearing house refuses; the message says why."""


def whole(name: str, value: object, minimum: int | None = None) -> int:
    """``value`` as a Python int if it is an integer (never a float, Decimal, string or bool), else ClearingError.

    Money, sizes and leverage are integers everywhere: a non-integer would be silently
    truncated by the int64 arrays, so it is refused here with its name.
    """
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ClearingError(f"{name} must be an integer (money units, lots or a count), got {value!r} ({type(value).__name__})")
    v = int(value)
    if not -(2**63) <= v < 2**63:
        raise ClearingError(f"{name} {v} does not fit in int64")
    if minimum is not None and v < minimum:
        raise ClearingError(f"{name} must be > {minimum - 1}, got {v}")
    return v


def whole_array(name: str, values: object) -> np.ndarray:
    """``values`` as an int64 array if every entry is an integer (bools and floats refused), else ClearingError."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
        raise ClearingError(f"{name} must be integers (money units, lots or counts), got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and len(arr) and int(arr.max()) >= 2**63:
        raise ClearingError(f"{name}: values must fit in int64")
    return arr.astype(np.int64).reshape(-1)


@dataclass(frozen=True)
class PerpSpec:
    """A perpetual as the clearing house sees it: instrument, margin tiers, position limit (lots)."""

    instrument: Instrument
    tiers: MarginTiers
    position_limit: int | None = None


@dataclass(frozen=True)
class LoanTerms:
    """Borrowing rules: borrow only while LTV stays at or below ``initial_ltv`` (millionths)."""

    initial_ltv: int = 650_000
    liquidation_ltv: int = 910_000


@dataclass
class ClearingCore:
    """Ledger, accounts, instruments, collateral and margin parameters of one venue."""

    perps: list[PerpSpec]
    spots: list[Instrument]
    collateral: dict[str, CollateralAsset]
    settle_asset: str
    ledger: Ledger
    accounts: AccountTable
    params: MarginParams
    loan_terms: LoanTerms
    perp_index: dict[str, int] = field(default_factory=dict)
    spot_index: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        perps: list[PerpSpec],
        spots: list[Instrument],
        collateral: list[CollateralAsset],
        settle_asset: str,
        loan_terms: LoanTerms | None,
        journal: bool,
        capacity: int,
    ) -> ClearingCore:
        """Validate the instruments against the collateral assets and allocate the state."""
        coll = {c.code: c for c in collateral}
        if len(coll) != len(collateral):
            raise ClearingError("collateral: asset codes must be unique")
        if settle_asset not in coll:
            raise ClearingError(f"settlement asset {settle_asset!r} must be a collateral asset")
        for p in perps:
            if p.instrument.kind != InstrumentKind.PERPETUAL or p.instrument.quote != settle_asset:
                raise ClearingError(f"{p.instrument.symbol}: only {settle_asset}-margined perpetuals are supported")
        for s in spots:
            if s.kind != InstrumentKind.SPOT:
                raise ClearingError(f"{s.symbol}: not a spot instrument")
            if s.lot_units is None:
                raise ClearingError(f"{s.symbol}: field 'lot_size' must be a multiple of 1e-8 for exact delivery")
            for a in (s.base, s.quote):
                if a not in coll:
                    raise ClearingError(f"{s.symbol}: asset {a!r} is not configured")
        symbols = [p.instrument.symbol for p in perps] + [s.symbol for s in spots]
        if len(set(symbols)) != len(symbols):
            raise ClearingError(f"instrument symbols must be unique, got {symbols}")
        assets = list(coll)
        q = assets.index(settle_asset)
        params = margin_params(
            [p.tiers for p in perps], [p.instrument.unit_notional for p in perps], [coll[a].ratio for a in assets], q
        )
        return cls(
            list(perps),
            list(spots),
            coll,
            settle_asset,
            Ledger(assets, journal=journal),
            AccountTable(len(perps), len(assets), capacity),
            params,
            loan_terms or LoanTerms(),
            {p.instrument.symbol: k for k, p in enumerate(perps)},
            {s.symbol: j for j, s in enumerate(spots)},
        )

    @property
    def assets(self) -> list[str]:
        """Asset codes in ledger order."""
        return self.ledger.assets

    @property
    def q(self) -> int:
        """Index of the settlement asset."""
        return self.params.quote

    @property
    def units(self) -> np.ndarray:
        """Money per tick-lot of each perpetual."""
        return self.params.unit

    @property
    def marks(self) -> np.ndarray:
        """Mark price of each perpetual, ticks."""
        return self.params.marks

    @property
    def asset_price(self) -> np.ndarray:
        """Collateral price of each asset, money units per whole coin."""
        return self.params.price

    @property
    def ratio(self) -> np.ndarray:
        """Collateral ratio of each asset, millionths."""
        return self.params.ratio

    def acct(self, i: int) -> int:
        """``i`` as an int, or a :class:`ClearingError` naming an unknown account."""
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool) or not 0 <= int(i) < self.accounts.n:
            raise ClearingError(f"unknown account {i!r}: accounts are integers 0..{self.accounts.n - 1}")
        return int(i)

    def perp(self, symbol: str) -> int:
        """Index of a perpetual, or a :class:`ClearingError` listing the known ones."""
        try:
            return self.perp_index[symbol]
        except KeyError:
            raise ClearingError(f"unknown perpetual {symbol!r}; known: {list(self.perp_index)}") from None

    def balance_col(self, i: int) -> np.ndarray:
        """Account ``i``'s balances, one per asset (a view)."""
        return self.ledger.balances[:, i]
