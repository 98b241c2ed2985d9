"""A venue's liquidation rules: the strategy objects of :mod:`.policy` and the liquidator's throughput."""

from __future__ import annotations

from dataclasses import dataclass, field

from cascadelab.liquidation import adl
from cascadelab.liquidation.policy import (
    AdlPrice,
    AtBankruptcyPrice,
    AtMark,
    AtPreviousMark,
    BookThenTakeover,
    Funds,
    ImmediateTakeover,
    MarketChunks,
    OnDrawdown,
    OnNegativeEquity,
    PerSymbolFunds,
    PolicyError,
    RestoreMaintenance,
    SharedFund,
    Style,
    Trigger,
    Vault,
    WhenInsufficient,
)


@dataclass(frozen=True)
class LiquidationConfig:
    """How one venue liquidates, takes over, funds deficits and deleverages.

    ``liquidator_orders_per_s`` and ``liquidator_notional_per_s`` (money per second, 0 =
    unlimited) bound how fast the venue's liquidator sells what it took over: the source
    documents say the exchange needed about an hour to work through the accounts it took
    over on 10 Oct 2025.
    """

    style: Style = field(default_factory=BookThenTakeover)
    funds: Funds = field(default_factory=SharedFund)
    fund_seed: int = 0  # money units per fund (or vault capital)
    trigger: Trigger = field(default_factory=WhenInsufficient)
    ranking: str = "binance"
    adl_price: AdlPrice = field(default_factory=AtBankruptcyPrice)
    liquidator_orders_per_s: int = 50
    liquidator_notional_per_s: int = 0
    backlog_adl: bool = True  # losses on the liquidator's backlog beyond its fund go to ADL (else they are socialized)

    def __post_init__(self) -> None:
        if self.ranking not in adl.RANKINGS:
            raise PolicyError(f"liquidation config: field 'ranking' must be one of {adl.RANKINGS}, got {self.ranking!r}")
        if self.fund_seed < 0:
            raise PolicyError("liquidation config: field 'fund_seed' must be >= 0")
        if self.liquidator_orders_per_s <= 0:
            raise PolicyError("liquidation config: field 'liquidator_orders_per_s' must be > 0")
        if self.liquidator_notional_per_s < 0:
            raise PolicyError("liquidation config: field 'liquidator_notional_per_s' must be >= 0 (0 = unlimited)")

    @property
    def vault(self) -> bool:
        """True when the liquidator's own capital is the fund."""
        return isinstance(self.funds, Vault)


STYLES = ("binance", "hyperliquid", "takeover")
FUND_STRUCTURES = ("shared", "per_symbol", "vault")
ADL_TRIGGERS = ("insufficient", "drawdown", "negative_equity")
ADL_PRICES = ("bankruptcy", "mark", "previous_mark")


def config_from_params(
    style: str = "binance",
    clearance_fee: int = 4_000,
    partial_factor: int = 2,
    partial_floor: int = 100_000,
    chunk_threshold: int = 100_000 * 10**8,
    chunk_fraction: int = 200_000,
    chunk_cooldown_ns: int = 30 * 10**9,
    backstop_fraction: tuple[int, int] = (2, 3),
    fund_structure: str = "shared",
    fund_seed: int = 0,
    adl_trigger: str = "insufficient",
    drawdown_threshold: int = 300_000,
    drawdown_window_ns: int = 8 * 3600 * 10**9,
    adl_ranking: str = "binance",
    adl_price: str = "bankruptcy",
    liquidator_orders_per_s: int = 50,
    liquidator_notional_per_s: int = 0,
    backlog_adl: bool = True,
) -> LiquidationConfig:
    """A :class:`LiquidationConfig` from flat, named parameters (venue profiles and scenario files use these).

    Money in 1e-8 units, rates in millionths, times in nanoseconds. Each name is checked and
    an unknown value names the allowed ones.
    """
    for name, value, allowed in (
        ("style", style, STYLES),
        ("fund_structure", fund_structure, FUND_STRUCTURES),
        ("adl_trigger", adl_trigger, ADL_TRIGGERS),
        ("adl_price", adl_price, ADL_PRICES),
        ("adl_ranking", adl_ranking, adl.RANKINGS),
    ):
        if value not in allowed:
            raise PolicyError(f"liquidation: field {name!r} must be one of {list(allowed)}, got {value!r}")
    if not 0 <= clearance_fee < 1_000_000:
        raise PolicyError("liquidation: field 'clearance_fee' must be within [0, 1e6) millionths")
    partial = RestoreMaintenance(partial_factor, partial_floor)
    style_obj: Style
    if style == "binance":
        style_obj = BookThenTakeover(clearance_fee, partial)
    elif style == "hyperliquid":
        style_obj = MarketChunks(chunk_threshold, chunk_fraction, chunk_cooldown_ns, tuple(backstop_fraction), clearance_fee)  # type: ignore[arg-type]
    else:
        style_obj = ImmediateTakeover(clearance_fee)
    fund_kinds: dict[str, Funds] = {"shared": SharedFund(), "per_symbol": PerSymbolFunds(), "vault": Vault()}
    funds = fund_kinds[fund_structure]
    trigger: Trigger
    if adl_trigger == "insufficient":
        trigger = WhenInsufficient()
    elif adl_trigger == "drawdown":
        trigger = OnDrawdown(drawdown_threshold, drawdown_window_ns)
    else:
        trigger = OnNegativeEquity()
    prices: dict[str, AdlPrice] = {"bankruptcy": AtBankruptcyPrice(), "mark": AtMark(), "previous_mark": AtPreviousMark()}
    price = prices[adl_price]
    return LiquidationConfig(
        style_obj,
        funds,
        int(fund_seed),
        trigger,
        adl_ranking,
        price,
        int(liquidator_orders_per_s),
        int(liquidator_notional_per_s),
        bool(backlog_adl),
    )
