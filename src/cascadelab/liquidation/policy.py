"""The pieces of a venue's liquidation rules, as small strategy objects chosen by its profile.

* **Style** (tier 1): what happens when an account breaches. :class:`BookThenTakeover`
  (Binance, Bybit, OKX), :class:`MarketChunks` (Hyperliquid), :class:`ImmediateTakeover`
  (BitMEX). Each says whether to take the account over at once, which liquidation orders
  to send, and what to do when the book did not restore it.
* **Partial size rule** (:class:`RestoreMaintenance`): how large Binance's "one large IOC
  order ... without fully liquidating" is. No venue publishes it; it is named, a
  parameter, and an assumption.
* **Fund structure**: :class:`SharedFund`, :class:`PerSymbolFunds`, :class:`Vault`
  (Hyperliquid: the liquidator vault's own capital).
* **ADL trigger**: how much of a deficit the fund may pay before ADL takes the rest:
  :class:`WhenInsufficient`, :class:`OnDrawdown`, :class:`OnNegativeEquity`.
* **ADL price**: :class:`AtBankruptcyPrice`, :class:`AtMark`, :class:`AtPreviousMark`.

Each object also exposes small integer codes (``code``) so that compiled code can act on
the same choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from cascadelab.arith import ceil_div, muldiv_ceil, muldiv_floor
from cascadelab.records import Why
from cascadelab.units import RATE_SCALE, SECOND_NS

SCOPE_ALL, SCOPE_CROSS = 0, 1
"""Takeover scope: every position (cross and isolated), or cross positions only (isolated ones stay)."""


class PolicyError(ValueError):
    """An invalid liquidation parameter; the message names it."""


# --- the partial liquidation size -------------------------------------------------------------
@dataclass(frozen=True)
class RestoreMaintenance:
    """Lots of one IOC that would restore maintenance at the mark, times ``factor``, at least ``floor`` of the position.

    Closing ``c`` lots of a position releases about ``c x mark x lot value x MMR`` of
    maintenance margin; with ``factor`` = 2 the order allows as much again for slippage and
    fees. Source: assumption (Binance documents "one large Immediate or Cancel order" that
    does not fully liquidate, without a size rule).
    """

    factor: int = 2
    floor: int = 100_000  # millionths of the position: at least 10%
    source: str = "assumption: Binance publishes no size rule for its partial liquidation order"

    def __post_init__(self) -> None:
        if self.factor < 1 or not 0 < self.floor <= RATE_SCALE:
            raise PolicyError("partial rule: factor must be >= 1 and floor within (0, 1e6] millionths")

    def lots(self, size: int, shortfall: int, lot_value: int, mmr: int) -> int:
        """Lots to send for a position of ``size`` lots when equity is ``shortfall`` below maintenance."""
        q = abs(size)
        need = int(muldiv_ceil(max(0, shortfall), RATE_SCALE, max(1, lot_value * mmr))) + 1
        return min(q, max(1, self.factor * need, int(muldiv_floor(q, self.floor, RATE_SCALE))))


# --- styles ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BookThenTakeover:
    """Binance-style tier 1: cancel the account's orders, one IOC bounded by the bankruptcy price, then takeover.

    Each step a breaching account sends one reduce-only IOC for its largest cross position,
    sized by the partial rule and bounded by the position's bankruptcy price (the price at
    which closing it would leave the account's equity at zero). If the account is compliant
    afterwards the liquidation stops; if not, the rest of the account is taken over at once.
    A clearance fee on the liquidated notional goes to the insurance fund, never more than
    the account's remaining equity. Source: Binance, "Liquidation Protocols" FAQ.
    """

    clearance_fee: int = 4_000  # millionths of the liquidated notional
    partial: RestoreMaintenance = field(default_factory=RestoreMaintenance)
    code: ClassVar[int] = 0
    scope: ClassVar[int] = SCOPE_ALL

    def immediate(self, equity: int, maintenance: int) -> Why | None:
        """Take over before sending any order? (no)"""
        return None

    def after_book(self, equity: int, maintenance: int) -> Why | None:
        """After the IOC: still below maintenance means takeover now."""
        return Why.BOOK_COULD_NOT_RESTORE if equity < maintenance else None


@dataclass(frozen=True)
class MarketChunks:
    """Hyperliquid-style tier 1: market orders, partial above a threshold, cooldown, backstop below 2/3.

    Hyperliquid docs (Liquidations): positions are closed with market orders for the full
    size; a liquidatable position larger than 100k USDC sends only 20% as a market order;
    "after a block where any position of a user is partially liquidated, there is a cooldown
    period of 30 seconds. During this cooldown period, all market liquidation orders for that
    user will be for the entire position." If equity falls below 2/3 of maintenance, the
    liquidator vault takes over all cross positions and cross margin ("the maintenance margin
    is not returned"); isolated positions are liquidated on their own. No clearance fee.
    Every step, an account that still breaches sends its orders again.
    """

    threshold: int = 100_000 * 10**8  # money: positions above this notional are liquidated in chunks
    fraction: int = 200_000  # millionths of the position per chunk
    cooldown_ns: int = 30 * SECOND_NS
    backstop: tuple[int, int] = (2, 3)  # take over when equity < 2/3 of maintenance
    clearance_fee: int = 0
    code: ClassVar[int] = 1
    scope: ClassVar[int] = SCOPE_CROSS

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= RATE_SCALE:
            raise PolicyError("market chunks: fraction must be within (0, 1e6] millionths")
        n, d = self.backstop
        if not (0 <= n <= d and d > 0):
            raise PolicyError("market chunks: backstop must be a fraction n/d with 0 <= n <= d")

    def below_backstop(self, equity: int, maintenance: int) -> bool:
        """Equity below the backstop fraction of maintenance."""
        n, d = self.backstop
        return equity * d < maintenance * n

    def immediate(self, equity: int, maintenance: int) -> Why | None:
        """The backstop takes over at once below 2/3 of maintenance."""
        return Why.BACKSTOP if self.below_backstop(equity, maintenance) else None

    def after_book(self, equity: int, maintenance: int) -> Why | None:
        """After the market orders: the backstop if below 2/3, else stay LIQUIDATING for the next step."""
        return Why.BACKSTOP if self.below_backstop(equity, maintenance) else None

    def chunk(self, size: int, notional: int, cooling: bool) -> tuple[int, bool]:
        """(lots to send, whether this is a partial chunk) for one position."""
        if notional > self.threshold and not cooling:
            return max(1, int(muldiv_floor(abs(size), self.fraction, RATE_SCALE))), True
        return abs(size), False


@dataclass(frozen=True)
class ImmediateTakeover:
    """BitMEX-style: the liquidation engine takes the whole position over at once (no book order first).

    Source: BitMEX, Liquidation ("the entire position is taken over by the system"); the
    risk-limit step-down that precedes it is not modelled.
    """

    clearance_fee: int = 0
    code: ClassVar[int] = 2
    scope: ClassVar[int] = SCOPE_ALL

    def immediate(self, equity: int, maintenance: int) -> Why | None:
        """Always take over."""
        return Why.STYLE_TAKES_OVER

    def after_book(self, equity: int, maintenance: int) -> Why | None:
        """Never reached (no book orders)."""
        return Why.STYLE_TAKES_OVER


Style = BookThenTakeover | MarketChunks | ImmediateTakeover


# --- funds -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SharedFund:
    """One insurance fund backs every perpetual (Binance's BTC/ETH/BNB fund in DOMAIN.md; Bybit's pools)."""

    code: ClassVar[int] = 0

    def names(self, symbols: list[str]) -> list[str]:
        """Ledger names of the fund accounts."""
        return ["insurance:shared"]

    def index(self, k: int) -> int:
        """Which fund backs perpetual ``k``."""
        return 0


@dataclass(frozen=True)
class PerSymbolFunds:
    """One insurance fund per perpetual (results of collateral unwinding go to the first perpetual's fund)."""

    code: ClassVar[int] = 1

    def names(self, symbols: list[str]) -> list[str]:
        """Ledger names of the fund accounts."""
        return [f"insurance:{s}" for s in symbols]

    def index(self, k: int) -> int:
        """Which fund backs perpetual ``k``."""
        return k


@dataclass(frozen=True)
class Vault:
    """The liquidator vault's own capital is the fund (Hyperliquid's HLP backstop vault)."""

    code: ClassVar[int] = 2

    def names(self, symbols: list[str]) -> list[str]:
        """No separate fund accounts: the liquidator account holds the capital."""
        return []

    def index(self, k: int) -> int:
        """The vault backs everything."""
        return 0


Funds = SharedFund | PerSymbolFunds | Vault


# --- ADL triggers ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WhenInsufficient:
    """The fund pays a deficit while it can; ADL takes what it cannot (Binance FAQ; BitMEX)."""

    code: ClassVar[int] = 0
    reason: ClassVar[Why] = Why.TRIGGER_INSUFFICIENT

    def fund_pays(self, deficit: int, balance: int, peak: int) -> int:
        """How much of ``deficit`` the fund pays before ADL."""
        return min(deficit, max(0, balance))


@dataclass(frozen=True)
class OnDrawdown:
    """The fund pays only down to ``threshold`` below its peak over ``window_ns``; ADL takes the rest.

    OKX (mirror sources): "a straight-line decrease of 30% from the peak value of the risk
    reserve within 8 hours"; Bybit's 2025 pooled funds use the same 30%/8 h rule.
    """

    threshold: int = 300_000  # millionths of the peak
    window_ns: int = 8 * 3600 * SECOND_NS
    code: ClassVar[int] = 1
    reason: ClassVar[Why] = Why.TRIGGER_DRAWDOWN

    def __post_init__(self) -> None:
        if not 0 <= self.threshold <= RATE_SCALE or self.window_ns <= 0:
            raise PolicyError("drawdown trigger: threshold within [0, 1e6] millionths and a positive window")

    def fund_pays(self, deficit: int, balance: int, peak: int) -> int:
        """How much of ``deficit`` the fund pays before ADL."""
        floor = peak - int(muldiv_floor(peak, self.threshold, RATE_SCALE))
        return min(deficit, max(0, min(balance, balance - floor)))


@dataclass(frozen=True)
class OnNegativeEquity:
    """A negative account value goes to ADL first; the vault pays only what ADL leaves (Hyperliquid docs)."""

    code: ClassVar[int] = 2
    reason: ClassVar[Why] = Why.TRIGGER_NEGATIVE_EQUITY

    def fund_pays(self, deficit: int, balance: int, peak: int) -> int:
        """Nothing before ADL."""
        return 0


Trigger = WhenInsufficient | OnDrawdown | OnNegativeEquity


# --- ADL prices --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AtBankruptcyPrice:
    """ADL closes at the bankrupt position's bankruptcy price (Binance, Bybit, BitMEX).

    With the account's deficit ``D`` apportioned to a position of ``q`` lots, its bankruptcy
    price is ``D / (q x lot value)`` ticks beyond the mark (above it for a long), rounded up to
    a tick: the counterparties absorb the deficit, at most one tick per lot more, which the
    fund keeps.
    """

    code: ClassVar[int] = 0

    def price(self, bankrupt_side: int, lots: int, unit: int, deficit: int, mark: int, prev_mark: int) -> int:
        """ADL price in ticks for a bankrupt position on ``bankrupt_side`` (+1 long)."""
        shift = int(ceil_div(deficit, max(1, lots * unit)))
        return mark + shift if bankrupt_side > 0 else max(1, mark - shift)


@dataclass(frozen=True)
class AtMark:
    """ADL closes at the mark price (OKX in normal conditions, mirror sources): it recovers nothing."""

    code: ClassVar[int] = 1

    def price(self, bankrupt_side: int, lots: int, unit: int, deficit: int, mark: int, prev_mark: int) -> int:
        """The mark."""
        return mark


@dataclass(frozen=True)
class AtPreviousMark:
    """ADL closes at the previous mark price (Hyperliquid docs), clamped between the mark and the bankruptcy price.

    The clamps are assumptions: the docs do not say what happens when the previous mark was
    on the counterparty's side of the current one, or beyond the bankruptcy price.
    """

    code: ClassVar[int] = 2

    def price(self, bankrupt_side: int, lots: int, unit: int, deficit: int, mark: int, prev_mark: int) -> int:
        """The previous mark, clamped between the current mark and the bankruptcy price.

        Never better for the counterparty than the mark, and never worse than the bankruptcy
        price: counterparties give up at most the deficit (in a gap the previous mark can lie
        beyond the bankruptcy price; closing there would hand the bankrupt account a profit).
        """
        p = prev_mark or mark
        bk = AtBankruptcyPrice().price(bankrupt_side, lots, unit, deficit, mark, prev_mark)
        return min(max(p, mark), bk) if bankrupt_side > 0 else max(min(p, mark), bk)


AdlPrice = AtBankruptcyPrice | AtMark | AtPreviousMark
