"""The scenario schema: every input of a run, typed and validated (pydantic, unknown keys refused).

A scenario is a TOML file (built-ins live in ``cascadelab/data/scenarios``). Sections:

* ``[run]``: seed, duration, step, the wall-clock label of market time 0;
* ``[venue]``: profile (binance, bybit, okx, hyperliquid, bitmex), insurance fund, the
  liquidator's throughput, debug mode;
* ``[[instruments]]``: perpetuals and spot books with tick, lot, start price, prior daily
  volatility;
* ``[collateral.ASSET]``: ratio and valuation source (internal book, external index,
  redemption, a blend, a fixed price, an optional floor);
* ``[lending]``: loan-to-value limits and lending pools;
* participants: ``[population]`` (leveraged traders), ``[loopers]``, ``[noise]``,
  ``[news_sellers]``, ``[[makers]]``, ``[[arbitrageurs]]``, ``[[funds]]``;
* ``[world]``: news, external price paths (knots relative to the first news), outages.

Times in the file are seconds (``*_s``) or milliseconds (``*_ms``); money in quote units.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Strict(BaseModel):
    """Base: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class RunSection(Strict):
    """Clock and seed."""

    seed: int = 1
    duration_s: float = Field(7200.0, gt=0)
    step_ms: int = Field(100, gt=0)
    start_label: str = "2025-10-10T19:55:00Z"  # wall-clock label of market time 0 (for reports)


class VenueSection(Strict):
    """The venue under one profile; liquidation overrides."""

    profile: Literal["binance", "bybit", "okx", "hyperliquid", "bitmex"] = "binance"
    insurance_fund: float | None = Field(None, ge=0)  # quote units; None: the profile's
    liquidator_orders_per_s: int | None = Field(None, ge=1)
    liquidator_notional_per_s: float | None = Field(None, ge=0)
    adl_ranking: Literal["binance", "bitmex", "hyperliquid", "pnl_pct", "pro_rata", "water_filling"] | None = None
    debug: bool = False


class InstrumentSection(Strict):
    """One perpetual or spot book."""

    symbol: str
    kind: Literal["perp", "spot"]
    base: str | None = None  # spot: the base asset (perpetuals: from the symbol)
    quote: str = "USDT"
    tick: str
    lot: str
    price: float = Field(gt=0)  # start price (quote per base)
    daily_sigma: float = Field(0.03, gt=0)  # prior daily volatility the participants know


class CollateralSection(Strict):
    """How the venue values one collateral asset."""

    ratio: float = Field(ge=0, le=1)
    source: Literal["fixed", "book", "index", "redemption", "blend"]
    price: float | None = Field(None, gt=0)  # fixed
    book: str | None = None  # book: the spot book's symbol
    rate: float | None = Field(None, gt=0)  # redemption: units of the base asset per token
    base_asset: str | None = None  # redemption: the asset whose index it redeems into
    blend_book: float | None = Field(None, ge=0, le=1)  # blend: weight of the book (the rest: the index)
    floor: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _needs(self) -> CollateralSection:
        need = {"fixed": ["price"], "book": ["book"], "redemption": ["rate", "base_asset"], "blend": ["book", "blend_book"]}
        missing = [f for f in need.get(self.source, []) if getattr(self, f) is None]
        if missing:
            raise ValueError(f"source {self.source!r} needs {missing}")
        return self


class LendingSection(Strict):
    """Borrowing limits and the lending pools (quote units of each asset)."""

    initial_ltv: float = Field(0.65, gt=0, lt=1)
    liquidation_ltv: float = Field(0.91, gt=0, le=1)
    pools: dict[str, float] = Field(default_factory=lambda: {"USDT": 5_000_000_000.0})

    @model_validator(mode="after")
    def _order(self) -> LendingSection:
        if self.liquidation_ltv <= self.initial_ltv:
            raise ValueError("liquidation_ltv must be above initial_ltv")
        return self


class PopulationSection(Strict):
    """Leveraged traders (see cascadelab.agents.population.TraderParams)."""

    accounts: int = Field(100_000, ge=0)
    symbols: dict[str, float]  # perpetual -> share of accounts
    long_share: float = Field(0.87, ge=0, le=1)
    leverage_median: float = Field(5.0, ge=1)
    leverage_sigma: float = Field(0.7, ge=0)
    leverage_max: float = Field(100.0, ge=1)
    margin_median: float = Field(2_000.0, gt=0)
    margin_sigma: float = Field(1.2, ge=0)
    isolated_share: float = Field(0.2, ge=0, le=1)
    collateral: dict[str, float] = Field(default_factory=lambda: {"USDT": 1.0})
    behaviours: dict[Literal["hold", "defend", "momentum", "panic", "dip_buyer"], float] = Field(
        default_factory=lambda: {"hold": 0.5, "defend": 0.25, "momentum": 0.1, "panic": 0.1, "dip_buyer": 0.05}
    )
    defend_ratio: tuple[float, float] = (0.6, 0.9)
    add_margin_share: float = Field(0.5, ge=0, le=1)
    reserve_multiple: tuple[float, float] = (0.2, 1.5)
    momentum_drop: tuple[float, float] = (0.02, 0.08)
    momentum_short_share: float = Field(0.3, ge=0, le=1)
    panic_delay_median_s: float = Field(600.0, gt=0)
    panic_delay_sigma: float = Field(1.0, ge=0)
    dip_depth: tuple[float, float] = (0.1, 0.9)
    entry_factors: list[float] = Field(default_factory=lambda: [0.94, 0.96, 0.98, 1.0, 1.01], min_length=1)
    review_s: float = Field(30.0, gt=0)
    cooldown_s: float = Field(60.0, ge=0)
    latency_ms: float = Field(150.0, ge=0)
    jitter_ms: float = Field(250.0, ge=0)

    @field_validator("symbols", "collateral", "behaviours")
    @classmethod
    def _shares(cls, v: dict) -> dict:
        if not v or any(x < 0 for x in v.values()) or abs(sum(v.values()) - 1) > 1e-6:
            raise ValueError("shares must be >= 0 and sum to 1")
        return v


class LoopersSection(Strict):
    """Looping accounts (see cascadelab.agents.loopers.LooperParams)."""

    accounts: int = Field(1_000, ge=0)
    token: str = "USDe"
    book: str = "USDEUSDT"
    seeds: dict[str, float] = Field(default_factory=lambda: {"BTC": 0.4, "wBETH": 0.4, "BNSOL": 0.2})
    seed_value_median: float = Field(200_000.0, gt=0)
    seed_value_sigma: float = Field(1.0, ge=0)
    loops: tuple[int, int] = (2, 5)
    target_ltv: tuple[float, float] = (0.45, 0.6)
    unwind_ltv: tuple[float, float] = (0.7, 0.85)
    unwind_fraction: float = Field(0.3, gt=0, le=1)
    review_s: float = Field(5.0, gt=0)
    prebuilt_loops: tuple[int, int] = (0, 0)
    max_slippage_bps: float = Field(20.0, ge=0)
    panic_slippage_bps: float = Field(500.0, ge=0)
    mint_price: float = Field(1.0, gt=0)


class NoiseSection(Strict):
    """Noise traders."""

    accounts: int = Field(1_000, ge=0)
    symbols: list[str]
    rate_per_min: float = Field(0.5, ge=0)
    notional_median: float = Field(2_000.0, gt=0)
    notional_sigma: float = Field(1.0, ge=0)
    marketable_share: float = Field(0.5, ge=0, le=1)
    passive_offset_bps: float = Field(5.0, ge=0)
    deposit: float = Field(50_000.0, gt=0)


class NewsSellersSection(Strict):
    """Accounts that sell after the news, each after its own delay."""

    accounts: int = Field(500, ge=0)
    symbols: list[str]
    delay_median_s: float = Field(120.0, gt=0)
    delay_sigma: float = Field(1.0, ge=0)
    short_notional: float = Field(20_000.0, gt=0)
    deposit: float = Field(10_000.0, gt=0)


class MakerGroup(Strict):
    """``count`` market makers on one instrument (see cascadelab.agents.market_maker.MakerParams)."""

    symbol: str
    count: int = Field(1, ge=1)
    capital: float = Field(5_000_000.0, gt=0)
    level_notional: float = Field(50_000.0, gt=0)
    levels: int = Field(10, ge=1)
    level_step_bps: float = Field(8.0, gt=0)
    gamma: float = Field(0.02, gt=0)
    k: float = Field(0.5, gt=0)
    horizon_s: float = Field(60.0, gt=0)
    min_half_spread_bps: float = Field(1.0, ge=0)
    inventory_limit: float = Field(1_000_000.0, gt=0)
    requote_ms: int = Field(1_000, gt=0)
    requote_move_bps: float = Field(3.0, gt=0)
    loss_window_s: float = Field(60.0, gt=0)
    loss_limit: float = Field(50_000.0, gt=0)
    calm_loss: float = Field(5_000.0, ge=0)
    one_sided_share: float = Field(0.9, gt=0.5, le=1)
    one_sided_min_fills: int = Field(30, ge=1)
    calm_one_sided_share: float = Field(0.7, gt=0.5, le=1)
    vol_spike_ratio: float = Field(8.0, gt=1)
    calm_vol_ratio: float = Field(2.0, gt=0)
    widen_slope: float = Field(1.0, ge=0)
    anchor_external: bool = True
    stress_symbol: str | None = None  # a desk-wide risk signal: this instrument's outside volatility counts too
    leverage: int = Field(2, ge=1)  # perpetuals: the leverage its resting quotes are margined at
    base_inventory: float = Field(0.0, ge=0)  # spot books: base units held (and aimed at)
    hedge_symbol: str | None = None  # a perpetual shorted against the spot holding (seed 002)
    hedge_leverage: int = Field(5, ge=1)
    latency_ms: float = Field(5.0, ge=0)
    jitter_ms: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _calm(self) -> MakerGroup:
        if (self.calm_vol_ratio >= self.vol_spike_ratio or self.calm_loss >= self.loss_limit
                or self.calm_one_sided_share >= self.one_sided_share):  # fmt: skip
            raise ValueError("calm thresholds must be below the triggers (hysteresis)")
        return self


class ArbGroup(Strict):
    """``count`` arbitrageurs on one instrument."""

    symbol: str
    count: int = Field(1, ge=1)
    capital: float = Field(1_000_000.0, gt=0)
    tokens: float = Field(0.0, ge=0)  # spot: tokens held at the start (to sell when the venue is rich)
    threshold_bps: float = Field(30.0, gt=0)
    close_bps: float = Field(5.0, ge=0)
    clip_notional: float = Field(200_000.0, gt=0)
    inventory_limit: float = Field(5_000_000.0, gt=0)
    transfer_delay_s: float = Field(600.0, ge=0)
    rest: bool = True  # rest a bid and an ask where it stands ready to trade
    rest_bps: float | None = Field(None, gt=0)  # how far from the outside price (default: threshold_bps)
    leverage: int = Field(5, ge=1)
    latency_ms: float = Field(20.0, ge=0)


class FundGroup(Strict):
    """``count`` hedged funds: long majors, short an altcoin."""

    count: int = Field(1, ge=1)
    longs: dict[str, float]
    hedge_symbol: str
    hedge_ratio: float = Field(1.0, gt=0)
    leverage: int = Field(10, ge=1)
    margin: float = Field(700_000.0, gt=0)
    review_s: float = Field(30.0, gt=0)
    rehedge_below: float = Field(0.5, gt=0, le=1)
    max_spread_bps: float = Field(100.0, gt=0)


class NewsItem(Strict):
    """A public information event."""

    at_s: float = Field(ge=0)
    name: str
    severity: float = Field(ge=0, le=1)


class PathSection(Strict):
    """An external price path: piecewise log-linear knots (seconds after the first news, factor of the start price).

    Before the first knot the factor is the first knot's; after the last, the last's. A
    seeded Brownian wiggle with the instrument's prior daily volatility is added (``noise``
    scales it; 0 for none). ``of`` derives the path from another (e.g. wBETH = 1.07 x ETH).
    """

    knots: list[tuple[float, float]] = Field(default_factory=lambda: [(0.0, 1.0)], min_length=1)
    noise: float = Field(1.0, ge=0)
    of: str | None = None
    ratio: float = Field(1.0, gt=0)
    start: float | None = Field(None, gt=0)  # the start price (default: the instrument's price)

    @field_validator("knots")
    @classmethod
    def _knots(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if any(f <= 0 for _, f in v):
            raise ValueError("knot factors must be > 0")
        if any(b[0] <= a[0] for a, b in zip(v, v[1:], strict=False)):
            raise ValueError("knot times must increase")
        return v


class OutageSection(Strict):
    """An API outage window for groups of participants."""

    start_s: float = Field(ge=0)  # after the first news
    end_s: float = Field(gt=0)
    groups: list[Literal["retail", "loopers", "makers", "arbitrageurs", "funds", "noise", "news_sellers"]]
    mode: Literal["reject", "delay"] = "reject"
    delay_ms: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _window(self) -> OutageSection:
        if self.end_s <= self.start_s:
            raise ValueError("end_s must be after start_s")
        return self


class WorldSection(Strict):
    """The exogenous world: news, external price paths, outages."""

    news: list[NewsItem] = Field(default_factory=list)
    paths: dict[str, PathSection] = Field(default_factory=dict)  # instrument symbol or asset -> path
    outages: list[OutageSection] = Field(default_factory=list)
    feed_every_ms: int = Field(1_000, gt=0)
    reference_s: float | None = Field(None, ge=0)  # time 0 of the paths' knots and of "pre-news" (default: the first news)


class CheckSection(Strict):
    """What ``cascadelab check`` measures (instrument choices; the bands are the event's)."""

    tracked: str = "SOLUSDT"  # the "major token" whose ±1% depth the sources tracked
    majors: list[str] = Field(default_factory=lambda: ["BTCUSDT"])
    altcoins: list[str] = Field(default_factory=lambda: ["ALT1USDT", "ALT2USDT"])
    token: str = "USDEUSDT"


class Scenario(Strict):
    """A whole scenario (see the module docstring)."""

    name: str
    description: str = ""
    run: RunSection = Field(default_factory=RunSection)
    venue: VenueSection = Field(default_factory=VenueSection)
    instruments: list[InstrumentSection] = Field(min_length=1)
    collateral: dict[str, CollateralSection]
    lending: LendingSection = Field(default_factory=LendingSection)
    population: PopulationSection | None = None
    loopers: LoopersSection | None = None
    noise: NoiseSection | None = None
    news_sellers: NewsSellersSection | None = None
    makers: list[MakerGroup] = Field(default_factory=list)
    arbitrageurs: list[ArbGroup] = Field(default_factory=list)
    funds: list[FundGroup] = Field(default_factory=list)
    world: WorldSection = Field(default_factory=WorldSection)
    check: CheckSection = Field(default_factory=CheckSection)

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        symbols = [i.symbol for i in self.instruments]
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"instrument symbols repeat: {symbols}")
        perps = {i.symbol for i in self.instruments if i.kind == "perp"}
        spots = {i.symbol for i in self.instruments if i.kind == "spot"}
        assets = set(self.collateral)

        def need(where: str, names: object, allowed: set[str]) -> None:
            bad = sorted(set(names) - allowed)  # type: ignore[arg-type]
            if bad:
                raise ValueError(f"{where}: unknown {bad}; allowed: {sorted(allowed)}")

        for i in self.instruments:
            if i.kind == "spot" and not i.base:
                raise ValueError(f"instruments: spot {i.symbol!r} needs a base asset")
        for a, c in self.collateral.items():
            if c.book is not None:
                need(f"collateral.{a}.book", [c.book], spots)
        if self.population:
            need("population.symbols", self.population.symbols, perps)
            need("population.collateral", self.population.collateral, assets)
        if self.loopers:
            need("loopers.book", [self.loopers.book], spots)
            need("loopers.seeds", self.loopers.seeds, assets)
            need("loopers.token", [self.loopers.token], assets)
        for group in ("noise", "news_sellers"):
            sec = getattr(self, group)
            if sec:
                need(f"{group}.symbols", sec.symbols, perps | spots)
        for j, m in enumerate(self.makers):
            need(f"makers.{j}.symbol", [m.symbol], perps | spots)
            if m.hedge_symbol:
                need(f"makers.{j}.hedge_symbol", [m.hedge_symbol], perps)
            if m.stress_symbol:
                need(f"makers.{j}.stress_symbol", [m.stress_symbol], perps | spots)
        for j, a in enumerate(self.arbitrageurs):
            need(f"arbitrageurs.{j}.symbol", [a.symbol], perps | spots)
        for j, f in enumerate(self.funds):
            need(f"funds.{j}.longs", f.longs, perps)
            need(f"funds.{j}.hedge_symbol", [f.hedge_symbol], perps)
        need("world.paths", self.world.paths, set(symbols) | assets)
        need("check.tracked", [self.check.tracked], perps | spots)
        return self


__all__ = ["Scenario"]
