"""The market maker's spread cap, its SPREAD exit, the bound on its skew and its cross-venue hedge.

* Its quotes never sit wider than ``max_half_spread_bps`` from the fair price (plus its ladder):
  widening stops there. When the outside market's volatility alone asks for more, it withdraws
  (SPREAD), and makers pricing off the same outside market leave within a requote of each
  other: the book's cliff is cancels, not trades.
* However long it is, its best ask is never below the fair price (the skew does not sell
  through the market).
* A maker that hedges on other venues keeps quoting through one-sided flow that would fill an
  unhedged maker's inventory; its books value the outside leg at the outside price less the
  cost paid; past its outside limit the inventory stays with it and its triggers fire.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cascadelab.agents.market_maker import MakerParams, MakerState, MarketMaker, Trigger
from cascadelab.sim.loop import Simulation
from cascadelab.units import SECOND_NS
from test_agents import Taker, funded, market


def _params(**kw: float) -> MakerParams:
    """A BTC maker with a large inventory limit and loss limit (so that only the trigger under test fires)."""
    base = {"inventory_limit": 3_000_000, "daily_sigma": 0.02, "loss_limit": 2_000_000, "calm_loss": 200_000}
    return MakerParams("BTCUSDT", **(base | kw))  # type: ignore[arg-type]


def slide(t: int) -> float:
    """BTC flat for 2 minutes, then a steepening fall (15% over 5 minutes), then flat."""
    s = t / SECOND_NS
    x = min(max(s - 120.0, 0.0), 300.0) / 300.0
    return 100_000.0 * (1.0 - 0.15 * x * x)


def _quoted_spread_bps(v: object, account: int, fair: float) -> float:
    """The maker's own spread (its best ask less its best bid now resting) in bps of ``fair``; 0 with one side."""
    book = v.books[0]  # type: ignore[attr-defined]
    rows = [book.order(i) for i in book.open_orders(account)]
    bids = [o.price * 0.1 for o in rows if o is not None and o.side > 0]
    asks = [o.price * 0.1 for o in rows if o is not None and o.side < 0]
    return (min(asks) - max(bids)) / fair * 1e4 if bids and asks else 0.0


def test_quotes_stay_within_the_cap_and_makers_on_one_outside_market_leave_together_on_spread() -> None:
    v, world = market(slide)
    a, b = funded(v, 2)
    cap = 30.0
    makers = [
        MarketMaker(name, acct, _params(level_notional=100_000, max_half_spread_bps=cap, vol_spike_ratio=1e3, liquidity_drop=0.0))
        for name, acct in (("a", a), ("b", b))
    ]
    sim = Simulation(v, makers, world, seed=1)
    widest = 0.0
    binding = False  # its own risk widening asked for more than the cap while it still quoted
    for _ in range(int(600 / 0.1)):
        sim.step()
        fair = float(world.external.reference[0])
        for m in makers:
            if m.state != MakerState.WITHDRAWN and m.has_quotes and math.isfinite(fair):
                widest = max(widest, _quoted_spread_bps(v, int(m.accounts[0]), m.quoted_fair))
                binding |= m.half_spread_bps() > cap
    out = [next((ns for ns, st, why, _ in m.transitions if st == MakerState.WITHDRAWN), None) for m in makers]
    assert all(x is not None for x in out), "the steepening fall drives both out"
    reasons = [next(why for _, st, why, _ in m.transitions if st == MakerState.WITHDRAWN) for m in makers]
    assert reasons == [Trigger.SPREAD, Trigger.SPREAD]
    assert abs(out[0] - out[1]) <= 2 * SECOND_NS, "one outside market: they leave within a requote of each other"  # type: ignore[operator]
    # widening stopped at the cap: its own spread never wider than two capped half-spreads (plus a tick each side)
    assert binding and 2.0 < widest <= 2 * cap + 0.1, (binding, widest)
    # at its exit the volatility alone asked for more than the cap
    x = next(meas for _, st, _, meas in makers[0].transitions if st == MakerState.WITHDRAWN)
    assert x["vol_ratio"] > 1.0
    v.close()


def test_a_long_maker_never_offers_below_the_fair_price() -> None:
    v, world = market(lambda t: 100_000.0)
    mk, seller = funded(v, 2)
    maker = MarketMaker("mm", mk, _params(level_notional=50_000, gamma=5.0))
    taker = Taker(seller, 0, -1, 500)  # sells 50k of notional a second into its bids
    sim = Simulation(v, [maker, taker], world, seed=1)
    lowest_ask_bps = math.inf
    for _ in range(1200):
        sim.step()
        if maker.state != MakerState.WITHDRAWN and maker.has_quotes:
            book = v.books[0]
            asks = [o.price for o in (book.order(i) for i in book.open_orders(mk)) if o is not None and o.side < 0]
            if asks:
                lowest_ask_bps = min(lowest_ask_bps, (min(asks) * 0.1 - maker.quoted_fair) / maker.quoted_fair * 1e4)
    assert maker.inventory > 0, "it bought what the seller sold"
    assert lowest_ask_bps >= -1.0, f"a long maker's best ask went {lowest_ask_bps:.1f} bps through the fair price"
    v.close()


def _one_sided(outside_limit: float, lots: int = 200) -> tuple[MarketMaker, object]:
    v, world = market(lambda t: 100_000.0)
    mk, seller = funded(v, 2)
    params = MakerParams("BTCUSDT", level_notional=50_000, inventory_limit=300_000, daily_sigma=0.02,
                         outside_hedge_limit=outside_limit, outside_hedge_cost_bps=5.0)  # fmt: skip
    maker = MarketMaker("mm", mk, params)
    taker = Taker(seller, 0, -1, lots)  # 20k of notional a second (by default), for two minutes
    sim = Simulation(v, [maker, taker], world, seed=1)
    most = 0
    for _ in range(1200):
        sim.step()
        most = max(most, v.clearing.accounts.size[0, mk])
    # whatever the flow, it never holds more on the venue than its inventory limit plus its outside limit, give or take
    # what its previous quotes (sized to the room they had) could still fill before their replacement arrived
    assert most * 0.001 * 100_000 <= 300_000 + outside_limit + 50_000, most
    return maker, v


def test_a_hedged_maker_keeps_quoting_through_one_sided_flow_and_books_its_outside_leg() -> None:
    maker, v = _one_sided(outside_limit=10_000_000)
    assert not any(st == MakerState.WITHDRAWN for _, st, _, _ in maker.transitions), maker.transitions[-3:]
    assert maker.venue_inventory * 100_000 > 1_000_000, "it bought far past its inventory limit on the venue"
    assert maker.outside_position < 0 and abs(maker.inventory) * 100_000 <= 0.2 * 300_000 + 1e-6, "hedged back within its band"
    assert math.isclose(maker.inventory, maker.venue_inventory + maker.outside_position)
    # the outside leg's books: sold at the outside price less 5 bps; valued at the outside price
    sold = -maker.outside_position
    assert math.isclose(maker.outside_cash, sold * 100_000.0 * (1 - 5e-4), rel_tol=1e-9)
    v.close()  # type: ignore[attr-defined]


def test_past_its_outside_limit_the_inventory_stays_and_its_triggers_fire() -> None:
    _, v = _one_sided(outside_limit=200_000, lots=5_000)  # a seller that takes a whole ladder each second: cut to the room
    v.close()  # type: ignore[attr-defined]
    maker, v = _one_sided(outside_limit=200_000)
    assert -maker.outside_position * 100_000 <= 200_000 + 1e-6, "never more outside than its limit"
    out = [why for _, st, why, _ in maker.transitions if st == MakerState.WITHDRAWN]
    assert out and set(out) <= {Trigger.INVENTORY, Trigger.ONE_SIDED_FILLS}
    v.close()  # type: ignore[attr-defined]


def test_new_maker_parameters_are_checked() -> None:
    for bad in ({"max_half_spread_bps": 0.0}, {"outside_hedge_limit": -1.0}, {"outside_hedge_cost_bps": math.nan},
                {"liquidity_band_bps": 300}, {"max_half_spread_bps": 0.5}):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad))):
            MakerParams("BTCUSDT", **bad)  # type: ignore[arg-type]
    assert MakerParams("BTCUSDT").liquidity_band_bps == 500
    assert np.isfinite(MakerParams("BTCUSDT", outside_hedge_limit=1e6).outside_hedge_limit)


def test_the_side_that_adds_is_cut_to_the_room_left() -> None:
    """Quotes that could all fill add at most the room under its limits (net inventory; venue inventory + outside limit)."""
    v, world = market(lambda t: 100_000.0)
    (mk,) = funded(v, 1)
    maker = MarketMaker("mm", mk, _params(level_notional=50_000, inventory_limit=300_000, outside_hedge_limit=200_000))
    sim = Simulation(v, [maker], world, seed=1)
    for _ in range(20):
        sim.step()
    m, fair = v.market_data, 100_000.0

    def added(venue_btc: float, net_btc: float) -> tuple[float, float]:
        maker.venue_inventory, maker.inventory = venue_btc, net_btc
        q = maker._quotes(m, fair).orders[1:]
        value = q["price"] * 0.1 * q["qty"] * 0.001
        return float(value[q["side"] > 0].sum()), float(value[q["side"] < 0].sum())

    bids, asks = added(0.0, 0.0)  # flat: each side up to its net limit (300k of a 500k ladder)
    assert 290_000 < bids <= 300_000 and 290_000 < asks <= 300_000
    bids, asks = added(4.6, 0.0)  # 460k on the venue (hedged outside): 40k of room under 500k
    assert 30_000 < bids <= 40_000 and 290_000 < asks <= 300_000
    bids, asks = added(1.0, 2.2)  # net 220k of 300k: 80k more it may buy
    assert 70_000 < bids <= 80_000
    bids, asks = added(-1.0, -3.0)  # short at its net limit: no asks; buying back has room for the whole ladder
    assert asks == 0 and bids > 450_000
    v.close()
