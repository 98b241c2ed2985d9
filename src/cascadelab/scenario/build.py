"""From a validated :class:`~cascadelab.scenario.schema.Scenario` to a ready simulation.

Order of construction:

1. the venue under its profile, with the scenario's instruments, collateral valuations,
   loan terms, lending pools, insurance fund and liquidator throughput;
2. the external paths and the world (news, outages);
3. accounts for every participant group, with their account types (for the recorder);
4. the pre-open: market makers and arbitrageurs are funded and quote for a few seconds
   of market time so that every book, mark and collateral price exists;
5. the positions of leveraged traders, hedged funds and makers' hedges, booked by the
   opening auction at entry prices spread over the days before; loopers are funded and
   build their loops in the first minutes of the run, through the real order path.

Every draw comes from generators spawned from the run's seed, one per component.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from cascadelab.agents.arbitrage import Arbitrageur, ArbParams
from cascadelab.agents.base import News
from cascadelab.agents.funds import FundParams, HedgedFund
from cascadelab.agents.loopers import LooperParams, Loopers
from cascadelab.agents.market_maker import MakerParams, MarketMaker
from cascadelab.agents.noise import NewsSellerParams, NewsSellers, NoiseParams, NoiseTraders
from cascadelab.agents.population import Leg, LeveragedTraders, TraderParams, book_legs
from cascadelab.clearing.collateral import CollateralAsset, Valuation, fixed, from_book, from_index
from cascadelab.clearing.core import LoanTerms
from cascadelab.instruments import spot
from cascadelab.records import AccountType
from cascadelab.scenario.schema import CollateralSection, PathSection, Scenario
from cascadelab.sim.loop import Simulation
from cascadelab.sim.world import Outage, ScriptedWorld
from cascadelab.units import MONEY_SCALE, SECOND_NS, money_to_units
from cascadelab.venue.profiles import PROFILES
from cascadelab.venue.profiles import build as build_venue
from cascadelab.venue.venue import Venue

PRE_OPEN_S = 3.0
"""Market time the makers and arbitrageurs quote before positions are booked."""

GROUPS = ("makers", "arbitrageurs", "funds", "noise", "news_sellers", "loopers", "retail")


@dataclass
class Built:
    """A scenario made ready: the simulation and what reports need."""

    scenario: Scenario
    venue: Venue
    sim: Simulation
    account_type: np.ndarray  # AccountType per account
    groups: dict[str, list[object]] = field(default_factory=dict)  # group name -> agents
    news_ns: int = 0
    liquidated_low_leverage: int | None = None  # set after the run: liquidated accounts below 2x at the news
    adjustments: list[str] = field(default_factory=list)  # parameters the build had to change, and why (in summary.json)


def _valuation(asset: str, c: CollateralSection) -> Valuation:
    if c.source == "fixed":
        return fixed(str(c.price))
    floor = None if c.floor is None else str(c.floor)
    if c.source == "book":
        return from_book(str(c.book), floor)
    if c.source == "index":
        return from_index(asset, floor)
    if c.source == "redemption":
        return Valuation.of([(1, [("fixed", str(c.rate)), ("index", str(c.base_asset))])], floor)
    w = Fraction(str(c.blend_book))
    comps: list = [(w, [("book", str(c.book))])] if w > 0 else []
    if w < 1:
        comps.append((1 - w, [("index", asset)]))
    return Valuation.of(comps, floor)


def external_paths(s: Scenario, news_s: float, seed: int) -> dict[str, np.ndarray]:
    """Every external path on the world's grid (one price per ``feed_every_ms``)."""
    step_s = s.world.feed_every_ms / 1000
    n = math.ceil(s.run.duration_s / step_s) + 2
    t = np.arange(n) * step_s - news_s
    start = {i.symbol: i.price for i in s.instruments}
    sigma = {i.symbol: i.daily_sigma for i in s.instruments}
    base_of = {str(i.base): i for i in s.instruments if i.kind == "spot"}
    out: dict[str, np.ndarray] = {}

    def make(name: str, p: PathSection) -> np.ndarray:
        if p.of is not None:
            if p.of not in out:
                make(p.of, s.world.paths[p.of])
            out[name] = out[p.of] * p.ratio
            return out[name]
        p0 = p.start or start.get(name) or (base_of[name].price if name in base_of else None)
        if p0 is None:
            raise ValueError(f"world.paths.{name}: needs a start price (no instrument of that name)")
        kt = np.array([k[0] for k in p.knots])
        kf = np.log(np.array([k[1] for k in p.knots]))
        logp = math.log(p0) + np.interp(t, kt, kf)
        sig = sigma.get(name, base_of[name].daily_sigma if name in base_of else 0.0)
        if p.noise > 0 and sig > 0:
            # one generator per path, keyed by its name: a path does not depend on the others or on the run's
            # length (a shorter run's path is a prefix of a longer run's)
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            w = np.cumsum(rng.standard_normal(n)) * sig * math.sqrt(step_s / 86_400.0) * p.noise
            logp = logp + w
        out[name] = np.exp(logp)
        return out[name]

    for name, p in s.world.paths.items():
        if name not in out:
            make(name, p)
    return out


def _leverage_within_tiers(ch: object, symbol: str, wanted: int, notional: float, where: str, notes: list[str]) -> int:
    """The highest leverage up to ``wanted`` that the margin tiers allow at ``notional`` (quote units).

    A lower leverage than asked is noted in ``notes`` (summary.json's ``adjustments``), naming the key.
    """
    lev = max(1, min(int(wanted), ch.leverage_cap(symbol, int(notional * MONEY_SCALE))))  # type: ignore[attr-defined]
    _note_capped(notes, where, wanted, lev, symbol, f"at {notional:,.0f} notional")
    return lev


def _note_capped(notes: list[str], where: str, wanted: int, lev: int, symbol: str, at: str) -> None:
    """Note (once) that ``where`` asked for more leverage than ``symbol``'s margin tiers allow ``at`` a size."""
    note = f"{where}: {wanted}x is above what {symbol}'s margin tiers allow {at}; margined at {lev}x"
    if lev < wanted and note not in notes:
        notes.append(note)


def _path_fn(arr: np.ndarray, step_ns: int) -> object:
    last = len(arr) - 1
    return lambda t: float(arr[min(last, max(0, t // step_ns))])


def build(s: Scenario) -> Built:
    """The simulation of scenario ``s`` (see the module docstring)."""
    seq = np.random.SeedSequence(s.run.seed)
    seeds = [int(x.generate_state(1)[0]) for x in seq.spawn(16)]
    perps = [(i.symbol, i.tick, i.lot) for i in s.instruments if i.kind == "perp"]
    spots = [spot(i.symbol, str(i.base), i.quote, i.tick, i.lot) for i in s.instruments if i.kind == "spot"]
    collateral = [CollateralAsset.of(a, str(c.ratio), _valuation(a, c)) for a, c in s.collateral.items()]
    overrides: dict[str, Any] = {}
    v = s.venue
    notes: list[str] = []
    if v.insurance_fund is not None:
        overrides["fund_seed"] = money_to_units(str(v.insurance_fund))
        n_perps = len(perps)
        if PROFILES[v.profile].liquidation["fund_structure"].value == "per_symbol" and n_perps > 1:
            notes.append(f"venue.insurance_fund: {v.profile} keeps one fund per perpetual: each of the {n_perps} starts with "
                         f"{v.insurance_fund:,.0f} ({n_perps * v.insurance_fund:,.0f} in all)")  # fmt: skip
    if v.liquidator_orders_per_s is not None:
        overrides["liquidator_orders_per_s"] = v.liquidator_orders_per_s
    if v.liquidator_notional_per_s is not None:
        overrides["liquidator_notional_per_s"] = money_to_units(str(v.liquidator_notional_per_s))
    if v.adl_ranking is not None:
        overrides["adl_ranking"] = v.adl_ranking
    terms = LoanTerms(round(s.lending.initial_ltv * 1e6), round(s.lending.liquidation_ltv * 1e6))
    venue = build_venue(v.profile, perps, spots, collateral, debug=v.debug, loan_terms=terms, **overrides)
    ch = venue.clearing
    for asset, col in s.collateral.items():
        if col.source in ("index", "blend"):
            venue.add_asset_index(asset, {"external": Fraction(1)})
        if col.source == "redemption" and str(col.base_asset) not in venue.asset_indices:
            venue.add_asset_index(str(col.base_asset), {"external": Fraction(1)})
    for asset, amount in s.lending.pools.items():
        if amount > 0:
            ch.seed_lending_pool(asset, money_to_units(str(amount)))
    # the world
    news_s = s.world.reference_s if s.world.reference_s is not None else min((n.at_s for n in s.world.news), default=0.0)
    paths = external_paths(s, news_s, seeds[0])
    step_ns = s.world.feed_every_ms * 1_000_000
    symbols = tuple(venue.market_data.symbols)
    inst_paths = {}
    for i in s.instruments:
        key = i.symbol if i.kind == "perp" else str(i.base)
        if key in paths:
            inst_paths[i.symbol] = _path_fn(paths[key], step_ns)
    asset_paths = {a: _path_fn(paths[a], step_ns) for a in venue.asset_indices if a in paths}
    missing = [a for a in venue.asset_indices if a not in paths]
    if missing:
        raise ValueError(f"world.paths: collateral valued from an external index needs a path for {missing}")
    news = [News(int(n.at_s * SECOND_NS), n.name, n.severity) for n in s.world.news]
    world = ScriptedWorld(symbols, inst_paths, asset_paths, news, [], step_ns)  # type: ignore[arg-type]
    # accounts
    types: list[np.ndarray] = []
    groups: dict[str, list[object]] = {g: [] for g in GROUPS}

    def open_accounts(n: int, kind: AccountType) -> np.ndarray:
        ids = venue.open_accounts(n)
        types.append(np.full(n, kind, np.int8))
        return ids

    types.append(np.full(ch.accounts.n, AccountType.VENUE, np.int8))  # the liquidator (and any venue account)
    agents: list[object] = []
    for gi, mg in enumerate(s.makers):
        inst = next(i for i in s.instruments if i.symbol == mg.symbol)
        for c in range(mg.count):
            (acct,) = open_accounts(1, AccountType.MARKET_MAKER)
            ch.deposit_many(np.array([acct]), "USDT", np.array([money_to_units(str(mg.capital))]))
            params = MakerParams(
                mg.symbol,
                level_notional=mg.level_notional,
                levels=mg.levels,
                level_step_bps=mg.level_step_bps,
                gamma=mg.gamma,
                k=mg.k,
                horizon_s=mg.horizon_s,
                daily_sigma=inst.daily_sigma,
                min_half_spread_bps=mg.min_half_spread_bps,
                inventory_limit=mg.inventory_limit,
                requote_ms=mg.requote_ms,
                requote_move_bps=mg.requote_move_bps,
                loss_window_s=mg.loss_window_s,
                loss_limit=mg.loss_limit,
                calm_loss=mg.calm_loss,
                one_sided_share=mg.one_sided_share,
                one_sided_min_fills=mg.one_sided_min_fills,
                calm_one_sided_share=mg.calm_one_sided_share,
                one_sided_fill_share=mg.one_sided_fill_share,
                vol_spike_ratio=mg.vol_spike_ratio,
                calm_vol_ratio=mg.calm_vol_ratio,
                widen_slope=mg.widen_slope,
                liquidity_drop=mg.liquidity_drop,
                liquidity_window_s=mg.liquidity_window_s,
                liquidity_band_bps=mg.liquidity_band_bps,
                max_half_spread_bps=mg.max_half_spread_bps,
                min_withdrawn_s=mg.min_withdrawn_s,
                anchor_external=mg.anchor_external,
                stress_symbol=mg.stress_symbol,
                inventory_target_base=mg.base_inventory,
                outside_hedge_limit=mg.outside_hedge_limit,
                outside_hedge_band=mg.outside_hedge_band,
                outside_hedge_cost_bps=mg.outside_hedge_cost_bps,
                stress_daily_sigma=next((i.daily_sigma for i in s.instruments if i.symbol == mg.stress_symbol), 0.02),
                hedge_symbol=mg.hedge_symbol,
                hedge_asset=str(inst.base) if mg.hedge_symbol else None,
            )
            if inst.kind == "perp":  # margined at a leverage its whole inventory range allows (tiers by notional)
                span = mg.inventory_limit + mg.outside_hedge_limit + 2 * mg.level_notional * mg.levels  # hedged part included
                lev = _leverage_within_tiers(ch, mg.symbol, mg.leverage, span, f"makers.{gi}.leverage", notes)
                ch.configure_positions(mg.symbol, np.array([acct]), lev, False)
                if c == 0 and mg.capital < span / lev:
                    notes.append(f"makers.{gi}.capital: {mg.capital:,.0f} does not margin the {span:,.0f} of {mg.symbol} it may "
                                 f"carry at {lev}x ({span / lev:,.0f}): its orders past that are refused")  # fmt: skip
            if inst.kind == "spot" and mg.base_inventory > 0:
                ch.deposit_many(np.array([acct]), str(inst.base), np.array([int(mg.base_inventory * MONEY_SCALE)]))
                if mg.hedge_symbol:  # the perpetual short against the holding, margined within its tiers
                    lev = _leverage_within_tiers(ch, mg.hedge_symbol, mg.hedge_leverage, mg.base_inventory * inst.price,
                                                 f"makers.{gi}.hedge_leverage", notes)  # fmt: skip
                    ch.configure_positions(mg.hedge_symbol, np.array([acct]), lev, False)
            mm = MarketMaker(f"maker:{mg.symbol}:{c}", int(acct), params, int(mg.latency_ms * 1e6), int(mg.jitter_ms * 1e6))
            agents.append(mm)
            groups["makers"].append(mm)
    for gi, ag in enumerate(s.arbitrageurs):
        inst = next(i for i in s.instruments if i.symbol == ag.symbol)
        for c in range(ag.count):
            (acct,) = open_accounts(1, AccountType.ARBITRAGEUR)
            ch.deposit_many(np.array([acct]), "USDT", np.array([money_to_units(str(ag.capital))]))
            if inst.kind == "spot" and ag.tokens > 0:
                ch.deposit_many(np.array([acct]), str(inst.base), np.array([int(ag.tokens * MONEY_SCALE)]))
            if inst.kind == "perp":
                lev = _leverage_within_tiers(ch, ag.symbol, ag.leverage, ag.inventory_limit + 2 * ag.clip_notional,
                                             f"arbitrageurs.{gi}.leverage", notes)  # fmt: skip
                ch.configure_positions(ag.symbol, np.array([acct]), lev, False)
            params_a = ArbParams(ag.symbol, ag.threshold_bps, ag.close_bps, ag.clip_notional, ag.inventory_limit,
                                 ag.transfer_delay_s, rest=ag.rest, rest_bps=ag.rest_bps)  # fmt: skip
            arb = Arbitrageur(f"arb:{ag.symbol}:{c}", int(acct), params_a, int(ag.latency_ms * 1e6))
            agents.append(arb)
            groups["arbitrageurs"].append(arb)
    sim = Simulation(venue, agents, world, s.run.step_ms * 1_000_000, seed=seeds[1])  # type: ignore[arg-type]
    # pre-open: books, marks and collateral prices come to exist
    hedgers = [mm for mm in groups["makers"] if isinstance(mm, MarketMaker) and mm.p.hedge_symbol]
    for mm in hedgers:  # their starting hedges are booked below with the other opening positions
        mm.hedging = False
    sim.run(int(PRE_OPEN_S * SECOND_NS))
    for a, price in ((a, ch.asset_price[ch.ledger.asset(a)]) for a in ch.assets):
        if price <= 0:
            raise ValueError(f"collateral {a} has no price after the pre-open: give its book makers or its index a path")
    legs: list[Leg] = []
    for j, fg in enumerate(s.funds):
        for c in range(fg.count):
            (acct,) = open_accounts(1, AccountType.FUND)
            fp = FundParams(dict(fg.longs), fg.hedge_symbol, fg.hedge_ratio, fg.leverage, fg.margin, fg.review_s,
                            fg.rehedge_below, fg.max_spread_bps)  # fmt: skip
            fund = HedgedFund(f"fund:{j}:{c}", int(acct), fp)
            legs += fund.legs(venue)
            for symbol, lev in fund.leverage_used.items():
                _note_capped(notes, f"funds.{j}.leverage", fg.leverage, lev, symbol, "for its leg")
            if fund.initial_margin > fg.margin and c == 0:
                notes.append(f"funds.{j}.margin: {fg.margin:,.0f} is below the initial margin of its positions "
                             f"({fund.initial_margin:,.0f}): they start as if opened earlier at better prices")  # fmt: skip
            sim.add_agent(fund)
            groups["funds"].append(fund)
    for maker in groups["makers"]:
        assert isinstance(maker, MarketMaker)
        p = maker.p
        if p.hedge_symbol and p.inventory_target_base > 0:
            k = ch.core.perp(p.hedge_symbol)
            hedge_inst = ch.perps[k].instrument
            lots = int(p.inventory_target_base / float(hedge_inst.lot_size))
            short = -lots - int(ch.accounts.size[k, int(maker.accounts[0])])  # its own re-hedges count
            if short < 0:
                legs.append(Leg(p.hedge_symbol, int(ch.marks[k]), maker.accounts.copy(), np.array([short], np.int64)))
    if s.noise and s.noise.accounts:
        ids = open_accounts(s.noise.accounts, AccountType.NOISE)
        ch.deposit_many(ids, "USDT", np.full(len(ids), money_to_units(str(s.noise.deposit))))
        n = s.noise
        agent = NoiseTraders("noise", ids, NoiseParams(tuple(n.symbols), n.rate_per_min, n.notional_median, n.notional_sigma,
                                                      n.marketable_share, n.passive_offset_bps), seeds[2])  # fmt: skip
        for a in s.noise.symbols:  # spot noise needs the base asset to sell
            b = venue.index[a]
            if b >= venue.n_perps:
                base = venue.instruments[b].base
                price = float(ch.asset_price[ch.ledger.asset(base)]) / MONEY_SCALE
                if price > 0:
                    ch.deposit_many(ids, base, np.full(len(ids), int(s.noise.deposit / price * MONEY_SCALE)))
        sim.add_agent(agent)
        groups["noise"].append(agent)
    if s.news_sellers and s.news_sellers.accounts:
        ns = s.news_sellers
        ids = open_accounts(ns.accounts, AccountType.RETAIL)
        ch.deposit_many(ids, "USDT", np.full(len(ids), money_to_units(str(ns.deposit))))
        for sym in ns.symbols:
            if sym in venue.markets:
                ch.configure_positions(sym, ids, 5, False)
        agent2 = NewsSellers("news_sellers", ids, NewsSellerParams(tuple(ns.symbols), ns.delay_median_s, ns.delay_sigma,
                                                                   ns.short_notional), seeds[3])  # fmt: skip
        sim.add_agent(agent2)
        groups["news_sellers"].append(agent2)
    if s.loopers and s.loopers.accounts:
        lp = s.loopers
        ids = open_accounts(lp.accounts, AccountType.LOOPER)
        params_l = LooperParams(lp.token, lp.book, "USDT", dict(lp.seeds), lp.seed_value_median, lp.seed_value_sigma,
                                (lp.loops[0], lp.loops[1]), (lp.target_ltv[0], lp.target_ltv[1]),
                                (lp.unwind_ltv[0], lp.unwind_ltv[1]), lp.unwind_fraction,
                                review_s=lp.review_s, prebuilt_loops=(lp.prebuilt_loops[0], lp.prebuilt_loops[1]),
                                mint_price=lp.mint_price, max_slippage_bps=lp.max_slippage_bps,
                                panic_slippage_bps=lp.panic_slippage_bps)  # fmt: skip
        loopers = Loopers("loopers", ids, params_l, seeds[4])
        loopers.fund(venue)
        sim.add_agent(loopers)
        groups["loopers"].append(loopers)
    if s.population and s.population.accounts:
        pp = s.population
        ids = open_accounts(pp.accounts, AccountType.RETAIL)
        tp = TraderParams(
            tuple(pp.symbols), tuple(pp.symbols.values()), pp.long_share, pp.leverage_median, pp.leverage_sigma, pp.leverage_max,
            pp.margin_median, pp.margin_sigma, pp.isolated_share, dict(pp.collateral),
            {b: share for b, share in pp.behaviours.items()}, (pp.defend_ratio[0], pp.defend_ratio[1]), pp.add_margin_share,
            (pp.reserve_multiple[0], pp.reserve_multiple[1]), (pp.momentum_drop[0], pp.momentum_drop[1]),
            pp.momentum_short_share, pp.panic_delay_median_s, pp.panic_delay_sigma, (pp.dip_depth[0], pp.dip_depth[1]),
            tuple(pp.entry_factors), pp.review_s, pp.cooldown_s,
        )  # fmt: skip
        pop, legs_pop = LeveragedTraders.build("retail", venue, ids, tp, seeds[5], balance_legs=legs)
        pop.latency_ns, pop.jitter_ns = int(pp.latency_ms * 1e6), int(pp.jitter_ms * 1e6)
        legs = legs_pop
        sim.add_agent(pop)
        groups["retail"].append(pop)
    if legs and not (s.population and s.population.accounts):
        syms = sorted({g.symbol for g in legs})
        raise ValueError(
            f"population.accounts: funds' and makers' hedges start with positions in {syms} and need a population to take "
            "the other side; give the population accounts, or remove [[funds]] and the makers' hedge_symbol"
        )
    book_legs(venue, legs, sim.now_ns)
    if groups["funds"]:  # a fund may start below its initial margin, never already in liquidation
        eq, maint, _, _ = ch.exact_margins(np.concatenate([f.accounts for f in groups["funds"]]))  # type: ignore[attr-defined]
        for bad in np.flatnonzero(eq < maint).tolist()[:1]:
            j = groups["funds"][bad].name.split(":")[1]  # type: ignore[attr-defined]
            raise ValueError(
                f"funds.{j}.margin: its positions need {int(maint[bad]) / MONEY_SCALE:,.0f} of maintenance margin but the "
                f"account starts with {int(eq[bad]) / MONEY_SCALE:,.0f} of equity (it would be liquidated at once); "
                "raise margin, or shrink longs or hedge_ratio"
            )
    for mm in hedgers:
        mm.hedging = True
    for pop_ in groups["retail"]:
        if isinstance(pop_, LeveragedTraders):
            pop_.start_thresholds(venue)
    ch.check()
    n = ch.accounts.n
    sim.hash_state(ch.ledger.balances[:, :n], ch.accounts.size[:, :n], ch.accounts.cost[:, :n], ch.accounts.debt[:, :n])
    # outages name groups; the world refuses or delays the requests of their agents
    by_group = {g: frozenset(a.name for a in groups[g]) for g in GROUPS}  # type: ignore[attr-defined]
    world.outages = [
        Outage(int((news_s + o.start_s) * SECOND_NS), int((news_s + o.end_s) * SECOND_NS),
               frozenset().union(*(by_group[g] for g in o.groups)), o.mode, int(o.delay_ms * 1e6))
        for o in s.world.outages
    ]  # fmt: skip
    for j, item in enumerate(s.world.news):
        if item.at_s >= s.run.duration_s:
            notes.append(
                f"world.news.{j}.at_s: {item.at_s:,.0f} s is after the run ends ({s.run.duration_s:,.0f} s): "
                "this run has no such news (a run of the market before it)"
            )
    account_type = np.concatenate(types) if types else np.zeros(0, np.int8)
    return Built(s, venue, sim, account_type, groups, int(news_s * SECOND_NS), adjustments=notes)


__all__ = ["GROUPS", "PRE_OPEN_S", "Built", "build", "external_paths"]
