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

Validation is complete before anything is built: every number is finite (no ``nan`` or
``inf``), every amount lies within bounds the integer units can hold (money up to
:data:`MONEY_MAX` quote units, prices up to :data:`PRICE_MAX`, times up to
:data:`MAX_DURATION_S`), ranges ``[low, high]`` have ``low <= high``, share tables are
>= 0 and sum to 1 (within :data:`SHARE_TOLERANCE`; they are not normalised), ``true`` /
``false`` are not numbers, and every name that refers to an instrument, an asset or a
path exists. An error names the key path (``world.paths.BTCUSDT.knots.1.1``, the same
form ``--set`` takes) and what is allowed.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, field_validator, model_validator

SETTLEMENT_ASSET = "USDT"
"""The venue's settlement asset: perpetuals are margined in it, spot books are quoted in it, loopers borrow it."""
MONEY_MAX = 1e10
"""Largest money amount (quote units) a field may hold: money is counted in int64 units of 1e-8."""
PRICE_MAX = 1e9
"""Largest price (quote units per base unit)."""
MAX_DURATION_S = 7 * 86_400.0
"""Longest run and longest time a field may hold: 7 days."""
MAX_MS = MAX_DURATION_S * 1_000
MAX_ACCOUNTS = 10_000_000
MAX_COUNT = 1_000
"""Most agents in one maker, arbitrageur or fund group."""
MAX_BPS = 10_000.0
MAX_LEVERAGE = 1_000
MAX_SIGMA = 5.0
"""Largest log-normal sigma (margins, delays, notionals)."""
TAIL_SIGMAS = 6.0
"""Log-normal draws are checked at ``median x exp(6 sigma)``: the far tail must fit the units too."""
MAX_STEPS = 2_000_000
"""Most simulation steps in one run (the per-step tables are held in memory)."""
MAX_FEED_POINTS = 10_000_000
"""Most points of one external price path."""
MAX_STEP_MS = 1_000
"""The pre-open (:data:`PRE_OPEN_S`) needs a step at least every second to open every book."""
PRE_OPEN_S = 3.0
"""Market time of the pre-open (the same as ``cascadelab.scenario.build.PRE_OPEN_S``)."""
MAX_PATH_FACTOR = 100.0
MAX_LATENCY_MS = 10_000.0
"""Longest order latency or jitter (ms)."""
SHARE_TOLERANCE = 1e-9

Loc = tuple[str | int, ...]


class Invalid(ValueError):
    """A validation error at ``loc``, a key path relative to the model that raises it.

    :func:`cascadelab.scenario.load.load` joins it to the model's own location, so the
    message names the full key path (``instruments.3.symbol``).
    """

    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = tuple(loc)


def _not_bool(v: Any) -> Any:
    """A number as TOML writes it: true/false and quoted strings ("0.02") are not numbers."""
    if isinstance(v, bool):
        raise ValueError(f"must be a number, not {str(v).lower()}")
    if isinstance(v, str):
        raise ValueError(f"must be a number, got the string {v!r}")
    return v


def _ordered(v: tuple[Any, Any]) -> tuple[Any, Any]:
    if v[0] > v[1]:
        raise ValueError(f"must be [low, high] with low <= high, got [{v[0]}, {v[1]}]")
    return v


def _num(x: float) -> str:
    """A number as people write it: 10,000,000,000 or 0.75 or 1e-06."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e16:
        return f"{int(x):,}"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:g}"


def _units_of(step: str, what: str) -> Any:
    """An AfterValidator: the number is a whole multiple of ``step`` (the integer units it is counted in)."""
    unit = Decimal(step)

    def check(v: float) -> float:
        if (Decimal(repr(v)) / unit) % 1:
            raise ValueError(f"must be a whole multiple of {step} ({what}), got {v!r}")
        return v

    return AfterValidator(check)


Float = Annotated[float, BeforeValidator(_not_bool)]
Int = Annotated[int, BeforeValidator(_not_bool)]
Money = Annotated[float, BeforeValidator(_not_bool), Field(le=MONEY_MAX), _units_of("1e-8", "money is counted in units of 1e-8")]
Units = Annotated[
    float, BeforeValidator(_not_bool), Field(ge=0, le=MONEY_MAX), _units_of("1e-8", "assets are counted in units of 1e-8")
]
Seconds = Annotated[float, BeforeValidator(_not_bool), Field(le=MAX_DURATION_S)]
Millis = Annotated[float, BeforeValidator(_not_bool), Field(le=MAX_MS)]
Latency = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=MAX_LATENCY_MS)]
Bps = Annotated[float, BeforeValidator(_not_bool), Field(le=MAX_BPS)]
Share = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=1)]
Sigma = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, le=MAX_SIGMA)]
Ratio = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, le=1e4)]
Leverage = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=MAX_LEVERAGE)]
Count = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=MAX_COUNT)]
Accounts = Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=MAX_ACCOUNTS)]


def _pair(what: str) -> Any:
    def check(v: Any) -> Any:
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise ValueError(f"must be {what}, got {v!r}")
        return v

    return BeforeValidator(check)


def _range(lo: dict[str, float], hi: dict[str, float] | None = None, kind: type = float) -> Any:
    """A ``[low, high]`` pair with ``low <= high``, each item within the bounds ``lo`` (and ``hi``) give."""
    item = Annotated[kind, BeforeValidator(_not_bool), Field(**lo, **(hi or {}))]  # type: ignore[valid-type]
    return Annotated[tuple[item, item], _pair("[low, high] (two numbers)"), AfterValidator(_ordered)]


def _name_ok(v: str) -> bool:
    return bool(v) and not any(c.isspace() or c in ".=/\\\"'[]" for c in v)


def _check_shares(v: dict[Any, float]) -> dict[Any, float]:
    if not v:
        raise ValueError("needs at least one entry (shares that sum to 1)")
    total = math.fsum(v.values())
    if abs(total - 1) > SHARE_TOLERANCE:
        raise ValueError(f"shares must be >= 0 and sum to 1 (within {SHARE_TOLERANCE:g}), they sum to {total:.10g}")
    return v


def _check_unique(v: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    for j, x in enumerate(v):
        if x in seen:
            raise Invalid((j,), f"{x!r} is listed twice")
        seen.add(x)
    return v


def _tail(median: float, sigma: float) -> float:
    return median * math.exp(TAIL_SIGMAS * sigma)


class Strict(BaseModel):
    """Base: unknown keys are errors; floats must be finite (no ``nan``, ``inf``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RunSection(Strict):
    """Clock and seed."""

    seed: Int = Field(1, ge=0, le=2**63 - 1)
    duration_s: Seconds = 7200.0
    step_ms: Int = Field(100, gt=0)
    start_label: str = "2025-10-10T19:55:00Z"  # wall-clock label of market time 0 (for reports)

    @field_validator("duration_s")
    @classmethod
    def _duration(cls, v: float) -> float:
        if v <= PRE_OPEN_S:
            raise ValueError(f"must be > {PRE_OPEN_S:g} (the pre-open of {PRE_OPEN_S:g} s comes first), got {v!r}")
        return v

    @field_validator("step_ms")
    @classmethod
    def _step(cls, v: int) -> int:
        if v > MAX_STEP_MS:
            raise ValueError(
                f"must be <= {MAX_STEP_MS:,} ms: the {PRE_OPEN_S:g} s pre-open needs a step at least every second "
                f"to open every book and price every collateral, got {v!r}"
            )
        return v

    @field_validator("start_label")
    @classmethod
    def _label(cls, v: str) -> str:
        try:
            dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"must be an ISO 8601 date-time such as '2025-10-10T19:55:00Z', got {v!r}") from None
        return v

    @model_validator(mode="after")
    def _steps(self) -> RunSection:
        if (self.duration_s - PRE_OPEN_S) * 1000 < self.step_ms:
            raise Invalid(
                ("duration_s",),
                f"{_num(self.duration_s)} s leaves less than one step of {_num(self.step_ms)} ms after the "
                f"{PRE_OPEN_S:g} s pre-open: nothing would be recorded; lengthen duration_s or shorten step_ms",
            )
        steps = self.duration_s * 1000 / self.step_ms
        if steps > MAX_STEPS:
            raise Invalid(
                ("step_ms",),
                f"duration_s / step_ms = {_num(math.ceil(steps))} steps; at most {_num(MAX_STEPS)} "
                "(every step is recorded in memory): raise step_ms or shorten duration_s",
            )
        return self


class VenueSection(Strict):
    """The venue under one profile; liquidation overrides."""

    profile: Literal["binance", "bybit", "okx", "hyperliquid", "bitmex"] = "binance"
    insurance_fund: Money | None = Field(None, ge=0)  # quote units per fund (one per perpetual on okx); None: the profile's
    liquidator_orders_per_s: Int | None = Field(None, ge=1, le=1_000_000)
    # quote units per second the liquidator may unwind from its backlog; 0 = no notional limit (only the order rate
    # limits it); absent = the profile's figure
    liquidator_notional_per_s: Money | None = Field(
        None, ge=0, description="quote per second the liquidator unwinds; 0 = no notional limit; absent = the profile's"
    )
    adl_ranking: Literal["binance", "bitmex", "hyperliquid", "pnl_pct", "pro_rata", "water_filling"] | None = None
    debug: StrictBool = False


class InstrumentSection(Strict):
    """One perpetual or spot book.

    Perpetuals are USDT-margined: the symbol is ``<BASE>USDT`` and gives the base asset.
    Spot books name their base asset (a collateral asset) and are quoted in USDT. ``tick``
    and ``lot`` are decimal strings; one tick times one lot must be a whole number of money
    units (1e-8), and the start price at least one tick.
    """

    symbol: str
    kind: Literal["perp", "spot"]
    base: str | None = None  # spot: the base asset (perpetuals: from the symbol)
    quote: str = SETTLEMENT_ASSET
    tick: str
    lot: str
    price: Float = Field(gt=0, le=PRICE_MAX)  # start price (quote per base)
    daily_sigma: Float = Field(0.03, gt=0, le=1)  # prior daily volatility the participants know

    @field_validator("symbol", "base")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _name_ok(v):
            raise ValueError(f"must be a non-empty name without spaces, dots, quotes, brackets, slashes or '=', got {v!r}")
        return v

    @field_validator("quote")
    @classmethod
    def _quote(cls, v: str) -> str:
        if v != SETTLEMENT_ASSET:
            raise ValueError(
                f"must be {SETTLEMENT_ASSET!r}, the settlement asset (only {SETTLEMENT_ASSET}-margined perpetuals "
                f"and {SETTLEMENT_ASSET}-quoted spot books are supported), got {v!r}"
            )
        return v

    @field_validator("tick", "lot", mode="before")
    @classmethod
    def _string(cls, v: Any) -> Any:
        if isinstance(v, int | float) and not isinstance(v, bool):
            raise ValueError(f'must be a decimal string in quotes such as "{v}" (floats are inexact), got the number {v!r}')
        return v

    @field_validator("tick", "lot")
    @classmethod
    def _decimal(cls, v: str) -> str:
        try:
            d = Decimal(v.strip())
        except InvalidOperation:
            d = Decimal("nan")
        if not d.is_finite() or d <= 0:
            raise ValueError(f'must be a decimal string > 0 such as "0.01", got {v!r}')
        if d < Decimal("1e-8") or d > Decimal("1e9"):
            raise ValueError(f"must be within 1e-8 and 1e9, got {v!r}")
        return v.strip()

    @model_validator(mode="after")
    def _units(self) -> InstrumentSection:
        tick, lot = Decimal(self.tick.strip()), Decimal(self.lot.strip())
        if self.kind == "perp":
            base = self.symbol.removesuffix(SETTLEMENT_ASSET)
            if base == self.symbol or not base:
                raise Invalid(
                    ("symbol",),
                    f"a perpetual's symbol is <BASE>{SETTLEMENT_ASSET} (only {SETTLEMENT_ASSET}-margined "
                    f"perpetuals are supported), got {self.symbol!r}",
                )
            if self.base is not None and self.base != base:
                raise Invalid(("base",), f"a perpetual's base asset comes from its symbol ({base!r}); leave base out")
        else:
            if self.base is None:
                raise Invalid(("base",), f'the spot book {self.symbol!r} needs its base asset (base = "...")')
            if self.base == SETTLEMENT_ASSET:
                raise Invalid(("base",), f"the base asset of a spot book cannot be the quote asset {SETTLEMENT_ASSET}")
            if (lot * 10**8) % 1:
                raise Invalid(("lot",), f"a spot lot must be a whole number of 1e-8 units (delivered exactly), got {self.lot!r}")
        if (tick * lot * 10**8) % 1:
            raise Invalid(
                ("tick",),
                f"tick x lot = {tick * lot} must be a whole multiple of the money unit 1e-8 (so that every notional is exact)",
            )
        if self.price < tick:
            raise Invalid(("price",), f"must be at least one tick ({self.tick}), got {self.price:g}")
        if self.price / float(tick) > 1e10:
            raise Invalid(("tick",), f"price / tick = {self.price / float(tick):.3g} ticks; at most 1e10 (raise the tick)")
        if self.price * float(lot) > 1e8:
            raise Invalid(
                ("lot",),
                f"one lot at the start price is worth {self.price * float(lot):.3g} quote units; at most 1e8 (lower the lot)",
            )
        return self

    @property
    def base_asset(self) -> str:
        """The base asset: a spot book's ``base``; a perpetual's symbol without the quote."""
        return self.base if self.kind == "spot" and self.base else self.symbol.removesuffix(SETTLEMENT_ASSET)


class CollateralSection(Strict):
    """How the venue values one collateral asset.

    Each ``source`` reads its own fields: ``fixed``: ``price``; ``book``: ``book``; ``index``:
    the asset's external path; ``redemption``: ``rate`` and ``base_asset``; ``blend``:
    ``book`` and ``blend_book``. ``floor`` applies to every source but ``fixed``.
    """

    ratio: Annotated[Share, _units_of("0.000001", "ratios are counted in millionths")]
    source: Literal["fixed", "book", "index", "redemption", "blend"]
    price: Float | None = Field(None, gt=0, le=PRICE_MAX)  # fixed
    book: str | None = None  # book: the spot book's symbol
    rate: Float | None = Field(None, gt=0, le=1e6)  # redemption: units of the base asset per token
    base_asset: str | None = None  # redemption: the asset whose index it redeems into
    blend_book: Share | None = None  # blend: weight of the book (the rest: the index)
    floor: Float | None = Field(None, gt=0, le=PRICE_MAX)

    @model_validator(mode="after")
    def _needs(self) -> CollateralSection:
        need = {
            "fixed": ["price"],
            "book": ["book"],
            "index": [],
            "redemption": ["rate", "base_asset"],
            "blend": ["book", "blend_book"],
        }
        uses = {k: {*v, "floor"} for k, v in need.items()} | {"fixed": {"price"}}
        for f in need[self.source]:
            if getattr(self, f) is None:
                raise Invalid((f,), f"required with source = {self.source!r} (it needs {need[self.source]})")
        for f in ("price", "book", "rate", "base_asset", "blend_book", "floor"):
            if getattr(self, f) is not None and f not in uses[self.source]:
                users = sorted(k for k, v in uses.items() if f in v)
                raise Invalid((f,), f"not used with source = {self.source!r} (only with {users}); remove it")
        return self


class LendingSection(Strict):
    """Borrowing limits and the lending pools (quote units of each asset)."""

    initial_ltv: Float = Field(0.65, gt=0, lt=1)
    liquidation_ltv: Float = Field(0.91, gt=0, le=1)
    pools: dict[str, Annotated[Money, Field(ge=0)]] = Field(default_factory=lambda: {"USDT": 5_000_000_000.0})

    @model_validator(mode="after")
    def _order(self) -> LendingSection:
        if self.liquidation_ltv <= self.initial_ltv:
            raise Invalid(
                ("liquidation_ltv",),
                f"must be above lending.initial_ltv ({_num(self.initial_ltv)}), got {_num(self.liquidation_ltv)}",
            )
        return self


class PopulationSection(Strict):
    """Leveraged traders (see cascadelab.agents.population.TraderParams)."""

    accounts: Accounts = 100_000
    symbols: dict[str, Share]  # perpetual -> share of accounts
    long_share: Share = 0.87
    leverage_median: Float = Field(5.0, ge=1, le=MAX_LEVERAGE)
    leverage_sigma: Sigma = 0.7
    leverage_max: Float = Field(100.0, ge=1, le=MAX_LEVERAGE)
    margin_median: Money = Field(2_000.0, ge=1)
    margin_sigma: Sigma = 1.2
    isolated_share: Share = 0.2
    collateral: dict[str, Share] = Field(default_factory=lambda: {"USDT": 1.0})
    behaviours: dict[Literal["hold", "defend", "momentum", "panic", "dip_buyer"], Share] = Field(
        default_factory=lambda: {"hold": 0.5, "defend": 0.25, "momentum": 0.1, "panic": 0.1, "dip_buyer": 0.05}  # type: ignore[arg-type]
    )
    defend_ratio: _range({"ge": 0}, {"le": 1}) = (0.6, 0.9)  # type: ignore[valid-type]
    add_margin_share: Share = 0.5
    reserve_multiple: _range({"ge": 0}, {"le": 100}) = (0.2, 1.5)  # type: ignore[valid-type]
    momentum_drop: _range({"gt": 0}, {"lt": 1}) = (0.02, 0.08)  # type: ignore[valid-type]
    momentum_short_share: Share = 0.3
    panic_delay_median_s: Seconds = Field(600.0, gt=0)
    panic_delay_sigma: Sigma = 1.0
    dip_depth: _range({"gt": 0}, {"lt": 1}) = (0.1, 0.9)  # type: ignore[valid-type]
    entry_factors: list[Annotated[Float, Field(ge=0.1, le=10)]] = Field(
        default_factory=lambda: [0.94, 0.96, 0.98, 1.0, 1.01], min_length=1, max_length=100
    )
    review_s: Seconds = Field(30.0, gt=0)
    cooldown_s: Seconds = Field(60.0, ge=0)
    latency_ms: Latency = 150.0
    jitter_ms: Latency = 250.0

    @field_validator("symbols", "collateral", "behaviours")
    @classmethod
    def _shares(cls, v: dict) -> dict:
        return _check_shares(v)

    @model_validator(mode="after")
    def _consistent(self) -> PopulationSection:
        if self.leverage_max < self.leverage_median:
            raise Invalid(
                ("leverage_max",), f"must be >= leverage_median ({_num(self.leverage_median)}), got {_num(self.leverage_max)}"
            )
        tail = _tail(self.margin_median, self.margin_sigma) * max(1.0, self.leverage_max, self.reserve_multiple[1])
        if tail > MONEY_MAX:
            raise Invalid(
                ("margin_median",),
                f"margin_median x exp({TAIL_SIGMAS:g} x margin_sigma) x max(leverage_max, "
                f"reserve_multiple high) = {tail:.3g} quote units; at most {MONEY_MAX:.0e} (the far tail of "
                "the log-normal margins must fit the money units): lower margin_median or margin_sigma",
            )
        if _tail(self.panic_delay_median_s, self.panic_delay_sigma) > 1e9:
            raise Invalid(
                ("panic_delay_sigma",),
                f"panic_delay_median_s x exp({TAIL_SIGMAS:g} x panic_delay_sigma) must be "
                "<= 1e9 s (the far tail of the delays must fit the clock)",
            )
        return self


class LoopersSection(Strict):
    """Looping accounts (see cascadelab.agents.loopers.LooperParams); they borrow USDT."""

    accounts: Accounts = 1_000
    token: str = "USDe"
    book: str = "USDEUSDT"
    seeds: dict[str, Share] = Field(default_factory=lambda: {"BTC": 0.4, "wBETH": 0.4, "BNSOL": 0.2})
    seed_value_median: Money = Field(200_000.0, ge=1)
    seed_value_sigma: Sigma = 1.0
    loops: _range({"ge": 0}, {"le": 100}, int) = (2, 5)  # type: ignore[valid-type]
    target_ltv: _range({"gt": 0}, {"lt": 1}) = (0.45, 0.6)  # type: ignore[valid-type]
    unwind_ltv: _range({"gt": 0}, {"le": 1}) = (0.7, 0.85)  # type: ignore[valid-type]
    unwind_fraction: Float = Field(0.3, gt=0, le=1)
    review_s: Seconds = Field(5.0, gt=0)
    prebuilt_loops: _range({"ge": 0}, {"le": 100}, int) = (0, 0)  # type: ignore[valid-type]
    max_slippage_bps: Bps = Field(20.0, ge=0)
    panic_slippage_bps: Bps = Field(500.0, ge=0)
    mint_price: Float = Field(1.0, gt=0, le=PRICE_MAX)

    @field_validator("seeds")
    @classmethod
    def _shares(cls, v: dict) -> dict:
        return _check_shares(v)

    @model_validator(mode="after")
    def _consistent(self) -> LoopersSection:
        if self.seed_value_median * math.exp(-TAIL_SIGMAS * self.seed_value_sigma) < 1:
            raise Invalid(
                ("seed_value_median",),
                f"seed_value_median x exp(-{TAIL_SIGMAS:g} x seed_value_sigma) must be >= 1 quote unit (the smallest seeds "
                "must still buy some of the seed asset)",
            )
        tail = _tail(self.seed_value_median, self.seed_value_sigma)
        if tail > MONEY_MAX:
            raise Invalid(
                ("seed_value_median",),
                f"seed_value_median x exp({TAIL_SIGMAS:g} x seed_value_sigma) = {tail:.3g} quote units; at most {MONEY_MAX:.0e}",
            )
        if self.prebuilt_loops[1] > self.loops[1]:
            raise Invalid(
                ("prebuilt_loops",),
                f"must not exceed loops ({self.loops[0]}-{self.loops[1]}): a looper never pre-builds more loops than it aims "
                f"for, got up to {self.prebuilt_loops[1]}",
            )
        return self


class NoiseSection(Strict):
    """Noise traders."""

    accounts: Accounts = 1_000
    symbols: Annotated[list[str], AfterValidator(_check_unique)] = Field(min_length=1)
    rate_per_min: Float = Field(0.5, ge=0, le=10_000)
    notional_median: Money = Field(2_000.0, ge=1)
    notional_sigma: Sigma = 1.0
    marketable_share: Share = 0.5
    passive_offset_bps: Bps = Field(5.0, ge=0)
    deposit: Money = Field(50_000.0, ge=1)

    @model_validator(mode="after")
    def _tails(self) -> NoiseSection:
        if _tail(self.notional_median, self.notional_sigma) > MONEY_MAX:
            raise Invalid(
                ("notional_median",),
                f"notional_median x exp({TAIL_SIGMAS:g} x notional_sigma) must be <= {MONEY_MAX:.0e} quote units",
            )
        return self


class NewsSellersSection(Strict):
    """Accounts that sell perpetuals after the news, each after its own delay."""

    accounts: Accounts = 500
    symbols: Annotated[list[str], AfterValidator(_check_unique)] = Field(min_length=1)
    delay_median_s: Seconds = Field(120.0, gt=0)
    delay_sigma: Sigma = 1.0
    short_notional: Money = Field(20_000.0, gt=0)
    deposit: Money = Field(10_000.0, ge=1)

    @model_validator(mode="after")
    def _tails(self) -> NewsSellersSection:
        if _tail(self.delay_median_s, self.delay_sigma) > 1e9:
            raise Invalid(
                ("delay_sigma",),
                f"delay_median_s x exp({TAIL_SIGMAS:g} x delay_sigma) must be <= 1e9 s "
                "(the far tail of the delays must fit the clock)",
            )
        return self


class MakerGroup(Strict):
    """``count`` market makers on one instrument (see cascadelab.agents.market_maker.MakerParams)."""

    symbol: str
    count: Count = 1
    capital: Money = Field(5_000_000.0, ge=1)
    level_notional: Money = Field(50_000.0, gt=0)
    levels: Int = Field(10, ge=1, le=1_000)
    level_step_bps: Bps = Field(8.0, gt=0)
    gamma: Float = Field(0.02, gt=0, le=1e6)
    k: Float = Field(0.5, gt=0, le=1e6)
    horizon_s: Seconds = Field(60.0, gt=0)
    min_half_spread_bps: Bps = Field(1.0, ge=0)
    inventory_limit: Money = Field(1_000_000.0, gt=0)
    requote_ms: Int = Field(1_000, gt=0, le=int(MAX_MS))
    requote_move_bps: Bps = Field(3.0, gt=0)
    loss_window_s: Seconds = Field(60.0, gt=0)
    loss_limit: Money = Field(50_000.0, gt=0)
    calm_loss: Money = Field(5_000.0, ge=0)
    one_sided_share: Float = Field(0.9, gt=0.5, le=1)
    one_sided_min_fills: Int = Field(30, ge=1, le=1_000_000)
    calm_one_sided_share: Float = Field(0.7, gt=0.5, le=1)
    one_sided_fill_share: Float = Field(0.25, ge=0, le=100)  # net fills over the window, as a share of inventory_limit
    vol_spike_ratio: Float = Field(8.0, gt=1, le=1e4)
    calm_vol_ratio: Float = Field(2.0, gt=0, le=1e4)
    widen_slope: Float = Field(1.0, ge=0, le=1e4)
    liquidity_drop: Float = Field(0.5, ge=0, lt=1)  # withdraw when the others' depth falls below this share of its window max
    liquidity_window_s: Seconds = Field(20.0, gt=0)
    liquidity_band_bps: Literal[20, 100, 200, 500] = 500  # one of the feed's depth bands (wider than the ladder: widening stays)
    max_half_spread_bps: Bps = Field(50.0, gt=0)  # the widest half-spread it quotes; a wider optimum withdraws it (SPREAD)
    min_withdrawn_s: Seconds = Field(30.0, ge=0)  # a withdrawal lasts at least this long
    anchor_external: StrictBool = True
    stress_symbol: str | None = None  # a desk-wide risk signal: this instrument's outside volatility counts too
    leverage: Leverage = 2  # perpetuals: the leverage its resting quotes are margined at
    base_inventory: Units = 0.0  # spot books: base units held (and aimed at)
    outside_hedge_limit: Money = Field(0.0, ge=0)  # notional it may hold hedged on other venues (0: none)
    outside_hedge_band: Float = Field(0.2, ge=0, le=100)  # hedges once its net inventory passes this share of inventory_limit
    outside_hedge_cost_bps: Bps = Field(5.0, ge=0)  # fees and slippage of a hedge on another venue
    hedge_symbol: str | None = None  # a perpetual shorted against the spot holding (seed 002)
    hedge_leverage: Leverage = 5
    latency_ms: Latency = 5.0
    jitter_ms: Latency = 5.0

    @model_validator(mode="after")
    def _calm(self) -> MakerGroup:
        if self.max_half_spread_bps < self.min_half_spread_bps:
            raise Invalid(
                ("max_half_spread_bps",),
                f"must be at least min_half_spread_bps ({_num(self.min_half_spread_bps)}), got "
                f"{_num(self.max_half_spread_bps)}: a maker could never quote",
            )
        for calm, trigger in (
            ("calm_vol_ratio", "vol_spike_ratio"),
            ("calm_loss", "loss_limit"),
            ("calm_one_sided_share", "one_sided_share"),
        ):
            if getattr(self, calm) >= getattr(self, trigger):
                raise Invalid(
                    (calm,),
                    f"must be below {trigger} ({_num(getattr(self, trigger))}), got "
                    f"{_num(getattr(self, calm))}: calm thresholds sit below the triggers (hysteresis)",
                )
        return self


class ArbGroup(Strict):
    """``count`` arbitrageurs on one instrument."""

    symbol: str
    count: Count = 1
    capital: Money = Field(1_000_000.0, ge=1)
    tokens: Units = 0.0  # spot: tokens held at the start (to sell when the venue is rich)
    threshold_bps: Bps = Field(30.0, gt=0)
    close_bps: Bps = Field(5.0, ge=0)
    clip_notional: Money = Field(200_000.0, gt=0)
    inventory_limit: Money = Field(5_000_000.0, gt=0)
    transfer_delay_s: Seconds = Field(600.0, ge=0)
    rest: StrictBool = True  # rest a bid and an ask where it stands ready to trade
    rest_bps: Bps | None = Field(None, gt=0)  # how far from the outside price (default: threshold_bps)
    leverage: Leverage = 5
    latency_ms: Latency = 20.0

    @model_validator(mode="after")
    def _bands(self) -> ArbGroup:
        if self.close_bps >= self.threshold_bps:
            raise Invalid(
                ("close_bps",),
                f"must be below threshold_bps ({_num(self.threshold_bps)}), got {_num(self.close_bps)}: "
                "a position opens beyond the threshold and closes inside close_bps",
            )
        return self


class FundGroup(Strict):
    """``count`` hedged funds: long majors, short an altcoin."""

    count: Count = 1
    longs: dict[str, Annotated[Money, Field(gt=0)]] = Field(min_length=1)  # perpetual -> long notional (quote units)
    hedge_symbol: str
    hedge_ratio: Float = Field(1.0, gt=0, le=100)
    leverage: Leverage = 10
    margin: Money = Field(700_000.0, ge=1)
    review_s: Seconds = Field(30.0, gt=0)
    rehedge_below: Float = Field(0.5, gt=0, le=1)
    max_spread_bps: Bps = Field(100.0, gt=0)


class NewsItem(Strict):
    """A public information event."""

    at_s: Seconds = Field(ge=0)
    name: str
    severity: Share


class PathSection(Strict):
    """An external price path: piecewise log-linear knots (seconds after the first news, factor of the start price).

    Before the first knot the factor is the first knot's; after the last, the last's. Knot
    times increase and lie within 7 days of the reference; factors are within (0, 100]. A
    seeded Brownian wiggle with the instrument's prior daily volatility is added (``noise``
    scales it, 0 to 1; 0 for none). ``of`` derives the path from another (e.g. wBETH =
    1.07 x ETH): such a path takes no knots or start of its own, and ``ratio`` is used only
    with ``of``.
    """

    knots: list[Annotated[tuple[Float, Float], _pair("a knot [time_s, factor]")]] = Field(
        default_factory=lambda: [(0.0, 1.0)], min_length=1, max_length=100_000
    )
    noise: Float = Field(1.0, ge=0, le=1)
    of: str | None = None
    ratio: Float = Field(1.0, gt=0, le=MAX_PATH_FACTOR)
    start: Float | None = Field(None, gt=0, le=PRICE_MAX)  # the start price (default: the instrument's price)

    @field_validator("knots")
    @classmethod
    def _knots(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for j, (t, f) in enumerate(v):
            if abs(t) > MAX_DURATION_S:
                raise Invalid((j, 0), f"knot time must be within ±{_num(MAX_DURATION_S)} s of the reference, got {_num(t)}")
            if not 0 < f <= MAX_PATH_FACTOR:
                raise Invalid((j, 1), f"knot factor must be > 0 and <= {_num(MAX_PATH_FACTOR)}, got {_num(f)}")
            if j and t <= v[j - 1][0]:
                raise Invalid((j, 0), f"knot times must increase: {_num(t)} s follows {_num(v[j - 1][0])} s")
        return v

    @model_validator(mode="after")
    def _derived(self) -> PathSection:
        if self.of is not None:
            if self.start is not None:
                raise Invalid(("start",), f"a path derived with of = {self.of!r} takes its start from that path; remove start")
            if [tuple(k) for k in self.knots] != [(0.0, 1.0)]:
                raise Invalid(("knots",), f"a path derived with of = {self.of!r} follows that path; remove knots")
        elif self.ratio != 1.0:
            raise Invalid(("ratio",), "ratio is used only with of (a derived path); remove it or set of")
        return self


Group = Literal["retail", "loopers", "makers", "arbitrageurs", "funds", "noise", "news_sellers"]


class OutageSection(Strict):
    """An API outage window for groups of participants (``delay_ms`` only with ``mode = "delay"``, and > 0 there).

    ``start_s`` and ``end_s`` count from the world's reference time (the first news, or
    ``world.reference_s``), as the paths' knots do; the window must open before the run ends.
    """

    start_s: Seconds = Field(ge=0)  # after the first news (world.reference_s)
    end_s: Seconds = Field(gt=0)
    groups: Annotated[list[Group], AfterValidator(_check_unique)] = Field(min_length=1)
    mode: Literal["reject", "delay"] = "reject"
    delay_ms: Millis = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _window(self) -> OutageSection:
        if self.end_s <= self.start_s:
            raise Invalid(("end_s",), f"must be after start_s ({_num(self.start_s)}), got {_num(self.end_s)}")
        if self.mode == "delay" and self.delay_ms <= 0:
            raise Invalid(("delay_ms",), 'must be > 0 with mode = "delay"')
        if self.mode == "reject" and self.delay_ms != 0:
            raise Invalid(("delay_ms",), 'is used only with mode = "delay" (mode "reject" refuses requests); remove it')
        return self


class WorldSection(Strict):
    """The exogenous world: news, external price paths, outages."""

    news: list[NewsItem] = Field(default_factory=list)
    paths: dict[str, PathSection] = Field(default_factory=dict)  # perpetual symbol or asset -> path
    outages: list[OutageSection] = Field(default_factory=list)
    feed_every_ms: Int = Field(1_000, gt=0, le=3_600_000)
    reference_s: Seconds | None = Field(None, ge=0)  # time 0 of the paths' knots and of "pre-news" (default: the first news)

    @model_validator(mode="after")
    def _derivations(self) -> WorldSection:
        for name, p in self.paths.items():
            if p.of is None:
                continue
            if p.of not in self.paths:
                raise Invalid(
                    ("paths", name, "of"), f"{p.of!r} is not a path of world.paths; allowed: {sorted(set(self.paths) - {name})}"
                )
            chain = [name]
            cur: str | None = p.of
            while cur is not None:
                if cur in chain:
                    raise Invalid(
                        ("paths", name, "of"), f"the paths derive from each other in a cycle: {' -> '.join([*chain, cur])}"
                    )
                chain.append(cur)
                cur = self.paths[cur].of if cur in self.paths else None
        return self


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
    run: RunSection = Field(default_factory=RunSection)  # type: ignore[arg-type]
    venue: VenueSection = Field(default_factory=VenueSection)  # type: ignore[arg-type]
    instruments: list[InstrumentSection] = Field(min_length=1)
    collateral: dict[str, CollateralSection]
    lending: LendingSection = Field(default_factory=LendingSection)  # type: ignore[arg-type]
    population: PopulationSection | None = None
    loopers: LoopersSection | None = None
    noise: NoiseSection | None = None
    news_sellers: NewsSellersSection | None = None
    makers: list[MakerGroup] = Field(default_factory=list)
    arbitrageurs: list[ArbGroup] = Field(default_factory=list)
    funds: list[FundGroup] = Field(default_factory=list)
    world: WorldSection = Field(default_factory=WorldSection)  # type: ignore[arg-type]
    check: CheckSection = Field(default_factory=CheckSection)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip() or any(c in v for c in "/\\") or v.strip() in (".", ".."):
            raise ValueError(f"must be a non-empty name without slashes (it names the run directory), got {v!r}")
        return v

    @field_validator("collateral")
    @classmethod
    def _assets(cls, v: dict[str, CollateralSection]) -> dict[str, CollateralSection]:
        for a in v:
            if not _name_ok(a):
                raise Invalid(
                    (a,), "an asset code must be a non-empty name without spaces, dots, quotes, brackets, slashes or '='"
                )
        if SETTLEMENT_ASSET not in v:
            raise ValueError(f"must include the settlement asset {SETTLEMENT_ASSET} ([collateral.{SETTLEMENT_ASSET}])")
        usdt = v[SETTLEMENT_ASSET]
        if usdt.source != "fixed" or usdt.price != 1.0:
            raise Invalid(
                (SETTLEMENT_ASSET,),
                f'the settlement asset is the unit of account: source = "fixed", price = 1.0 (got source = {usdt.source!r}, '
                f"price = {usdt.price})",
            )
        return v

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        self._check_instruments()
        self._check_participants()
        self._check_world()
        self._check_check()
        return self

    # --- the cross-section checks (each raises Invalid naming the key) ---------------------------
    def _check_instruments(self) -> None:
        first: dict[str, int] = {}
        for j, i in enumerate(self.instruments):
            if i.symbol in first:
                raise Invalid(
                    ("instruments", j, "symbol"),
                    f"{i.symbol!r} repeats instruments.{first[i.symbol]}.symbol; instrument symbols must be unique",
                )
            first[i.symbol] = j
        assets = set(self.collateral)
        spot_of = {i.symbol: i for i in self.instruments if i.kind == "spot"}
        for j, i in enumerate(self.instruments):
            if i.kind == "spot" and i.base not in assets:
                raise Invalid(
                    ("instruments", j, "base"),
                    f"{i.base!r} is not a collateral asset; allowed: {sorted(assets)} "
                    "(a spot book's base asset must be configured in [collateral])",
                )
        quoted = {m.symbol for m in self.makers}
        for a, c in self.collateral.items():
            if c.book is not None:
                self._need(("collateral", a, "book"), [c.book], set(spot_of))
                if spot_of[c.book].base != a:
                    raise Invalid(("collateral", a, "book"), f"{c.book!r} trades {spot_of[c.book].base}, not {a}")
                if c.book not in quoted:
                    raise Invalid(
                        ("collateral", a, "book"),
                        f"{a} is valued from the book {c.book}, which has no market makers ([[makers]] symbol = "
                        f'"{c.book}"): it would have no price after the pre-open',
                    )
        for name in self.lending.pools:
            if name not in assets:
                raise Invalid(
                    ("lending", "pools", name), f"unknown asset {name!r}; allowed: {sorted(assets)} (the collateral assets)"
                )

    def _check_participants(self) -> None:
        perps = {i.symbol for i in self.instruments if i.kind == "perp"}
        spot_of = {i.symbol: i for i in self.instruments if i.kind == "spot"}
        books = perps | set(spot_of)
        price = {i.symbol: i.price for i in self.instruments}
        assets = set(self.collateral)
        lend = self.lending
        unpledgeable = {a for a, c in self.collateral.items() if c.ratio <= 0}
        if self.population:
            self._need(("population", "symbols"), self.population.symbols, perps)
            self._need(("population", "collateral"), self.population.collateral, assets)
            for a, share in self.population.collateral.items():
                if share > 0 and a in unpledgeable:
                    raise Invalid(("population", "collateral", a), f"traders post {a} as margin, but collateral.{a}.ratio is 0")
        if self.loopers:
            lp = self.loopers
            self._need(("loopers", "token"), [lp.token], assets)
            self._need(("loopers", "book"), [lp.book], set(spot_of))
            if spot_of[lp.book].base != lp.token:
                raise Invalid(
                    ("loopers", "book"), f"{lp.book!r} trades {spot_of[lp.book].base}, not the loopers' token {lp.token}"
                )
            self._need(("loopers", "seeds"), lp.seeds, assets)
            for a in sorted({lp.token, *(k for k, v in lp.seeds.items() if v > 0)} & unpledgeable):
                raise Invalid(("collateral", a, "ratio"), f"loopers pledge {a} to borrow: its ratio must be > 0")
            book_price = spot_of[lp.book].price
            if not book_price / 10 <= lp.mint_price <= book_price * 10:
                raise Invalid(
                    ("loopers", "mint_price"),
                    f"must be within a factor 10 of the start price of {lp.book} ({_num(book_price)}), got {_num(lp.mint_price)}",
                )
            if lp.target_ltv[1] >= lend.initial_ltv:
                raise Invalid(
                    ("loopers", "target_ltv"),
                    f"must stay below lending.initial_ltv ({_num(lend.initial_ltv)}), "
                    f"got [{_num(lp.target_ltv[0])}, {_num(lp.target_ltv[1])}]",
                )
            if lp.unwind_ltv[1] >= lend.liquidation_ltv:
                raise Invalid(
                    ("loopers", "unwind_ltv"),
                    f"must stay below lending.liquidation_ltv ({_num(lend.liquidation_ltv)}), "
                    f"got [{_num(lp.unwind_ltv[0])}, {_num(lp.unwind_ltv[1])}]",
                )
            if lp.unwind_ltv[0] <= lp.target_ltv[1]:
                raise Invalid(
                    ("loopers", "unwind_ltv"),
                    f"must lie above loopers.target_ltv: its low ({_num(lp.unwind_ltv[0])}) must be above target_ltv's high "
                    f"({_num(lp.target_ltv[1])}); a looper borrows up to its target and unwinds above its unwind LTV",
                )
            if lp.accounts and lend.pools.get(SETTLEMENT_ASSET, 0.0) <= 0:
                raise Invalid(
                    ("lending", "pools", SETTLEMENT_ASSET),
                    f"loopers borrow {SETTLEMENT_ASSET}: the pool must be > 0 when loopers.accounts > 0",
                )
        if self.noise:
            self._need(("noise", "symbols"), self.noise.symbols, books)
        if self.news_sellers:
            self._need(("news_sellers", "symbols"), self.news_sellers.symbols, perps, "news sellers short perpetuals")
        seen: dict[str, int] = {}
        for j, m in enumerate(self.makers):
            self._need(("makers", j, "symbol"), [m.symbol], books)
            if m.symbol in seen:
                raise Invalid(
                    ("makers", j, "symbol"),
                    f"{m.symbol!r} already has a maker group (makers.{seen[m.symbol]}); "
                    f"raise makers.{seen[m.symbol]}.count instead",
                )
            seen[m.symbol] = j
            if m.stress_symbol:
                self._need(("makers", j, "stress_symbol"), [m.stress_symbol], books)
            if m.base_inventory > 0:
                if m.symbol not in spot_of:
                    raise Invalid(("makers", j, "base_inventory"), "only makers on spot books hold a base inventory")
                if m.base_inventory * price[m.symbol] > MONEY_MAX:
                    raise Invalid(
                        ("makers", j, "base_inventory"),
                        f"worth {m.base_inventory * price[m.symbol]:.3g} quote units at the start price; at most {MONEY_MAX:.0e}",
                    )
            if m.hedge_symbol:
                self._need(("makers", j, "hedge_symbol"), [m.hedge_symbol], perps)
                if m.symbol not in spot_of or m.base_inventory <= 0:
                    raise Invalid(
                        ("makers", j, "hedge_symbol"),
                        "hedges a spot holding: only for makers on spot books with base_inventory > 0",
                    )
        seen = {}
        for j, ag in enumerate(self.arbitrageurs):
            self._need(("arbitrageurs", j, "symbol"), [ag.symbol], books)
            if ag.symbol in seen:
                raise Invalid(
                    ("arbitrageurs", j, "symbol"),
                    f"{ag.symbol!r} already has an arbitrageur group (arbitrageurs.{seen[ag.symbol]}); raise its count instead",
                )
            seen[ag.symbol] = j
            if ag.tokens > 0:
                if ag.symbol not in spot_of:
                    raise Invalid(("arbitrageurs", j, "tokens"), "only arbitrageurs on spot books hold tokens")
                if ag.tokens * price[ag.symbol] > MONEY_MAX:
                    raise Invalid(
                        ("arbitrageurs", j, "tokens"),
                        f"worth {ag.tokens * price[ag.symbol]:.3g} quote units at the start price; at most {MONEY_MAX:.0e}",
                    )
        for j, f in enumerate(self.funds):
            self._need(("funds", j, "longs"), f.longs, perps)
            self._need(("funds", j, "hedge_symbol"), [f.hedge_symbol], perps)
        # positions booked at the start need population accounts holding those perpetuals on the other side
        legs = {s: ("funds", j, "longs") for j, f in enumerate(self.funds) for s in f.longs}
        legs |= {f.hedge_symbol: ("funds", j, "hedge_symbol") for j, f in enumerate(self.funds)}
        legs |= {str(m.hedge_symbol): ("makers", j, "hedge_symbol") for j, m in enumerate(self.makers) if m.hedge_symbol}
        if legs:
            pop = self.population
            if pop is None or pop.accounts == 0:
                raise Invalid(
                    ("population", "accounts"),
                    f"funds' and makers' hedges start with positions in {sorted(legs)} and "
                    "need a population to take the other side: give the population accounts, or remove [[funds]] "
                    "and the makers' hedge_symbol",
                )
            for sym, loc in legs.items():
                if pop.symbols.get(sym, 0.0) <= 0:
                    raise Invalid(
                        loc,
                        f"starts a position in {sym} and needs population accounts holding {sym} to take the "
                        f"other side: give population.symbols.{sym} a share > 0",
                    )

    def _check_world(self) -> None:
        perps = [i.symbol for i in self.instruments if i.kind == "perp"]
        spot_bases = {str(i.base): i.symbol for i in self.instruments if i.kind == "spot"}
        assets = set(self.collateral)
        paths = self.world.paths
        self._need(
            ("world", "paths"),
            paths,
            set(perps) | assets,
            "paths are named by perpetual symbol or asset (a spot book follows the path of its base asset)",
        )
        for sym in perps:
            if sym not in paths:
                raise Invalid(
                    ("world", "paths"),
                    f"no path for the perpetual {sym}: every perpetual's index needs an external price path (world.paths.{sym})",
                )
        for base, sym in spot_bases.items():
            if base not in paths:
                raise Invalid(
                    ("world", "paths"),
                    f"no path for {base}, the base asset of the spot book {sym}: its makers and "
                    f'arbitrageurs anchor to it (world.paths.{base}; of = "..." derives one from another path)',
                )
        for a, c in self.collateral.items():
            if c.source in ("index", "blend") and a not in paths:
                raise Invalid(
                    ("world", "paths"),
                    f"no path for {a}: collateral.{a} is valued from its external index "
                    f"(source = {c.source!r}) and needs world.paths.{a}",
                )
            if c.source == "redemption" and str(c.base_asset) not in paths:
                raise Invalid(
                    ("collateral", a, "base_asset"),
                    f"{c.base_asset!r} has no external path: the redemption value needs world.paths.{c.base_asset}",
                )
        for name, p in paths.items():
            if p.of is None and p.start is None and name not in perps and name not in spot_bases:
                raise Invalid(
                    ("world", "paths", name, "start"),
                    f"required: {name} is not a perpetual or a spot book's base, so "
                    'its start price is not known (or derive it with of = "...")',
                )
        # the lowest price a path scripts must stay at least one tick of the books that follow it
        ticks: dict[str, list[tuple[str, float]]] = {}
        for i in self.instruments:
            ticks.setdefault(i.symbol if i.kind == "perp" else str(i.base), []).append((i.symbol, float(i.tick)))
        start = {i.symbol: i.price for i in self.instruments} | {
            str(i.base): i.price for i in self.instruments if i.kind == "spot"
        }

        def low(name: str) -> float:
            p = paths[name]
            if p.of is not None:
                return p.ratio * low(p.of)
            return (p.start or start.get(name, math.inf)) * min(f for _, f in p.knots)

        for name in paths:
            floor = low(name)
            for sym, tick in ticks.get(name, []):
                if floor < tick:
                    raise Invalid(
                        ("world", "paths", name),
                        f"the path's lowest scripted price ({floor:.3g}) is below one tick of {sym} ({tick:g}): "
                        "raise its knot factors (or its start, or the ratio of a derived path)",
                    )
        ref = (
            self.world.reference_s if self.world.reference_s is not None else min((n.at_s for n in self.world.news), default=0.0)
        )
        for j, o in enumerate(self.world.outages):
            if ref + o.start_s >= self.run.duration_s:
                raise Invalid(
                    ("world", "outages", j, "start_s"),
                    f"the window opens at {_num(ref + o.start_s)} s of market time (start_s counts from the first news, at "
                    f"{_num(ref)} s), after the run ends ({_num(self.run.duration_s)} s): it would change nothing",
                )
        feed_points = self.run.duration_s * 1000 / self.world.feed_every_ms
        if feed_points > MAX_FEED_POINTS:
            raise Invalid(
                ("world", "feed_every_ms"),
                f"run.duration_s / feed_every_ms = {_num(math.ceil(feed_points))} points "
                f"per path; at most {_num(MAX_FEED_POINTS)}: raise feed_every_ms",
            )

    def _check_check(self) -> None:
        books = {i.symbol for i in self.instruments}
        given = self.check.model_fields_set
        for key in ("tracked", "majors", "altcoins", "token"):
            value = getattr(self.check, key)
            names = value if isinstance(value, list) else [value]
            note = "" if key in given else f" (the default check.{key}: set [check] {key} for this market)"
            self._need(("check", key), names, books, note=note)

    @staticmethod
    def _need(loc: Loc, names: Any, allowed: set[str], why: str = "", note: str = "") -> None:
        bad = sorted({n for n in names if n not in allowed})
        if bad:
            raise Invalid(loc, f"unknown {bad}; allowed: {sorted(allowed)}{f' ({why})' if why else ''}{note}")


__all__ = ["MONEY_MAX", "PRICE_MAX", "Invalid", "Scenario"]
