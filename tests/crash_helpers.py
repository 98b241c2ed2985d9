"""Random crashes for the liquidation engines: a seeded market, a seeded path, the invariants.

A run draws a venue profile and an ADL ranking, insurance fund size, liquidator throughput
and clearance fee; two perpetuals with tiered margin and an ETH spot book; a few market
makers and 20-50 traders with random leverage, sides, isolated positions, collateral mixes
(USDT, ETH), loans and resting orders (some reduce-only). Each step moves the marks (drifts,
crashes, spikes, gaps), the ETH price, the books (deep, thin, one-sided or empty) and sends a
few random orders; then the venue steps (prices, order entry, risk and liquidation).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from cascadelab.clearing.accounts import AccountState, MarginMode
from cascadelab.clearing.collateral import CollateralAsset, fixed, from_index
from cascadelab.clearing.core import LoanTerms, PerpSpec
from cascadelab.clearing.house import ClearingHouse
from cascadelab.clearing.ledger import ConservationError
from cascadelab.clearing.margin import MarginTiers
from cascadelab.instruments import Instrument, perpetual
from cascadelab.liquidation import adl, config_from_params, engine_class
from cascadelab.liquidation.config import ADL_PRICES
from cascadelab.records import FLAG_REDUCE_ONLY, LIQ_EVENT, ORDER_REQUEST, STP, TIF, Ev, Op, Why
from cascadelab.venue.profiles import PROFILES, profile
from cascadelab.venue.venue import Venue

S = 1_000_000_000
MID = (1_000_000, 100_000)  # BTC 100,000.0 (tick 0.1); ALT 10.000 (tick 0.0001)


@dataclass
class Run:
    """One seeded random crash: the venue, its engine, and what the step loop needs."""

    venue: Venue
    engine: object
    mms: list[int]
    traders: list[int]
    rng: np.random.Generator
    t: int = 0


def params_for(seed: int) -> dict:
    """Profile, ranking and engine parameters drawn for ``seed`` (the same for both engines)."""
    rng = np.random.default_rng(seed)
    name = sorted(PROFILES)[seed % len(PROFILES)]
    values = {k: v.value for k, v in profile(name).liquidation.items()}
    values["adl_ranking"] = adl.RANKINGS[(seed // len(PROFILES)) % len(adl.RANKINGS)]
    values["fund_seed"] = int(rng.choice([0, 10**8, 10**10, 10**12, 10**14]))
    values["liquidator_orders_per_s"] = int(rng.choice([1, 5, 50]))
    values["liquidator_notional_per_s"] = int(rng.choice([0, 10**12, 10**13]))
    if rng.random() < 0.3:
        values["adl_price"] = ADL_PRICES[rng.integers(0, len(ADL_PRICES))]
    if values["style"] == "binance":
        values["clearance_fee"] = int(rng.choice([0, 4_000, 10_000]))
    if values["style"] == "hyperliquid":
        values["chunk_threshold"] = int(rng.choice([10**12, 10**13, 10**14]))
    values["profile"] = name
    return values


def make_run(seed: int, engine: str) -> Run:
    """The market of ``seed`` under ``engine`` ("reference" or "batched")."""
    values = params_for(seed)
    values.pop("profile")
    rng = np.random.default_rng(seed + 10_000)
    tiers = [
        MarginTiers.from_table([("100000", "0.005", 100), ("1000000", "0.01", 50), (None, "0.05", 10)]),
        MarginTiers.from_table([("10000", "0.02", 25), ("100000", "0.05", 10), (None, "0.1", 5)]),
    ]
    perps = [
        PerpSpec(perpetual("BTCUSDT", "0.1", "0.001"), tiers[0]),
        PerpSpec(perpetual("ALTUSDT", "0.0001", "1"), tiers[1]),
    ]
    spots = [Instrument("ETH-SPOT", "spot", "ETH", "USDT", "0.01", "0.0001", "1", "0.0001", "0.0002")]
    usdt_ratio = str(rng.choice(["1", "0.9999"]))
    collateral = [CollateralAsset.of("USDT", usdt_ratio, fixed("1")), CollateralAsset.of("ETH", "0.95", from_index("ETH"))]
    ch = ClearingHouse(perps, spots, collateral, loan_terms=LoanTerms(650_000, 910_000))
    v = Venue(ch, debug=False)
    eth = v.add_asset_index("ETH", {"external": Fraction(1)})
    eth.update("external", Fraction(4000), 0)
    eng = engine_class(engine)(v, config_from_params(**values))
    v.attach_risk(eng)
    n_mm, n_tr = 3, int(rng.integers(20, 50))
    ids = [int(x) for x in v.open_accounts(n_mm + n_tr)]
    mms, traders = ids[:n_mm], ids[n_mm:]
    ch.seed_lending_pool("USDT", 10**17)
    for k, mid in enumerate(MID):
        ch.set_mark(perps[k].instrument.symbol, mid)
    v.update_prices(0)
    for m in mms:
        ch.deposit(m, "USDT", 10**15)
        ch.deposit(m, "ETH", 10**12)
    for i in traders:
        usdt = int(10 ** rng.uniform(10, 13))
        if rng.random() < 0.7:
            ch.deposit(i, "USDT", usdt)
        if rng.random() < 0.4:
            ch.deposit(i, "ETH", int(10 ** rng.uniform(7, 10)))
        for p in perps:
            cap = p.tiers.max_leverage[0]
            ch.set_leverage(i, p.instrument.symbol, int(rng.integers(1, cap + 1)))
            if rng.random() < 0.15:
                ch.set_margin_mode(i, p.instrument.symbol, MarginMode.ISOLATED)
        if rng.random() < 0.15 and ch.ledger.balance(i, "ETH") > 0:
            with contextlib.suppress(ValueError):
                ch.borrow(i, "USDT", int(ch.ledger.balance(i, "ETH") * 4000 * 0.5))
    run = Run(v, eng, mms, traders, rng)
    quote(run, depth=1.0)
    for i in traders:  # open positions through the books
        for k in range(2):
            if rng.random() < 0.7:
                side = 1 if rng.random() < 0.6 else -1
                lots = int(10 ** rng.uniform(2, 3.5)) if k == 0 else int(10 ** rng.uniform(2, 5))
                v.submit(i, perps[k].instrument.symbol, side, lots)
    v.step(S)
    run.t = S
    return run


def quote(run: Run, depth: float, one_sided: int = 0) -> None:
    """Market makers replace their quotes around the marks: ``depth`` scales size (0 = no quotes)."""
    v, rng = run.venue, run.rng
    reqs = []
    for m in run.mms:
        for b in range(3):
            reqs.append((run.t, m, 0, 0, 0, b, 0, Op.CANCEL_ALL, 0, 0, 0))
    if depth > 0:
        for b, mid in enumerate([*run.venue.clearing.marks.tolist(), int(v.clearing.asset_price[1] // 10**6)]):
            step = max(1, mid // 500)
            for m in run.mms:
                for lvl in range(1, 6):
                    lots = max(1, int((300 if b == 0 else (20_000 if b == 1 else 3_000)) * depth * rng.uniform(0.2, 1.5)))
                    if one_sided >= 0:
                        reqs.append((run.t, m, 0, mid - lvl * step, lots, b, 0, Op.LIMIT, 1, TIF.GTC, STP.CANCEL_RESTING))
                    if one_sided <= 0:
                        reqs.append((run.t, m, 0, mid + lvl * step, lots, b, 0, Op.LIMIT, -1, TIF.GTC, STP.CANCEL_RESTING))
    v.submit_batch(np.array(reqs, ORDER_REQUEST))


def step(run: Run) -> np.ndarray:
    """One random step: move prices and books, some client orders, then the venue step. Returns its events."""
    v, rng = run.venue, run.rng
    ch = v.clearing
    run.t += int(rng.choice([S // 10, S, 5 * S, 31 * S]))
    kind = rng.random()
    for k in range(2):
        mark = int(ch.marks[k])
        if kind < 0.35:
            move = rng.normal(0, 0.01)
        elif kind < 0.7:
            move = -abs(rng.normal(0.04, 0.05))  # crash
        elif kind < 0.85:
            move = abs(rng.normal(0.03, 0.04))  # spike
        else:
            move = rng.choice([-0.15, 0.12, -0.3])  # gap
        ch.marks[k] = max(10, int(mark * (1 + move)))
    eth = v.asset_indices["ETH"]
    eth.update("external", Fraction(max(100, int(float(eth.value(run.t - 1) or 4000) * (1 + rng.normal(-0.01, 0.05))))), run.t)
    r = rng.random()
    quote(run, depth=0.0 if r < 0.2 else (0.05 if r < 0.5 else 1.0), one_sided=int(rng.choice([0, 0, 1, -1])))
    reqs = []
    for i in rng.choice(run.traders, size=min(5, len(run.traders)), replace=False).tolist():
        b = int(rng.integers(0, 2))
        side = int(rng.choice([1, -1]))
        flags = FLAG_REDUCE_ONLY if rng.random() < 0.3 else 0
        price = int(ch.marks[b] * (1 + side * rng.uniform(-0.02, 0.01))) if rng.random() < 0.5 else 0
        lots = int(10 ** rng.uniform(1, 3))
        reqs.append((run.t, i, 0, price, lots, b, flags, Op.LIMIT if price else Op.MARKET, side, TIF.GTC, STP.CANCEL_RESTING))
    report = v.step(run.t, np.array(reqs, ORDER_REQUEST))
    return report.events


def check_invariants(run: Run, events: np.ndarray, marks: np.ndarray, prev_liquidating_compliant: set[int]) -> set[int]:
    """The liquidation invariants after one step; returns the LIQUIDATING accounts that are compliant now.

    * exact conservation with journal replay; no taken-over or bankrupt account with a position
      (both in ``ClearingHouse.check``); no fund or vault below zero;
    * no account LIQUIDATING while compliant for more than one step;
    * every ADL close is on the side opposite its bankrupt position, at the trigger's price, and
      the closes of one trigger add up to at most the lots the trigger names (never more than
      the part of the position the fund did not cover);
    * within a trigger, closes come in rank order, and a losing position is closed only when no
      profitable position on that side kept size at the step's marks;
    * no ADL while the fund could cover: a trigger's fund payment is what the profile's
      trigger allows, and ADL only takes the rest.
    """
    v, eng = run.venue, run.engine
    ch = v.clearing
    ch.check(replay_journal=True)
    for f in range(len(eng.fund_accounts)):
        if eng.fund_balance(f) < 0:
            raise ConservationError(f"fund {f} is negative: {eng.fund_balance(f)}")
    n = ch.accounts.n
    state = ch.accounts.state[:n]
    liq_now = set(np.flatnonzero(state == AccountState.LIQUIDATING).tolist())
    compliant = {i for i in liq_now if not eng_breaching(run, i)}
    # every LIQUIDATING account is re-evaluated at the end of the step it took part in, so none
    # ends a step compliant (stronger than "not for more than one step")
    assert not compliant, f"accounts LIQUIDATING while compliant: {sorted(compliant)}"
    assert not (liq_now & prev_liquidating_compliant)
    trig_idx = np.flatnonzero(events["kind"] == Ev.ADL_TRIGGER)
    for t, start in enumerate(trig_idx):
        stop = trig_idx[t + 1] if t + 1 < len(trig_idx) else len(events)
        trig = events[start]
        closes = events[start + 1 : stop]
        closes = closes[closes["kind"] == Ev.ADL_CLOSE]
        assert closes["qty"].sum() <= trig["qty"], "ADL closed more than the uncovered part of the position"
        assert np.all(closes["price"] == trig["price"]), "an ADL close away from the trigger's price"
        assert np.all(closes["side"] == trig["side"]), "an ADL close on the wrong side"
        assert np.all(closes["instrument"] == trig["instrument"])
        assert np.all(np.diff(closes["rank"]) > 0), "ADL closes out of rank order"
        assert trig["pnl"] <= trig["amount"] and trig["qty"] > 0
        trigger = v.risk.cfg.trigger  # type: ignore[attr-defined]
        if trigger.code == 0:  # insufficient: ADL only for what the fund lacks
            assert trig["pnl"] == min(trig["amount"], max(0, trig["fund_balance"]))
    _check_profitable_first(eng, events)
    return compliant


def _check_profitable_first(eng, events: np.ndarray) -> None:
    """Before a queue's first losing position is closed, every profitable position in it was closed in full
    (or its equity could not pay for another lot at the ADL price); no counterparty gives up more than its equity."""
    closed: dict[tuple[int, int], dict[int, int]] = {}
    used: dict[int, int] = {}
    ch = eng.ch
    for e in events:
        if e["kind"] != Ev.ADL_CLOSE:
            continue
        k = int(e["instrument"])
        key = (k, -int(e["side"]))
        accounts, sizes, profitable, equity = eng.adl_queues[key]
        ell = max(0, int(e["side"]) * (int(e["price"]) - int(ch.marks[k]))) * int(ch.units[k])
        done = closed.setdefault(key, {})
        if e["amount"] <= 0:
            for a, size, prof, eq in zip(accounts.tolist(), sizes.tolist(), profitable.tolist(), equity.tolist(), strict=True):
                if prof and done.get(a, 0) != size:
                    assert ell > 0 and eq - used.get(a, 0) < ell, (
                        f"a losing position was deleveraged while account {a} kept a profitable one it could still close"
                    )
        a = int(e["account"])
        done[a] = done.get(a, 0) + int(e["qty"])
        used[a] = used.get(a, 0) + int(e["qty"]) * ell
        i = accounts.tolist().index(a)
        assert used[a] <= max(0, int(equity[i])), f"ADL took more from account {a} than its equity"


def eng_breaching(run: Run, i: int) -> bool:
    """Is account ``i`` below maintenance, has an isolated breach, or is above the liquidation LTV (exactly)?"""
    ch = run.venue.clearing
    eq, mm, _im, iso = ch.exact_margins(np.array([i]))
    ltv_bad = bool(ch.accounts.debt[:, i].any()) and ch.ltv(i) > ch.loan_terms.liquidation_ltv
    return bool((mm[0] > 0 and eq[0] < mm[0]) or iso[0] or ltv_bad)


def all_events(eng: object) -> np.ndarray:
    """Every event an engine recorded."""
    log = eng.event_log  # type: ignore[attr-defined]
    return np.concatenate(log) if log else np.zeros(0, LIQ_EVENT)


__all__ = ["Run", "Why", "check_invariants", "make_run", "params_for", "step"]
