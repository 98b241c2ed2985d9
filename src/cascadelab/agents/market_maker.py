"""The market maker: Avellaneda–Stoikov quoting with regimes, risk-driven widening, withdrawal and return.

One :class:`MarketMaker` quotes one instrument from one account (a desk quoting several
books is several makers sharing nothing). Each wake it:

1. updates its volatility estimates (1 s, 1 min, 1 h, 1 day scales) from the fair price it
   sees: the external reference where there is one (makers price off other venues), else
   the book's mid;
2. classifies the regime (intraday = hour scale, inter-day = day scale, BRIEF §2 table),
   which sets risk aversion γ, level size and level count;
3. measures its risk: recent loss (mark-to-market equity over a window), inventory against
   its limit, how one-sided its recent fills were, the short-scale volatility spike, and the
   depth the *other* participants offer near the mid against its maximum over the last
   seconds (when the rest of the book leaves at once there is no way to unload: to a maker
   already on the defensive, one maker's withdrawal is the next one's signal, so
   withdrawals cluster into a cliff);
   γ rises with that risk so quotes drift away *before* any hard trigger (WIDENING), up to
   ``max_half_spread_bps``: a desk quotes no wider than that;
4. if any trigger fires it cancels bids and asks together in the same step and WITHDRAWS.
   One trigger is the quoting model's own: when the volatility alone (without its own risk
   widening) asks for an Avellaneda–Stoikov half-spread beyond ``max_half_spread_bps``, quotes
   that far would never fill, and it stops quoting (SPREAD; BRIEF §2, "the rational form of
   withdraw all liquidity"). Makers that price off the same outside market reach that point
   together, so their exits cluster: the book's cliff comes from cancels, not from trades;
   withdrawn (for at least ``min_withdrawn_s``), it watches and re-enters (RETURNING,
   smaller and wider) only once loss, volatility and one-sided flow have fallen below their
   calm thresholds (hysteresis: calm thresholds are below the triggers), then QUOTING again
   when the regime is no longer crisis. Inventory at its limit does not keep it out: it
   returns quoting only the side that unloads it (the inventory and one-sided triggers fire
   only on flow that *adds* to its inventory);
5. quotes a ladder around the Avellaneda–Stoikov reservation price
   r = s − q·γ·σ²·τ with total spread γσ²τ + (2/γ)·ln(1 + γ/k) (price units in basis
   points of s; q in units of its level size; τ a rolling horizon; the skew never moves the
   near quote across the fair price), levels spaced outward, skipping the side that would
   push inventory past its limit. Quotes are post-only, so rebates come through the venue's
   real fee code.

A perpetual maker can lay inventory off on other venues (``outside_hedge_limit``): once its
net inventory passes a band it trades the excess outside at the outside price plus a cost,
booked in its own books only (the other venues are outside the simulation, as an
arbitrageur's other leg). A hedged maker's inventory and one-sided triggers read its *net*
inventory: flow it has laid off does not fill it up.

An optional delta hedge keeps a spot holding hedged with a perpetual short (seed 002):
when the perpetual position drifts from minus the spot holding by more than a band (e.g.
after ADL closed the short), it re-hedges with an IOC order, unless the book's spread is
wider than it will pay.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from cascadelab.agents.base import (
    NEVER,
    WATCH_EXTERNAL,
    WATCH_VENUE,
    Client,
    External,
    Observation,
    Requests,
    Schedule,
    Watch,
    check_params,
    orders,
)
from cascadelab.agents.volatility import MultiScaleVolatility, Regime, regime
from cascadelab.records import FLAG_REDUCE_ONLY, ORDER_REQUEST, STP, TIF, AccountType, Op
from cascadelab.units import MONEY_SCALE, SECOND_NS
from cascadelab.venue.feed import DEPTH_BPS, MarketData

MAX_SHIFT_BPS = 3_000.0
"""A bound on the half-spread (basis points): quotes stay within ±60% of the fair price."""


def _window_max_push(q: deque[tuple[int, float]], now: int, value: float, horizon_ns: int) -> None:
    """Add ``(now, value)`` to a monotonic queue whose front is the maximum over the last ``horizon_ns``.

    Values only decrease from front to back, so the maximum of the window is read in O(1) and each
    sample is pushed and popped once.
    """
    while q and q[-1][1] <= value:
        q.pop()
    q.append((now, value))
    while q[0][0] < now - horizon_ns:
        q.popleft()


def _ladder_side(
    prices: list[float], buy: bool, notional: float, tick: float, lot: float, room: float
) -> tuple[list[int], list[int]]:
    """One side of the ladder (best level first) as (price ticks, lots) of the levels it rests.

    Prices go down to a tick (bids) or up to one (asks); each level is ``notional`` in whole lots
    (at least one), cut so that all of the side filling adds at most ``room`` of notional (the
    better levels count first). A level priced at or below zero, or left with no size, is not sent.
    """
    ticks: list[int] = []
    sizes: list[int] = []
    filled = 0.0  # notional of the better levels
    floor, ceil = math.floor, math.ceil
    for px in prices:
        t = floor(px / tick) if buy else ceil(px / tick)
        if t <= 0:
            continue  # adds nothing to the better levels' notional
        lot_value = t * tick * lot
        lots = floor(notional / lot_value)
        if lots < 1:
            lots = 1
        value = lots * lot_value
        filled += value
        left = room - (filled - value)
        size = floor(left / lot_value) if left > 0.0 else 0
        if size > lots:
            size = lots
        if size > 0:
            ticks.append(t)
            sizes.append(size)
    return ticks, sizes


class MakerState(IntEnum):
    """What a market maker is doing."""

    QUOTING = 0
    WIDENING = 1  # quoting, but risk has raised γ: quotes drift away
    WITHDRAWN = 2  # no quotes: a trigger fired
    RETURNING = 3  # back after calm, smaller and wider


class Trigger(IntEnum):
    """Why a maker withdrew (or widened)."""

    NONE = 0
    LOSS = 1  # loss over the window above the limit
    INVENTORY = 2  # inventory at its limit with one-sided flow
    ONE_SIDED_FILLS = 3  # recent fills one-sided above the threshold, filling its inventory up fast
    VOLATILITY = 4  # short-scale volatility spike
    LIQUIDITY = 5  # the others' depth near the mid collapsed within seconds: no way to unload
    SPREAD = 6  # its optimal (Avellaneda–Stoikov) half-spread is wider than it will quote: quotes that far never fill


@dataclass
class RegimeStyle:
    """How a regime quotes: γ multiplier, level size multiplier, level count multiplier."""

    gamma: float
    size: float
    levels: float


DEFAULT_STYLES = {
    Regime.STABLE: RegimeStyle(1.0, 1.0, 1.0),  # large size, very tight spread
    Regime.RANGING: RegimeStyle(1.5, 1.0, 1.5),  # wider spread, large size (averaging ammunition), more levels
    Regime.TRENDING: RegimeStyle(1.0, 0.7, 1.3),  # tight spread, smaller size spread over more levels
    Regime.CRISIS: RegimeStyle(4.0, 0.25, 1.5),  # much wider spread, small size
}


@dataclass
class MakerParams:
    """A market maker's parameters (every threshold is a parameter; units in the names)."""

    symbol: str
    level_notional: float = 50_000.0  # quote notional per level in the stable regime
    levels: int = 10  # per side in the stable regime
    level_step_bps: float = 8.0  # distance between levels (grows by 1.25x per level)
    gamma: float = 0.02  # risk aversion, 1/bps
    k: float = 0.5  # order-arrival decay, 1/bps
    horizon_s: float = 60.0  # rolling A–S horizon T − t
    daily_sigma: float = 0.03  # prior daily volatility
    min_half_spread_bps: float = 1.0
    inventory_limit: float = 1_000_000.0  # notional
    requote_ms: int = 1_000
    requote_move_bps: float = 3.0  # a fair-price move that wakes it between requotes
    # triggers (withdraw) and calm thresholds (return): calm < trigger is the hysteresis
    loss_window_s: float = 60.0
    loss_limit: float = 50_000.0  # loss over the window (quote units) that withdraws
    calm_loss: float = 5_000.0  # loss over the window below which it may return
    one_sided_share: float = 0.9  # fills on one side over the window
    one_sided_min_fills: int = 30
    calm_one_sided_share: float = 0.7
    one_sided_fill_share: float = 0.25  # ...and filled it this share of its inventory limit, net, within the window (and kept)
    vol_spike_ratio: float = 8.0  # 1 min σ over the prior (the fast scale's spike)
    calm_vol_ratio: float = 2.0
    # the others' depth (the book's depth in the band minus its own quotes) falling below this share of its maximum
    # over the window withdraws: when the rest of the book leaves, there is no way to unload (0 switches it off);
    # not part of the calm test, so a maker's return never waits on the others' return
    liquidity_drop: float = 0.5
    liquidity_window_s: float = 20.0
    liquidity_band_bps: int = 500  # one of the feed's bands (20, 100, 200, 500): wider than its ladder: widening is not leaving
    max_half_spread_bps: float = 50.0  # the widest half-spread it quotes (widening stops here); volatility asking more: SPREAD
    min_withdrawn_s: float = 30.0  # a withdrawal lasts at least this long (a desk does not flap in and out each second)
    widen_slope: float = 1.0  # γ multiplier per unit of risk score above 1
    max_gamma_multiplier: float = 50.0
    unwind_fraction: float = 0.1  # withdrawn with inventory: this share of it is sold (bought) back per wake...
    unwind_slippage_bps: float = 50.0  # ...with an IOC no further than this from the fair price
    return_size: float = 0.5  # size multiplier while RETURNING
    return_gamma: float = 2.0
    anchor_external: bool = True  # fair price from the external reference when there is one
    stress_symbol: str | None = None  # a desk-wide risk signal: this instrument's outside volatility counts too
    stress_daily_sigma: float = 0.02  # its prior daily volatility
    inventory_target_base: float = 0.0  # spot books: the base holding it aims at
    # cross-venue hedging: inventory beyond ``outside_hedge_band`` x inventory_limit is laid off on other venues at the
    # outside price (its external reference) plus a cost, up to this notional held outside (0: it hedges nowhere else)
    outside_hedge_limit: float = 0.0
    outside_hedge_band: float = 0.2
    outside_hedge_cost_bps: float = 5.0
    hedge_symbol: str | None = None  # a perpetual that hedges a spot holding (seed 002)
    hedge_asset: str | None = None
    hedge_band: float = 0.1  # re-hedge when |perp + spot| > band x spot
    hedge_max_spread_bps: float = 200.0
    styles: dict[Regime, RegimeStyle] = field(default_factory=lambda: dict(DEFAULT_STYLES))

    def __post_init__(self) -> None:
        positive = ("level_notional", "levels", "level_step_bps", "gamma", "k", "horizon_s", "daily_sigma", "inventory_limit",
                    "requote_ms", "requote_move_bps", "loss_window_s", "loss_limit", "one_sided_min_fills", "vol_spike_ratio",
                    "stress_daily_sigma", "liquidity_window_s", "max_half_spread_bps")  # fmt: skip
        check_params(
            self,
            positive,
            (
                "min_half_spread_bps",
                "calm_loss",
                "calm_vol_ratio",
                "widen_slope",
                "inventory_target_base",
                "liquidity_drop",
                "min_withdrawn_s",
                "one_sided_fill_share",
                "outside_hedge_limit",
                "outside_hedge_band",
                "outside_hedge_cost_bps",
            ),
        )
        if self.max_half_spread_bps < self.min_half_spread_bps:
            raise ValueError(f"max_half_spread_bps: must be at least min_half_spread_bps ({self.min_half_spread_bps:g}), "
                             f"got {self.max_half_spread_bps:g}: it could never quote")  # fmt: skip
        if self.liquidity_drop >= 1.0:
            raise ValueError(f"liquidity_drop: must be in [0, 1) (0 switches the trigger off), got {self.liquidity_drop}")
        if self.liquidity_band_bps not in tuple(int(x) for x in DEPTH_BPS):
            bands = DEPTH_BPS.tolist()
            raise ValueError(f"liquidity_band_bps: must be one of the feed's bands {bands}, got {self.liquidity_band_bps}")


class MarketMaker:
    """One market maker on one instrument (see the module docstring)."""

    account_type = AccountType.MARKET_MAKER

    def __init__(self, name: str, account: int, params: MakerParams, latency_ns: int = 5_000_000, jitter_ns: int = 5_000_000):
        self.name = name
        self.accounts = np.array([account], np.int64)
        self.p = params
        self.latency_ns = int(latency_ns)
        self.jitter_ns = int(jitter_ns)
        self.schedule = Schedule(params.requote_ms * 1_000_000)
        self.vol = MultiScaleVolatility(params.daily_sigma)
        self.state = MakerState.QUOTING
        self.reason = Trigger.NONE
        self.regime = Regime.STABLE
        self.gamma_multiplier = 1.0
        self.instrument = -1
        self.quoted_fair = math.nan
        self.has_quotes = False
        self.hedging = True  # re-hedges by its own rule (off while its starting hedge is booked by the scenario)
        self.equity_hist: deque[tuple[int, float]] = deque()  # window maxima first (a monotonic queue) and the latest
        self.fill_hist: deque[tuple[int, int, float]] = deque()  # (ts, +1 bought / -1 sold, signed notional)
        self._net_filled = 0.0  # signed notional filled over the window (bought > 0)
        self.others_hist: deque[tuple[int, float]] = deque()  # others' depth + traded total: window maxima first
        self._others_now = math.nan
        self._traded_now = 0.0
        self._withdrawn_ns = 0  # when it last withdrew
        self._watch_key: tuple = ()
        self._steps: dict[int, list[float]] = {}
        self._band_j = int(np.searchsorted(DEPTH_BPS, params.liquidity_band_bps))  # its band's index in the feed
        self._watch: list[Watch] = []
        self._buys = 0
        self._equity_now = 0.0
        self.inventory = 0.0  # base units, net: on the venue (perp position, or spot holding minus target) and outside
        self.venue_inventory = 0.0  # base units on the venue alone
        self.outside_position = 0.0  # base units held on other venues (its cross-venue hedge)
        self.outside_cash = 0.0  # quote units paid (-) or received (+) for it there
        self.pnl = 0.0  # equity change since the first wake
        self._equity0: float | None = None
        self._hedge_k = -1
        self._tick = self._lot = math.nan  # its book's tick and lot (set at the first wake, with ``instrument``)
        self._is_perp = False
        self._base = self._quote = ""
        self._fair_source = WATCH_VENUE
        self._stress_b = -1
        self._quoted_key: tuple = ()
        self.stress_vol = MultiScaleVolatility(params.stress_daily_sigma)
        self.transitions: list[tuple[int, int, int, dict[str, float]]] = []  # (ns, new state, reason, measures)
        self.wake_on_fills = False  # fills are read at the next scheduled or price-driven wake
        self.wake_on_news = True
        self.reads = frozenset({"fills"})  # of its own records it reads only fills

    # --- the protocol ---------------------------------------------------------------------------
    def wake_at(self) -> int:
        """Next scheduled requote."""
        return self.schedule.next_ns

    def watch(self) -> list[Watch]:
        """Woken early when its fair price moves by more than ``requote_move_bps`` from the last quotes."""
        if self.instrument < 0 or not self.has_quotes or not math.isfinite(self.quoted_fair):
            return []
        key = (self.instrument, self._fair_source, self.quoted_fair)
        if key != self._watch_key:  # the same band as last time: the same (immutable) Watch
            d = self.p.requote_move_bps / 1e4
            self._watch_key = key
            self._watch = [Watch(self.instrument, self._fair_source, self.quoted_fair * (1 - d), self.quoted_fair * (1 + d))]
        return self._watch

    def act(self, obs: Observation, client: Client) -> Requests:
        """Update measures, decide the state, and requote (or withdraw)."""
        p = self.p
        m = obs.market
        if self.instrument < 0:
            self._bind(m)
        b = self.instrument
        now = obs.now_ns
        self.schedule.advance(now)
        fair = self._fair(m, obs.external)
        if math.isfinite(fair):
            self.vol.update(now, fair)
        if self._stress_b >= 0:
            ref = float(obs.external.reference[self._stress_b])
            if math.isfinite(ref):
                self.stress_vol.update(now, ref)
        self._measure(obs, client, fair)
        self._decide(now)
        out = [self._hedge(obs, client)] if p.hedge_symbol else []
        if self.state == MakerState.WITHDRAWN or not math.isfinite(fair):
            if self.has_quotes:
                out.append(Requests(orders(self.accounts[0], b, 0, 0, kind=Op.CANCEL_ALL)))
                self.has_quotes = False
            self.quoted_fair = math.nan
            if math.isfinite(fair):
                out.append(self._unwind(m, fair))
            return Requests.concat(out)
        key = (self.state, self.regime, round(self.gamma_multiplier, 2), round(self.inventory, 9))
        if self.has_quotes and key == self._quoted_key and abs(fair / self.quoted_fair - 1.0) * 1e4 < 0.25 * p.requote_move_bps:
            return Requests.concat(out)  # nothing it quotes on has changed: the quotes stand
        out.append(self._quotes(m, fair))
        self.quoted_fair = fair
        self._quoted_key = key
        self.has_quotes = True
        return Requests.concat(out)

    def _bind(self, m: MarketData) -> None:
        """At the first wake: its instruments' venue indices and the constants of its book (tick, lot, kind, assets)."""
        p = self.p
        b = self.instrument = m.index(p.symbol)
        if p.hedge_symbol:
            self._hedge_k = m.index(p.hedge_symbol)
        if p.stress_symbol:
            self._stress_b = m.index(p.stress_symbol)
        self._tick, self._lot = float(m.tick[b]), float(m.lot[b])
        self._is_perp = bool(m.is_perp[b])
        self._base, self._quote = m.base[b], m.quote[b]

    # --- measures -------------------------------------------------------------------------------
    def _fair(self, m: MarketData, ext: External) -> float:
        b = self.instrument
        ref = float(ext.reference[b]) if b < len(ext.reference) else math.nan
        if self.p.anchor_external and math.isfinite(ref) and ref > 0:
            self._fair_source = WATCH_EXTERNAL
            return ref
        self._fair_source = WATCH_VENUE
        return float(m.reference()[b])

    def _measure(self, obs: Observation, client: Client, fair: float) -> None:
        p, now = self.p, obs.now_ns
        b = self.instrument
        if len(obs.fills):
            self._add_fills(obs.fills)
        horizon = int(p.loss_window_s * SECOND_NS)
        while self.fill_hist and self.fill_hist[0][0] < now - horizon:
            _, s, x = self.fill_hist.popleft()
            self._buys -= s > 0
            self._net_filled -= x
        if not self.fill_hist:
            self._net_filled = 0.0  # no drift from float sums over a long run
        if self._is_perp:
            self.venue_inventory = client.position(b) * self._lot
        else:
            self.venue_inventory = client.balance(self._base) / 1e8 - p.inventory_target_base
        if p.outside_hedge_limit > 0:
            self._hedge_outside(obs.external.reference)
        self.inventory = self.venue_inventory + self.outside_position
        equity = self._mark_to_market(obs, client)
        if self._equity0 is None:
            self._equity0 = equity
        self.pnl = equity - self._equity0
        self._equity_now = equity
        _window_max_push(self.equity_hist, now, equity, horizon)
        self._fair_now = fair
        if p.liquidity_drop > 0:
            self._measure_others(obs.market, client, now)

    def _add_fills(self, fills: np.ndarray) -> None:
        """Its fills on its instrument since the last wake into the window: (ts, +1 bought / -1 sold, signed notional)."""
        b, me = self.instrument, int(self.accounts[0])
        unit = self._tick * self._lot  # quote per tick-lot
        cols = (fills[c].tolist() for c in ("ts", "instrument", "taker_account", "aggressor", "price", "qty"))
        for ts, k, taker, aggressor, price, qty in zip(*cols, strict=True):
            if k != b:
                continue
            side = aggressor if taker == me else -aggressor
            value = side * float(price) * qty * unit
            self.fill_hist.append((ts, side, value))
            self._buys += side > 0
            self._net_filled += value

    def _measure_others(self, m: MarketData, client: Client, now: int) -> None:
        """The depth the rest of the book offers in the band (its own quotes taken out), and how much of it left.

        Depth that trades consumed is not depth that left: the history keeps ``others + V`` (V the
        running total traded on the instrument, from the public tape), so a sweep that eats the
        book lowers ``others`` and raises ``V`` alike. Left = the window's highest ``others + V``
        minus ``V`` now: what the others offered then, less what has traded since.
        """
        b, p = self.instrument, self.p
        j = self._band_j
        own_b, own_a = client.resting_depth(b, p.liquidity_band_bps)
        others = max(0.0, float(m.depth.item(b, j, 0) + m.depth.item(b, j, 1) - own_b - own_a) / MONEY_SCALE)
        traded = float(m.volume[b]) / MONEY_SCALE if len(m.volume) > b else 0.0
        self._others_now = others
        self._traded_now = traded
        _window_max_push(self.others_hist, now, others + traded, int(p.liquidity_window_s * SECOND_NS))

    def _hedge_outside(self, ext: np.ndarray) -> None:
        """Lay inventory off on other venues: when the net exceeds its band, trade outside at the outside price plus cost.

        The other venues are outside the simulation (as an arbitrageur's other leg): nothing is
        booked on this venue; the maker keeps the outside position and the cash it paid in its
        own books, and values them at the outside price. It hedges back to flat, within its
        outside limit; beyond that limit the inventory stays with it on this venue.
        """
        p, b = self.p, self.instrument
        px = float(ext[b]) if b < len(ext) else math.nan
        if not (math.isfinite(px) and px > 0):
            return  # no outside price: nowhere to hedge
        net = self.venue_inventory + self.outside_position
        if abs(net) * px <= p.outside_hedge_band * p.inventory_limit:
            return
        cap = p.outside_hedge_limit / px
        qty = min(max(-self.venue_inventory, -cap), cap) - self.outside_position  # > 0: buys outside
        if qty == 0.0:
            return
        self.outside_position += qty
        self.outside_cash -= qty * px * (1.0 + math.copysign(p.outside_hedge_cost_bps / 1e4, qty))

    def _mark_to_market(self, obs: Observation, client: Client) -> float:
        """Its book value at fair prices (no collateral haircuts): cash, the base it quotes, positions' PnL, the outside hedge."""
        m, b = obs.market, self.instrument
        ext = obs.external.reference
        ref = m.reference()

        def fair_of(j: int) -> float:
            x = float(ext[j]) if j < len(ext) else math.nan
            return x if math.isfinite(x) and x > 0 else float(ref[j])

        value = client.balance(self._quote) / 1e8
        if self.outside_position or self.outside_cash:
            px = fair_of(b)
            value += self.outside_cash + (self.outside_position * px if math.isfinite(px) else 0.0)
        if not self._is_perp:
            px = fair_of(b)
            if math.isfinite(px):
                value += client.balance(self._base) / 1e8 * px
        for k in (b, self._hedge_k):
            if k >= 0 and m.is_perp[k]:
                pos = client.position(k)
                px = fair_of(k) if pos else math.nan
                if math.isfinite(px):
                    lot = self._lot if k == b else float(m.lot[k])
                    value += pos * lot * px - client.position_cost(k) / 1e8
        return value

    def measures(self) -> dict[str, float]:
        """The maker's current risk measures (observable; what its triggers read)."""
        loss = self.equity_hist[0][1] - self._equity_now if self.equity_hist else 0.0
        n = len(self.fill_hist)
        buys = self._buys
        share = max(buys, n - buys) / n if n else 0.0
        fair = getattr(self, "_fair_now", math.nan)
        inv = abs(self.inventory) * (fair if math.isfinite(fair) else 0.0)
        # what the others offered at the window's high, less what has traded since (depth trades took did not leave)
        top = self.others_hist[0][1] - self._traded_now if self.others_hist else 0.0
        # a book the others never filled beyond one of its own levels carries no signal
        liquidity = self._others_now / top if top >= self.p.level_notional and math.isfinite(self._others_now) else 1.0
        return {
            "loss": loss,
            "one_sided_share": share,
            "fills": float(n),
            "net_filled": abs(self._net_filled),
            # 1 when the window's net fills grew its inventory (flow it is absorbing), 0 when they unloaded it
            "adding": float(self._net_filled * self.inventory > 0 or (self.inventory == 0 and self._net_filled != 0)),
            "inventory_notional": inv,
            "vol_ratio": max(self.vol.ratio(1), self.stress_vol.ratio(1) if self._stress_b >= 0 else 0.0),
            "others_depth": self._others_now,
            "others_depth_ratio": liquidity,
        }

    def _decide(self, now: int) -> None:
        before = self.state
        self._decide_state(now)
        if self.state != before:
            self.transitions.append((now, int(self.state), int(self.reason), self.measures()))

    def _decide_state(self, now: int) -> None:
        p = self.p
        x = self.measures()
        self.regime = regime(self.vol.ratio(2), self.vol.ratio(3))
        # risk score: how close the measures are to their triggers (1 = at the calm line); γ rises with it
        score = max(x["vol_ratio"] / p.calm_vol_ratio, x["loss"] / max(p.calm_loss, 1.0), 0.0)
        self.gamma_multiplier = min(p.max_gamma_multiplier, 1.0 + p.widen_slope * max(0.0, score - 1.0))
        fired = Trigger.NONE
        if x["loss"] > p.loss_limit:
            fired = Trigger.LOSS
        elif x["inventory_notional"] >= p.inventory_limit and x["one_sided_share"] >= p.one_sided_share and x["adding"]:
            fired = Trigger.INVENTORY  # at its limit and the flow keeps adding
        elif (
            x["fills"] >= p.one_sided_min_fills
            and x["one_sided_share"] >= p.one_sided_share
            and x["net_filled"] >= p.one_sided_fill_share * p.inventory_limit
            and x["inventory_notional"] >= p.one_sided_fill_share * p.inventory_limit
            and x["adding"]
        ):
            fired = Trigger.ONE_SIDED_FILLS  # one-sided flow filled its inventory up fast (and it is still there: not hedged)
        elif x["vol_ratio"] >= p.vol_spike_ratio:
            fired = Trigger.VOLATILITY
        elif self.state != MakerState.WITHDRAWN and self.half_spread_bps(widened=False) > p.max_half_spread_bps:
            fired = Trigger.SPREAD  # the spread the market's volatility asks for is wider than any quote that would fill
        elif p.liquidity_drop > 0 and x["others_depth_ratio"] < p.liquidity_drop and self.state != MakerState.QUOTING:
            fired = Trigger.LIQUIDITY  # only a maker already on the defensive reads the others' exit as its own signal
        calm = (
            x["loss"] <= p.calm_loss
            and x["vol_ratio"] <= p.calm_vol_ratio
            and (x["fills"] < p.one_sided_min_fills or x["one_sided_share"] <= p.calm_one_sided_share)
        )
        if self.state == MakerState.WITHDRAWN:
            # back only when the spread it would quote on return is one it is willing to quote (else it would leave again)
            back = calm and self.half_spread_bps(MakerState.RETURNING, widened=False) <= p.max_half_spread_bps
            if back and now - self._withdrawn_ns >= p.min_withdrawn_s * SECOND_NS:
                self.state, self.reason = MakerState.RETURNING, Trigger.NONE
                # the others' depth is measured afresh from its return: the depth it saw before it left is no
                # reference for a book everyone left (else it would leave again at once, or wait on the others)
                self.others_hist.clear()
        elif fired != Trigger.NONE:
            self.state, self.reason = MakerState.WITHDRAWN, fired
            self._withdrawn_ns = now
        elif self.state == MakerState.RETURNING and calm and self.regime != Regime.CRISIS:
            self.state = MakerState.QUOTING  # back to full quoting once calm outside a crisis regime
        if self.state in (MakerState.QUOTING, MakerState.WIDENING):
            self.state = MakerState.WIDENING if self.gamma_multiplier > 1.5 else MakerState.QUOTING
            if self.state == MakerState.QUOTING:
                self.reason = Trigger.NONE
            elif self.reason == Trigger.NONE:
                self.reason = Trigger.VOLATILITY if x["vol_ratio"] / p.calm_vol_ratio >= score else Trigger.LOSS

    # --- quotes --------------------------------------------------------------------------------------
    def _gamma(self, state: MakerState, widened: bool = True) -> float:
        """Risk aversion γ (1/bps) in ``state``: the regime's style, the return's caution, and (``widened``) its risk widening."""
        p = self.p
        gamma = p.gamma * p.styles[self.regime].gamma * (self.gamma_multiplier if widened else 1.0)
        return gamma * p.return_gamma if state == MakerState.RETURNING else gamma

    def half_spread_bps(self, state: MakerState | None = None, widened: bool = True) -> float:
        """The Avellaneda–Stoikov optimal half-spread (bps) at its current σ, quoting in ``state`` (default: its own).

        Total spread γσ²τ + (2/γ)·ln(1 + γ/k), σ the minute-scale volatility in bps per √s. With
        ``widened=False`` γ leaves out the maker's own risk widening (its losses and volatility
        score): the spread the market's volatility alone asks for, the same for every maker with
        the same parameters. When that outgrows ``max_half_spread_bps`` the maker does not quote at
        all (the SPREAD trigger: quotes that far never fill; BRIEF §2).
        """
        p = self.p
        gamma = self._gamma(self.state if state is None else state, widened)
        sigma_bps = self.vol.sigma(1) * 1e4  # per √s, minute scale
        spread = gamma * sigma_bps**2 * p.horizon_s + (2.0 / gamma) * math.log1p(gamma / p.k)
        return max(spread / 2.0, p.min_half_spread_bps)

    def quote_prices(self, fair: float) -> tuple[list[float], list[float], float]:
        """(bid prices, ask prices, notional per level) of the ladder at ``fair`` (floats, before ticks; best level first)."""
        p = self.p
        style = p.styles[self.regime]
        gamma = self._gamma(self.state)
        size = style.size * (p.return_size if self.state == MakerState.RETURNING else 1.0)
        sigma_bps = self.vol.sigma(1) * 1e4  # per √s, minute scale
        risk = gamma * sigma_bps**2 * p.horizon_s
        unit = max(p.level_notional * size / fair, 1e-12)  # base units per level
        q = self.inventory / unit
        half = min(self.half_spread_bps(), p.max_half_spread_bps, MAX_SHIFT_BPS)
        # the reservation price's skew moves the ladder at most until its near side reaches the fair price: a long maker's
        # best ask no lower than fair (it sells at the market, not through it), its bids no further than two half-spreads
        r_bps = min(max(-q * risk, -half), half)
        n = max(1, round(p.levels * style.levels))
        steps = self._steps.get(n)
        if steps is None:  # cumulative distance of each level (the same for a given level count)
            steps = self._steps[n] = (p.level_step_bps * (1.25 ** np.arange(n) - 1.0) / 0.25).tolist()
        low, high = r_bps - half, r_bps + half
        bid = [fair * (1.0 + (low - d) / 1e4) for d in steps]
        ask = [fair * (1.0 + (high + d) / 1e4) for d in steps]
        return bid, ask, p.level_notional * size

    def _quotes(self, m: MarketData, fair: float) -> Requests:
        b = self.instrument
        bid, ask, notional = self.quote_prices(fair)
        tick, lot = self._tick, self._lot
        inv_notional = self.inventory * fair
        # its (net) inventory stays within its limit, and on this venue it carries at most that limit plus what it can
        # hedge outside (its margin is sized for that): the side that adds is cut to the room left, even if all of it fills
        venue_notional = self.venue_inventory * fair
        capacity = self.p.inventory_limit + self.p.outside_hedge_limit
        room_b = min(self.p.inventory_limit - inv_notional, capacity - venue_notional)
        room_a = min(self.p.inventory_limit + inv_notional, capacity + venue_notional)
        ticks_b, lots_b = _ladder_side(bid, True, notional, tick, lot, room_b)
        ticks_a, lots_a = _ladder_side(ask, False, notional, tick, lot, room_a)
        nb = len(ticks_b)
        out = np.zeros(1 + nb + len(ticks_a), ORDER_REQUEST)
        out["account"] = self.accounts[0]
        out["instrument"] = b
        out["kind"][0] = Op.CANCEL_ALL
        out["side"][1 : 1 + nb] = 1
        out["side"][1 + nb :] = -1
        out["price"][1:] = ticks_b + ticks_a
        out["qty"][1:] = lots_b + lots_a
        out["tif"][1:] = TIF.POST_ONLY
        out["stp"][1:] = STP.CANCEL_RESTING
        return Requests(out)

    def _unwind(self, m: MarketData, fair: float) -> Requests:
        """Withdrawn, it works its inventory down: an IOC for a share of it, no worse than its slippage limit."""
        p, b = self.p, self.instrument
        lot, tick = self._lot, self._tick
        lots = int(abs(self.inventory) * p.unwind_fraction / lot)
        if lots <= 0 or abs(self.inventory) * fair < 0.05 * p.inventory_limit:
            return Requests()
        side = -1 if self.inventory > 0 else 1
        limit = fair * (1 - side * p.unwind_slippage_bps / 1e4)
        ticks = math.ceil(limit / tick) if side < 0 else math.floor(limit / tick)
        touch = int(m.best_bid[b]) if side < 0 else int(m.best_ask[b])
        if touch <= 0 or (touch < ticks if side < 0 else touch > ticks):
            return Requests()  # nothing rests within its limit: an IOC would only be cancelled
        flags = FLAG_REDUCE_ONLY if self._is_perp else 0
        return Requests(orders(self.accounts[0], b, side, lots, max(1, ticks), Op.LIMIT, TIF.IOC, flags))

    # --- the hedge -----------------------------------------------------------------------------------
    def _hedge(self, obs: Observation, client: Client) -> Requests:
        p = self.p
        k = self._hedge_k
        m = obs.market
        if k < 0 or not p.hedge_asset or not self.hedging:
            return Requests()
        spot = client.balance(p.hedge_asset) / 1e8
        lot = float(m.lot[k])
        perp = client.position(k) * lot
        gap = perp + spot  # > 0: under-hedged (short too small)
        if spot <= 0 or abs(gap) <= p.hedge_band * spot:
            return Requests()
        spread = float(m.spread_bps()[k])
        if not math.isfinite(spread) or spread > p.hedge_max_spread_bps:
            return Requests()  # it will not pay a broken book's spread; it waits
        lots = int(abs(gap) / lot)
        if lots <= 0:
            return Requests()
        side = -1 if gap > 0 else 1
        flags = FLAG_REDUCE_ONLY if side > 0 else 0
        return Requests(orders(self.accounts[0], k, side, lots, kind=Op.MARKET, tif=TIF.IOC, flags=flags))

    def status(self) -> tuple[int, int, float, float]:
        """(state, reason, inventory in base units, PnL in quote) for the recorder."""
        return int(self.state), int(self.reason), self.inventory, self.pnl


__all__ = ["DEFAULT_STYLES", "NEVER", "MakerParams", "MakerState", "MarketMaker", "RegimeStyle", "Trigger"]
