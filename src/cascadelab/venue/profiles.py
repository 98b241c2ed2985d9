"""Venue profiles: binance, bybit, okx, hyperliquid, bitmex.

Each value carries its source. ``ASSUMPTION`` marks a value that no source we hold gives:
it is a plausible placeholder shaped like the venue's published tables, kept configurable,
and should be replaced by the venue's current figures before a study relies on it.
Sources are cited by what they are (see ../shared/DOMAIN.md for the formulas).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Generic, TypeVar

from cascadelab.clearing.collateral import CollateralAsset, fixed
from cascadelab.clearing.core import LoanTerms, PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import Instrument, perpetual
from cascadelab.liquidation.config import LiquidationConfig, config_from_params
from cascadelab.units import SECOND_NS, money_to_units, rate_to_units
from cascadelab.venue.venue import Venue

T = TypeVar("T")
ASSUMPTION = "assumption: no source we hold gives this value"

SRC_DOMAIN = "cascadelab shared/DOMAIN.md (venue documentation as summarised there)"
SRC_BINANCE_BRACKETS = (
    "Binance BTCUSDT brackets 2021 (third-party copy of the web app's bracket table); cum checked by the recurrence"
)
SRC_BINANCE_FAQ = "Binance FAQ on liquidation and ADL (via DOMAIN.md)"
SRC_HL_DOCS = "Hyperliquid docs: liquidations, auto-deleveraging (HL gitbook and HyperCore-based venues' docs)"
SRC_BYBIT_ADL = "Bybit help centre, Auto-Deleveraging (ADL) Mechanism (2024-09 and 2025-11 versions)"
SRC_BYBIT_POOLS = "report on Bybit's 2025 shared insurance pools: 30% drawdown threshold over rolling 8 h (third-party)"
SRC_OKX_MIRROR = "OKX insurance fund / ADL rules, mirror sources only (via DOMAIN.md)"
SRC_BITMEX = "BitMEX ADL ranking and takeover at bankruptcy price (via DOMAIN.md)"


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A parameter value and where it comes from."""

    value: T
    source: str

    @property
    def is_assumption(self) -> bool:
        """True when no source gives the value."""
        return self.source.startswith("assumption")


def _tiers(rows: list[tuple[str | None, str, int]]) -> MarginTiers:
    return MarginTiers.from_table(rows)


@dataclass(frozen=True)
class VenueProfile:
    """Everything that differs between venues, each value with its source."""

    name: str
    maker_fee: Sourced[Decimal]
    taker_fee: Sourced[Decimal]
    tiers: dict[str, Sourced[MarginTiers]]
    mark_rule: Sourced[str]
    liquidation: dict[str, Sourced[object]] = field(default_factory=dict)
    price_interval_ns: Sourced[int] = Sourced(SECOND_NS, ASSUMPTION + " (index and mark recomputed once per second)")

    def tiers_for(self, base: str) -> MarginTiers:
        """Margin tiers for a base asset (BTC, ETH, SOL, DOGE; anything else gets the altcoin table)."""
        return self.tiers.get(base.upper(), self.tiers["ALT"]).value

    def liquidation_config(self, **overrides: object) -> LiquidationConfig:
        """The liquidation engine's configuration for this venue (flat parameters; overrides for experiments)."""
        values = {k: v.value for k, v in self.liquidation.items()}
        unknown = set(overrides) - set(inspect.signature(config_from_params).parameters)
        if unknown:
            raise ValueError(f"unknown liquidation parameter(s) {sorted(unknown)}")
        values.update(overrides)
        return config_from_params(**values)  # type: ignore[arg-type]

    def sources(self) -> list[tuple[str, str, str]]:
        """(parameter, value, source) for every value of the profile, for reports and audits."""
        rows = [
            ("maker_fee", str(self.maker_fee.value), self.maker_fee.source),
            ("taker_fee", str(self.taker_fee.value), self.taker_fee.source),
            ("mark_rule", self.mark_rule.value, self.mark_rule.source),
            ("price_interval_ns", str(self.price_interval_ns.value), self.price_interval_ns.source),
        ]
        for base, t in self.tiers.items():
            first = t.value
            rows.append(
                (
                    f"tiers.{base}",
                    f"{len(first.caps)} tiers, max {first.max_leverage[0]}x, MMR {first.mmr[0] / 1e4:.2f}%",
                    t.source,
                )
            )
        rows += [(f"liquidation.{k}", str(v.value), v.source) for k, v in self.liquidation.items()]
        return rows


def _binance() -> VenueProfile:
    btc = _tiers(
        [
            ("50000", "0.004", 125),
            ("250000", "0.005", 100),
            ("1000000", "0.01", 50),
            ("10000000", "0.025", 20),
            ("20000000", "0.05", 10),
            ("50000000", "0.1", 5),
            ("100000000", "0.125", 4),
            ("200000000", "0.15", 3),
            ("300000000", "0.25", 2),
            (None, "0.5", 1),
        ]
    )
    eth = _tiers(
        [
            ("10000", "0.005", 100),
            ("100000", "0.0065", 75),
            ("500000", "0.01", 50),
            ("1000000", "0.02", 25),
            ("2000000", "0.05", 10),
            (None, "0.1", 5),
        ]
    )
    alt = _tiers([("5000", "0.01", 50), ("25000", "0.025", 20), ("100000", "0.05", 10), ("250000", "0.1", 5), (None, "0.125", 2)])
    return VenueProfile(
        "binance",
        Sourced(Decimal("0.0002"), "Binance USDⓈ-M fee schedule, VIP 0 (as commonly published; not verified offline)"),
        Sourced(Decimal("0.0005"), "Binance USDⓈ-M fee schedule, VIP 0 (as commonly published; not verified offline)"),
        {
            "BTC": Sourced(btc, SRC_BINANCE_BRACKETS),
            "ETH": Sourced(eth, ASSUMPTION),
            "SOL": Sourced(alt, ASSUMPTION),
            "DOGE": Sourced(alt, ASSUMPTION),
            "ALT": Sourced(alt, ASSUMPTION),
        },
        Sourced("binance", SRC_DOMAIN),
        {
            "style": Sourced("binance", SRC_DOMAIN),
            "clearance_fee": Sourced(rate_to_units("0.004"), "DOMAIN.md: 0.3%-0.75% historically; a model may use 40 bps"),
            "fund_structure": Sourced("shared", "DOMAIN.md: shared BTC/ETH/BNB fund (unofficial figures)"),
            "fund_seed": Sourced(money_to_units("1230000000"), "DOMAIN.md: ~$1.23B before 10 Oct 2025 (unofficial)"),
            "adl_trigger": Sourced("insufficient", SRC_BINANCE_FAQ),
            "adl_ranking": Sourced("binance", SRC_BINANCE_FAQ),
            "adl_price": Sourced("bankruptcy", SRC_DOMAIN),
            "liquidator_orders_per_s": Sourced(50, ASSUMPTION),
            "liquidator_notional_per_s": Sourced(money_to_units("5000000"), ASSUMPTION + " (about an hour to clear ~$19B)"),
        },
    )


def _hyperliquid() -> VenueProfile:
    def hl(max_lev: int) -> MarginTiers:
        return MarginTiers.hyperliquid(max_lev)

    return VenueProfile(
        "hyperliquid",
        Sourced(Decimal("0.00015"), "Hyperliquid fee tiers, base tier (as commonly published; not verified offline)"),
        Sourced(Decimal("0.00045"), "Hyperliquid fee tiers, base tier (as commonly published; not verified offline)"),
        {
            "BTC": Sourced(hl(40), "DOMAIN.md / " + SRC_HL_DOCS + ": BTC max 40x, MMR = half the initial rate"),
            "ETH": Sourced(hl(25), ASSUMPTION + " (max leverage)"),
            "SOL": Sourced(hl(20), ASSUMPTION + " (max leverage)"),
            "DOGE": Sourced(hl(10), ASSUMPTION + " (max leverage)"),
            "ALT": Sourced(hl(3), SRC_HL_DOCS + ": max leverage ranges 3x-40x, MMR up to 16.7%"),
        },
        Sourced("hyperliquid", SRC_DOMAIN),
        {
            "style": Sourced("hyperliquid", SRC_HL_DOCS),
            "clearance_fee": Sourced(0, SRC_HL_DOCS + ": no clearance fee"),
            "fund_structure": Sourced("vault", SRC_HL_DOCS + ": backstop liquidator vault (HLP), no insurance fund"),
            "fund_seed": Sourced(money_to_units("100000000"), ASSUMPTION + " (vault capital)"),
            "adl_trigger": Sourced("negative_equity", SRC_HL_DOCS + ": account or isolated position value negative"),
            "adl_ranking": Sourced("hyperliquid", SRC_HL_DOCS + ": ranked by unrealized PnL and leverage"),
            "adl_price": Sourced("previous_mark", SRC_HL_DOCS + ": closed at the previous oracle/mark price"),
            "chunk_threshold": Sourced(money_to_units("100000"), SRC_HL_DOCS + ": above 100,000 USDC, 20% at a time"),
            "chunk_fraction": Sourced(rate_to_units("0.2"), SRC_HL_DOCS),
            "chunk_cooldown_ns": Sourced(30 * SECOND_NS, SRC_HL_DOCS + ": 30 s cooldown"),
            "backstop_fraction": Sourced((2, 3), SRC_HL_DOCS + ": backstop below 2/3 of maintenance margin"),
            "liquidator_orders_per_s": Sourced(50, ASSUMPTION),
            "liquidator_notional_per_s": Sourced(money_to_units("5000000"), ASSUMPTION),
        },
        Sourced(3 * SECOND_NS, SRC_HL_DOCS + ": oracle prices are published every 3 seconds"),
    )


def _bybit() -> VenueProfile:
    btc = _tiers([("2000000", "0.005", 100), ("4000000", "0.01", 50), ("6000000", "0.015", 33), (None, "0.02", 25)])
    alt = _tiers([("200000", "0.01", 50), ("400000", "0.02", 25), ("1000000", "0.05", 10), (None, "0.1", 5)])
    return VenueProfile(
        "bybit",
        Sourced(Decimal("0.0002"), "Bybit derivatives fee schedule, non-VIP (as commonly published; not verified offline)"),
        Sourced(Decimal("0.00055"), "Bybit derivatives fee schedule, non-VIP (as commonly published; not verified offline)"),
        {
            "BTC": Sourced(btc, ASSUMPTION + " (risk-limit table)"),
            "ETH": Sourced(btc, ASSUMPTION),
            "SOL": Sourced(alt, ASSUMPTION),
            "DOGE": Sourced(alt, ASSUMPTION),
            "ALT": Sourced(alt, ASSUMPTION),
        },
        Sourced("binance", ASSUMPTION + " (median-of-prices mark like Binance)"),
        {
            "style": Sourced("binance", SRC_BYBIT_ADL + ": the system takes over positions it cannot close"),
            "clearance_fee": Sourced(0, ASSUMPTION + " (remaining margin goes to the fund instead)"),
            "fund_structure": Sourced("shared", SRC_BYBIT_POOLS),
            "fund_seed": Sourced(money_to_units("4000000"), SRC_BYBIT_POOLS + ": pools start at $2M-$8M"),
            "adl_trigger": Sourced("drawdown", SRC_BYBIT_ADL + "; " + SRC_BYBIT_POOLS),
            "drawdown_threshold": Sourced(rate_to_units("0.3"), SRC_BYBIT_POOLS),
            "drawdown_window_ns": Sourced(8 * 3600 * SECOND_NS, SRC_BYBIT_ADL + ": past 8 hours"),
            "adl_ranking": Sourced("bitmex", SRC_BYBIT_ADL + ": ranked by profit and effective leverage"),
            "adl_price": Sourced("bankruptcy", SRC_BYBIT_ADL + ": at the bankruptcy price of the liquidated order"),
            "liquidator_orders_per_s": Sourced(50, ASSUMPTION),
            "liquidator_notional_per_s": Sourced(money_to_units("2000000"), ASSUMPTION),
        },
    )


def _okx() -> VenueProfile:
    btc = _tiers([("500000", "0.004", 100), ("5000000", "0.006", 50), ("20000000", "0.01", 25), (None, "0.02", 10)])
    alt = _tiers([("50000", "0.01", 50), ("500000", "0.02", 20), ("2000000", "0.05", 10), (None, "0.1", 5)])
    return VenueProfile(
        "okx",
        Sourced(Decimal("0.0002"), "OKX fee schedule, regular user (as commonly published; not verified offline)"),
        Sourced(Decimal("0.0005"), "OKX fee schedule, regular user (as commonly published; not verified offline)"),
        {
            "BTC": Sourced(btc, ASSUMPTION),
            "ETH": Sourced(btc, ASSUMPTION),
            "SOL": Sourced(alt, ASSUMPTION),
            "DOGE": Sourced(alt, ASSUMPTION),
            "ALT": Sourced(alt, ASSUMPTION),
        },
        Sourced("binance", ASSUMPTION),
        {
            "style": Sourced("binance", ASSUMPTION + " (partial liquidation through the book)"),
            "clearance_fee": Sourced(0, ASSUMPTION),
            "fund_structure": Sourced("per_symbol", ASSUMPTION),
            "fund_seed": Sourced(money_to_units("10000000"), ASSUMPTION),
            "adl_trigger": Sourced("drawdown", SRC_OKX_MIRROR + ": fund down >= 30% from its 8 h peak, or insufficient"),
            "drawdown_threshold": Sourced(rate_to_units("0.3"), SRC_OKX_MIRROR),
            "drawdown_window_ns": Sourced(8 * 3600 * SECOND_NS, SRC_OKX_MIRROR),
            "adl_ranking": Sourced("bitmex", ASSUMPTION + " (profit x leverage ranking)"),
            "adl_price": Sourced("mark", SRC_OKX_MIRROR + ": matched at the mark price"),
            "liquidator_orders_per_s": Sourced(50, ASSUMPTION),
            "liquidator_notional_per_s": Sourced(money_to_units("2000000"), ASSUMPTION),
        },
    )


def _bitmex() -> VenueProfile:
    btc = _tiers([("1000000", "0.0035", 100), ("10000000", "0.0085", 50), (None, "0.02", 25)])
    alt = _tiers([("100000", "0.01", 50), ("1000000", "0.03", 20), (None, "0.1", 5)])
    return VenueProfile(
        "bitmex",
        Sourced(Decimal("0.0002"), ASSUMPTION + " (maker fee)"),
        Sourced(Decimal("0.00075"), ASSUMPTION + " (taker fee)"),
        {
            "BTC": Sourced(btc, ASSUMPTION),
            "ETH": Sourced(alt, ASSUMPTION),
            "SOL": Sourced(alt, ASSUMPTION),
            "DOGE": Sourced(alt, ASSUMPTION),
            "ALT": Sourced(alt, ASSUMPTION),
        },
        Sourced("binance", ASSUMPTION + " (fair price marking)"),
        {
            "style": Sourced("takeover", SRC_BITMEX + ": the engine takes over at the bankruptcy price"),
            "clearance_fee": Sourced(0, ASSUMPTION + " (remaining margin goes to the fund)"),
            "fund_structure": Sourced("shared", ASSUMPTION),
            "fund_seed": Sourced(money_to_units("100000000"), ASSUMPTION),
            "adl_trigger": Sourced("insufficient", SRC_BITMEX),
            "adl_ranking": Sourced("bitmex", SRC_BITMEX),
            "adl_price": Sourced("bankruptcy", SRC_BITMEX),
            "liquidator_orders_per_s": Sourced(50, ASSUMPTION),
            "liquidator_notional_per_s": Sourced(money_to_units("2000000"), ASSUMPTION),
        },
    )


PROFILES: dict[str, VenueProfile] = {p.name: p for p in (_binance(), _bybit(), _okx(), _hyperliquid(), _bitmex())}


def profile(name: str) -> VenueProfile:
    """A venue profile by name; the error lists the known ones."""
    try:
        return PROFILES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown venue {name!r}; known venues: {sorted(PROFILES)}") from None


def build(
    profile_name: str,
    perps: list[tuple[str, str, str]],
    spots: list[Instrument] | None = None,
    collateral: list[CollateralAsset] | None = None,
    debug: bool = False,
    engine: str = "batched",
    journal: bool = True,
    loan_terms: LoanTerms | None = None,
    **liquidation_overrides: object,
) -> Venue:
    """A venue under one profile, with prices, funding and its risk engine attached.

    ``perps`` are ``(symbol, tick, lot)``; each gets the profile's fees, the margin tiers of
    its base asset, the profile's mark rule, an index fed by one external source named
    ``"external"`` (see :meth:`Venue.feed_index`), and the profile's funding rule.
    Collateral defaults to USDT at par. ``engine`` is ``"batched"`` (arrays) or
    ``"reference"`` (the per-account Python engine it is tested against); the engine is
    ``venue.risk`` and runs in every :meth:`Venue.step`.
    """
    from cascadelab.liquidation import engine_class

    p = profile(profile_name)
    specs = []
    for symbol, tick, lot in perps:
        inst = perpetual(symbol, tick, lot, maker=str(p.maker_fee.value), taker=str(p.taker_fee.value))
        specs.append(PerpSpec(inst, p.tiers_for(inst.base)))
    coll = collateral or [CollateralAsset.of("USDT", "1", fixed("1"))]
    ch = ClearingHouse(specs, spots or [], coll, loan_terms=loan_terms, journal=journal)
    venue = Venue(ch, debug=debug)
    venue.price_interval_ns = int(p.price_interval_ns.value)
    for spec in specs:
        venue.add_perp_market(spec.instrument.symbol, {"external": Fraction(1)}, rule=p.mark_rule.value)
    venue.attach_risk(engine_class(engine)(venue, p.liquidation_config(**liquidation_overrides)))
    return venue
