"""Each participant on its own against a small venue, through the simulation loop.

Only the outside world is scripted (external prices, news); every price on the venue's books
comes from the participants' orders. The market maker widens then withdraws on its own
triggers, cancelling both sides in the same step, and returns when calm; a looper's leverage
is the hand computation; an arbitrageur closes a gap until its capital is used, then stops;
a population opens its positions with exact conservation.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from cascadelab.agents.arbitrage import Arbitrageur, ArbParams
from cascadelab.agents.base import Client, Observation, Requests, Schedule, Watch, orders
from cascadelab.agents.loopers import LooperParams, Loopers
from cascadelab.agents.market_maker import MakerParams, MakerState, MarketMaker, Trigger
from cascadelab.agents.population import LeveragedTraders, TraderParams, book_legs
from cascadelab.clearing.collateral import CollateralAsset, fixed, from_book, from_index
from cascadelab.clearing.core import LoanTerms
from cascadelab.instruments import spot
from cascadelab.records import TIF, AccountType, CancelReason, Op
from cascadelab.sim.loop import Simulation
from cascadelab.sim.world import ScriptedWorld
from cascadelab.units import MONEY_SCALE, SECOND_NS
from cascadelab.venue import build

USDE = spot("USDEUSDT", "USDe", "USDT", "0.0001", "1")
COLLATERAL = [
    CollateralAsset.of("USDT", "1", fixed("1")),
    CollateralAsset.of("BTC", "0.95", from_index("BTC")),
    CollateralAsset.of("USDe", "0.9", from_book("USDEUSDT")),
]


def market(btc: object, usde: object = lambda t: 1.0) -> tuple:
    """A Binance-rules venue: BTC perpetual, USDe spot book; external BTC and USDe prices from paths."""
    v = build("binance", [("BTCUSDT", "0.1", "0.001")], [USDE], COLLATERAL, loan_terms=LoanTerms(650_000, 830_000))
    v.add_asset_index("BTC", {"external": Fraction(1)})
    world = ScriptedWorld(("BTCUSDT", "USDEUSDT"), {"BTCUSDT": btc, "USDEUSDT": usde}, {"BTC": btc})  # type: ignore[dict-item]
    return v, world


class Taker:
    """A scripted client (not a price path): sells ``lots`` at market every second while ``active``."""

    account_type = AccountType.RETAIL
    wake_on_fills = False
    wake_on_news = False
    latency_ns = 0
    jitter_ns = 0

    def __init__(self, account: int, instrument: int, side: int, lots: int) -> None:
        self.name = f"taker{account}"
        self.accounts = np.array([account], np.int64)
        self.instrument, self.side, self.lots = instrument, side, lots
        self.schedule = Schedule(SECOND_NS)
        self.active = True

    def wake_at(self) -> int:
        return self.schedule.next_ns

    def watch(self) -> list[Watch]:
        return []

    def act(self, obs: Observation, client: Client) -> Requests:
        self.schedule.advance(obs.now_ns)
        if not self.active:
            return Requests()
        return Requests(orders(self.accounts[0], self.instrument, self.side, self.lots, 0, Op.MARKET, TIF.IOC))


def funded(v: object, n: int) -> list[int]:
    """``n`` new accounts with 50M USDT each, margined at 2x on BTCUSDT."""
    ids = [int(x) for x in v.open_accounts(n)]  # type: ignore[attr-defined]
    for acct in ids:
        v.clearing.deposit(acct, "USDT", 50_000_000 * MONEY_SCALE)  # type: ignore[attr-defined]
    v.clearing.configure_positions("BTCUSDT", np.array(ids), 2, False)  # type: ignore[attr-defined]
    return ids


def wiggle(t: int) -> float:
    """BTC with a small wiggle: enough short-scale volatility to put a sensitive maker on the defensive."""
    import math

    return 100_000.0 * (1.0 + 0.0002 * math.sin(t / SECOND_NS / 7.0))


def test_maker_widens_withdraws_both_sides_at_once_and_returns_when_calm() -> None:
    def btc(t: int) -> float:  # flat, a 6% slide over 5 minutes, flat again
        s = t / SECOND_NS
        return 100_000.0 * (1.0 if s < 120 else max(0.94, 1.0 - 0.06 * (s - 120) / 300))

    v, world = market(btc)
    ch = v.clearing
    mk, taker = (int(x) for x in v.open_accounts(2))
    ch.deposit(mk, "USDT", 50_000_000 * MONEY_SCALE)
    ch.deposit(taker, "USDT", 50_000_000 * MONEY_SCALE)
    ch.configure_positions("BTCUSDT", np.array([mk, taker]), 2, False)
    maker = MarketMaker("mm", mk, MakerParams("BTCUSDT", level_notional=100_000, inventory_limit=3_000_000, daily_sigma=0.02,
                                               loss_limit=200_000, calm_loss=20_000))  # fmt: skip
    seller = Taker(taker, 0, -1, 50)  # a client selling into the slide (from 150 s to 420 s)
    seller.active = False
    sim = Simulation(v, [maker, seller], world, seed=1)
    states: list[tuple[int, MakerState, Trigger]] = []
    withdraw_step_cancels = None
    for _ in range(int(1200 / 0.1)):
        before = maker.state
        report = sim.step()
        if maker.state != before:
            states.append((sim.now_ns, maker.state, maker.reason))
        if before != MakerState.WITHDRAWN and maker.state == MakerState.WITHDRAWN and withdraw_step_cancels is None:
            withdraw_step_cancels = sim.now_ns
        if withdraw_step_cancels is not None and sim.now_ns == withdraw_step_cancels + 100_000_000:
            mine = report.cancels[(report.cancels["account"] == mk) & (report.cancels["reason"] == CancelReason.CANCEL_ALL)]
            assert set(mine["side"].tolist()) == {1, -1}, "a withdrawal cancels bids and asks together"
        seller.active = 150 * SECOND_NS <= sim.now_ns <= 420 * SECOND_NS
    seen = [s for _, s, _ in states]
    assert MakerState.WIDENING in seen, "risk raised gamma (quotes drifted away) before the hard trigger"
    assert MakerState.WITHDRAWN in seen
    first_withdraw = seen.index(MakerState.WITHDRAWN)
    assert MakerState.WIDENING in seen[:first_withdraw]
    assert states[first_withdraw][2] in (Trigger.VOLATILITY, Trigger.LOSS, Trigger.INVENTORY, Trigger.ONE_SIDED_FILLS)
    assert seen[-1] in (MakerState.QUOTING, MakerState.RETURNING, MakerState.WIDENING), "it came back once calm"
    assert MakerState.RETURNING in seen[first_withdraw:]
    assert maker.transitions and all(isinstance(x, dict) for _, _, _, x in maker.transitions)  # observable, with measures
    v.close()


def test_looper_leverage_is_the_hand_computation() -> None:
    v, world = market(lambda t: 100_000.0)
    ch = v.clearing
    mk, lp = (int(x) for x in v.open_accounts(2))
    ch.seed_lending_pool("USDT", 10**9 * MONEY_SCALE)
    ch.deposit(mk, "USDT", 10**7 * MONEY_SCALE)
    ch.deposit(mk, "USDe", 10**7 * MONEY_SCALE)
    mp = MakerParams("USDEUSDT", level_notional=200_000, daily_sigma=0.002, inventory_target_base=10**7,
                     inventory_limit=5_000_000, level_step_bps=2)  # fmt: skip
    maker = MarketMaker("usde-mm", mk, mp)
    loopers = Loopers("loopers", np.array([lp]), LooperParams(seeds={"BTC": 1.0}, seed_value_median=100_000, seed_value_sigma=0,
                                                              loops=(3, 3), target_ltv=(0.5, 0.5)), seed=3)  # fmt: skip
    sim = Simulation(v, [maker], world, seed=1)
    sim.run(3 * SECOND_NS)
    loopers.fund(v)
    sim.add_agent(loopers)  # type: ignore[arg-type]
    sim.run(60 * SECOND_NS)
    assert loopers.loops_done[0] == 3
    btc = ch.ledger.balance(lp, "BTC") / MONEY_SCALE
    usde = ch.ledger.balance(lp, "USDe") / MONEY_SCALE
    usdt = ch.ledger.balance(lp, "USDT") / MONEY_SCALE
    debt = ch.accounts.debt[ch.ledger.asset("USDT"), lp] / MONEY_SCALE
    pb, pu = ch.asset_price[ch.ledger.asset("BTC")] / MONEY_SCALE, ch.asset_price[ch.ledger.asset("USDe")] / MONEY_SCALE
    assets = btc * pb + usde * pu + usdt
    assert usde > 0 and debt > 0
    hand = assets / (assets - debt)
    got = float(loopers.effective_leverage(sim.clients[-1])[0])
    assert abs(got - hand) < 1e-9 * hand
    assert 1.5 < got < 2.5  # three loops at LTV 0.5 on 0.95 collateral: leverage near 2, which looks safe
    v.close()


def test_arbitrageur_closes_the_gap_until_its_capital_is_used_then_stops() -> None:
    v, world = market(lambda t: 100_000.0)
    ch = v.clearing
    arb, seller = (int(x) for x in v.open_accounts(2))
    ch.deposit(arb, "USDT", 300_000 * MONEY_SCALE)
    ch.deposit(seller, "USDe", 10_000_000 * MONEY_SCALE)
    b = v.index["USDEUSDT"]
    # the seller rests a wall of USDe at 0.97: well below the 1.00 it redeems for outside
    wall = orders(seller, b, -1, 2_000_000, 9_700, Op.LIMIT, TIF.GTC)
    v.submit_batch(wall)
    a = Arbitrageur("arb", arb, ArbParams("USDEUSDT", threshold_bps=50, clip_notional=50_000, transfer_delay_s=3_600, rest=False))
    sim = Simulation(v, [a], world, seed=2)
    sim.run(120 * SECOND_NS)
    bought = 10_000_000 * MONEY_SCALE - ch.ledger.balance(seller, "USDe")
    spent = 300_000 * MONEY_SCALE - ch.ledger.balance(arb, "USDT")
    assert bought > 0 and spent > 0
    assert ch.ledger.balance(arb, "USDT") < 50_000 * MONEY_SCALE  # its capital is used up ...
    assert a.capital_in_transit() > 250_000  # ... and on its way back, an hour later
    assert v.books[b].best_ask() == 9_700  # the gap stays open: it has stopped
    v.close()


def test_a_population_of_100k_accounts_opens_with_exact_conservation() -> None:
    v, _world = market(lambda t: 100_000.0)
    v.feed_index("BTCUSDT", "100000")
    v.feed_index("BTC", "100000")
    v.step(SECOND_NS)
    ids = v.open_accounts(100_000)
    tp = TraderParams(("BTCUSDT",), (1.0,), collateral={"USDT": 0.9, "BTC": 0.1})
    _pop, legs = LeveragedTraders.build("retail", v, ids, tp, seed=4)
    book_legs(v, legs)
    ch = v.clearing
    ch.check(replay_journal=True)
    size = ch.accounts.size[0, ids]
    assert (size != 0).sum() > 90_000 and size.sum() == 0
    assert 0.8 < (size > 0).sum() / (size != 0).sum() < 0.95  # most positions are long
    assert len(ch.full_breaching()) == 0  # every account starts healthy at its chosen leverage
    v.close()


def test_defenders_watch_their_isolated_position_and_a_calm_market_stays_calm() -> None:
    """Regression: isolated defenders read the account's cross figures (zero maintenance), so their trigger sat at the
    start price and they all sold in the first seconds of a calm market, crashing the thin altcoin books."""
    from cascadelab.records import AccountType
    from cascadelab.scenario.build import build
    from cascadelab.scenario.load import load

    b = build(load("calm", ["population.accounts=4000", "loopers.accounts=50", "noise.accounts=200",
                            "news_sellers.accounts=50", "run.duration_s=60"]))  # fmt: skip
    pop = b.groups["retail"][0]
    ch = b.venue.clearing
    before = ch.accounts.size[:, pop.accounts].copy()
    b.sim.run(b.sim.now_ns + 30 * SECOND_NS)
    iso = ch.accounts.isolated[:, pop.accounts].any(axis=0)
    defend = pop.behaviour == 1
    assert (iso & defend).sum() > 10  # the case exists
    moved = (ch.accounts.size[:, pop.accounts] != before).any(axis=0)
    assert not (moved & defend).any(), "a defender acted in a calm market before anything moved"
    assert int((ch.accounts.state[pop.accounts] != 0).sum()) == 0
    assert pop.account_type == AccountType.RETAIL


def test_agent_parameter_records_refuse_values_that_would_break_the_run() -> None:
    """Built directly from Python (no scenario schema), each record names the bad field at construction."""
    from cascadelab.agents import ArbParams, FundParams

    cases = [
        (lambda: MakerParams("X", gamma=0), "MakerParams.gamma"),
        (lambda: MakerParams("X", levels=0), "MakerParams.levels"),
        (lambda: MakerParams("X", k=float("nan")), "MakerParams.k"),
        (lambda: MakerParams("X", level_step_bps=-8), "MakerParams.level_step_bps"),
        (lambda: LooperParams(loops=(5, 2)), "LooperParams.loops"),
        (lambda: LooperParams(target_ltv=(1.5, 2)), "LooperParams"),
        (lambda: LooperParams(seeds={}), "LooperParams.seeds"),
        (lambda: ArbParams("X", clip_notional=0), "ArbParams.clip_notional"),
        (lambda: FundParams(leverage=0), "FundParams.leverage"),
    ]
    for make, field_name in cases:
        with pytest.raises(ValueError, match=field_name):
            make()


def test_a_defensive_maker_follows_the_others_out_a_calm_one_does_not() -> None:
    """When most of the others' depth leaves at once, a maker already widening withdraws (LIQUIDITY); one quoting calmly stays."""
    v, world = market(wiggle)
    big, defensive, calm = funded(v, 3)
    common = {"inventory_limit": 3_000_000, "daily_sigma": 0.02, "loss_limit": 200_000, "calm_loss": 20_000}
    m_big = MarketMaker("big", big, MakerParams("BTCUSDT", level_notional=300_000, min_withdrawn_s=1e6, **common))  # type: ignore[arg-type]
    m_def = MarketMaker("defensive", defensive, MakerParams("BTCUSDT", level_notional=100_000, calm_vol_ratio=0.2, **common))  # type: ignore[arg-type]
    m_calm = MarketMaker("calm", calm, MakerParams("BTCUSDT", level_notional=100_000, **common))  # type: ignore[arg-type]
    sim = Simulation(v, [m_big, m_def, m_calm], world, seed=1)
    for _ in range(600):  # a minute of quoting
        sim.step()
    assert m_def.state == MakerState.WIDENING and m_calm.state == MakerState.QUOTING
    assert m_def.measures()["others_depth_ratio"] > 0.9
    m_big.state, m_big.reason, m_big._withdrawn_ns = MakerState.WITHDRAWN, Trigger.LOSS, sim.now_ns  # the big desk leaves
    left = sim.now_ns
    for _ in range(50):
        sim.step()
    assert m_def.state == MakerState.WITHDRAWN and m_def.reason == Trigger.LIQUIDITY
    out_at = next(ns for ns, st, why, _ in m_def.transitions if st == MakerState.WITHDRAWN)
    assert out_at - left <= 2 * SECOND_NS, "it follows within its next requote or two"
    assert m_calm.state in (MakerState.QUOTING, MakerState.WIDENING), "a calm maker reads the exit as room, not a signal"
    for _ in range(100):  # no flapping: withdrawn at least min_withdrawn_s
        sim.step()
    assert m_def.state == MakerState.WITHDRAWN
    v.close()


def test_a_maker_out_on_liquidity_returns_once_calm_without_waiting_for_the_others() -> None:
    """Regression: the others' depth is no condition for returning (with a long window it used to keep it out for good)."""
    import math

    def btc(t: int) -> float:  # a wiggle for the first 70 s, then flat: volatility decays and the market turns calm
        s = t / SECOND_NS
        return 100_000.0 * (1.0 + (0.0002 * math.sin(s / 7.0) if s < 70 else 0.0))

    v, world = market(btc)
    big, defensive, calm = funded(v, 3)
    common = {"inventory_limit": 3_000_000, "daily_sigma": 0.02, "loss_limit": 200_000, "calm_loss": 20_000}
    m_big = MarketMaker("big", big, MakerParams("BTCUSDT", level_notional=300_000, min_withdrawn_s=1e6, **common))  # type: ignore[arg-type]
    m_def = MarketMaker("defensive", defensive, MakerParams("BTCUSDT", level_notional=100_000, calm_vol_ratio=0.2,  # type: ignore[arg-type]
                                                            liquidity_window_s=3_000, min_withdrawn_s=5, **common))  # fmt: skip
    m_calm = MarketMaker("calm", calm, MakerParams("BTCUSDT", level_notional=100_000, **common))  # type: ignore[arg-type]
    sim = Simulation(v, [m_big, m_def, m_calm], world, seed=1)
    for _ in range(600):
        sim.step()
    assert m_def.state == MakerState.WIDENING
    m_big.state, m_big.reason, m_big._withdrawn_ns = MakerState.WITHDRAWN, Trigger.LOSS, sim.now_ns
    for _ in range(50):
        sim.step()
    assert m_def.state == MakerState.WITHDRAWN and m_def.reason == Trigger.LIQUIDITY
    for _ in range(6000):  # ten minutes: calm long before the 3,000 s window forgets the depth the big desk offered
        sim.step()
    back = [st for _, st, _, _ in m_def.transitions if st == MakerState.RETURNING]
    assert back, "a calm maker past its minimum withdrawal returns, whatever the others do"
    assert m_big.state == MakerState.WITHDRAWN  # the big desk is still out
    v.close()


def test_records_are_routed_only_to_agents_that_read_them() -> None:
    """An agent that reads only fills gets no acks or cancels; one that does not say gets every kind; unknown kinds fail."""

    class Recording(Taker):
        def __init__(self, account: int, reads: frozenset[str] | None) -> None:
            super().__init__(account, 0, 1, 1)
            if reads is not None:
                self.reads = reads
            self.seen: dict[str, int] = {"fills": 0, "acks": 0, "cancels": 0}

        def act(self, obs: Observation, client: Client) -> Requests:
            self.seen["fills"] += len(obs.fills)
            self.seen["acks"] += len(obs.acks)
            self.seen["cancels"] += len(obs.cancels)
            return super().act(obs, client)

    v, world = market(lambda t: 100_000.0)
    mk, a, b = funded(v, 3)
    maker = MarketMaker("mm", mk, MakerParams("BTCUSDT", level_notional=100_000, daily_sigma=0.02))
    picky, curious = Recording(a, frozenset({"fills"})), Recording(b, None)
    sim = Simulation(v, [maker, picky, curious], world, seed=1)
    for _ in range(100):
        sim.step()
    assert picky.seen["fills"] > 0 and picky.seen["acks"] == 0 and picky.seen["cancels"] == 0
    assert curious.seen["fills"] > 0 and curious.seen["acks"] > 0
    odd = Recording(int(v.open_accounts(1)[0]), frozenset({"fills", "gossip"}))
    with pytest.raises(ValueError, match="gossip"):
        sim.add_agent(odd)
    v.close()


def test_a_maker_out_at_its_inventory_limit_comes_back_on_the_unloading_side_only() -> None:
    """Regression (calm run, ALT2-SPOT): with nobody else to sell to, a maker at its limit used to stay out for good."""
    v, world = market(lambda t: 100_000.0)
    mk, taker = funded(v, 2)
    maker = MarketMaker("mm", mk, MakerParams("BTCUSDT", level_notional=50_000, inventory_limit=300_000, daily_sigma=0.02))
    seller = Taker(taker, 0, -1, 200)  # sells 20k of notional a second into the maker's bids
    sim = Simulation(v, [maker, seller], world, seed=1)
    for _ in range(1200):  # two minutes of one-sided selling
        sim.step()
    out = [why for _, st, why, _ in maker.transitions if st == MakerState.WITHDRAWN]
    assert out and set(out) <= {Trigger.INVENTORY, Trigger.ONE_SIDED_FILLS} and maker.inventory * 100_000 >= 300_000
    seller.active = False
    for _ in range(1200):
        sim.step()
    assert maker.state in (MakerState.RETURNING, MakerState.QUOTING, MakerState.WIDENING), maker.transitions[-3:]
    sides = {int(o.side) for o in (v.books[0].order(i) for i in v.books[0].open_orders(mk)) if o is not None}
    assert sides == {-1}, "long at its limit, it quotes only asks"
    v.close()


def test_a_sweep_that_eats_the_book_is_not_read_as_the_others_leaving() -> None:
    """Depth consumed by trades (on the public tape) is not depth withdrawn: a defensive maker stays on a sweep."""
    v, world = market(wiggle)
    big, defensive, buyer = funded(v, 3)
    common = {"inventory_limit": 30_000_000, "daily_sigma": 0.02, "loss_limit": 2_000_000, "calm_loss": 20_000}
    m_big = MarketMaker("big", big, MakerParams("BTCUSDT", level_notional=300_000, **common))  # type: ignore[arg-type]
    m_def = MarketMaker("defensive", defensive, MakerParams("BTCUSDT", level_notional=100_000, calm_vol_ratio=0.2, **common))  # type: ignore[arg-type]
    sweep = Taker(buyer, 0, 1, 80_000)  # one market buy of 80 BTC: through every ask within the band
    sweep.active = False
    sim = Simulation(v, [m_big, m_def, sweep], world, seed=1)
    for _ in range(600):
        sim.step()
    assert m_def.state == MakerState.WIDENING
    before = v.market_data.depth[0, m_def._band_j, 1]
    sweep.active = True
    for _ in range(15):  # its next wake is on its one-second schedule
        sim.step()
    sweep.active = False
    assert v.market_data.volume[0] > before  # the sweep traded more than the asks the band held
    for _ in range(50):
        sim.step()
    assert not any(why == Trigger.LIQUIDITY for _, _, why, _ in m_def.transitions)
    v.close()


def test_agent_registration_is_all_or_nothing_and_fills_reach_an_agent_once() -> None:
    """A refused agent leaves the simulation as it was; ``reads`` must be a set of kinds; one agent on both sides of a
    trade sees each fill once (helper-12's findings)."""

    class Both(Taker):
        """Rests a bid from one account and sells into it from its other account."""

        def __init__(self, a: int, b: int) -> None:
            super().__init__(a, 0, 1, 1)
            self.accounts = np.array([a, b], np.int64)
            self.name = "both"
            self.fills_seen = 0

        def act(self, obs: Observation, client: Client) -> Requests:
            self.schedule.advance(obs.now_ns)
            self.fills_seen += len(obs.fills)
            a, b = self.accounts.tolist()
            bid = orders(a, 0, 1, 2, 999_000, Op.LIMIT, TIF.GTC)
            sell = orders(b, 0, -1, 2, 999_000, Op.LIMIT, TIF.IOC)
            return Requests(np.concatenate([bid, sell]))

    v, world = market(lambda t: 100_000.0)
    a, b, c = funded(v, 3)
    both = Both(a, b)
    sim = Simulation(v, [both], world, seed=1)
    for _ in range(35):
        sim.step()
    made = sum(len(f) for f in v.fill_log)
    pending = sum(len(x) for x in sim.inbox[0].fills)  # routed since its last wake
    assert made > 0 and both.fills_seen + pending == made, "each fill once, though the agent holds both sides"
    bad = Taker(c, 0, 1, 1)
    bad.reads = frozenset({"fills", "gossip"})  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="gossip"):
        sim.add_agent(bad)
    assert len(sim.agents) == 1 and sim.owner[c] == -1  # nothing of it stayed
    bad.reads = (k for k in ("fills",))  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="must be a set"):
        sim.add_agent(bad)
    bad.reads = frozenset({"fills"})  # type: ignore[attr-defined]
    sim.add_agent(bad)  # now it joins, and the simulation runs on
    for _ in range(20):
        sim.step()
    v.close()
