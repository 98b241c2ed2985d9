"""Leveraged traders: a vectorized population of up to millions of accounts, each with one position.

The population is held as arrays (one row per account): home perpetual, side, leverage,
margin mode, collateral asset, behaviour and its thresholds, outside reserve. It exists
from the start with real positions: :meth:`LeveragedTraders.build` funds the accounts
(bulk deposits of their collateral) and books the positions through the clearing house's
opening auction (ledger-exact, no fee) at entry prices spread over the days before the run,
the population's shorts taking the other side of its longs (and of any other
participants' legs it is asked to balance).

Behaviour comes from rules on what each account can observe (the mark, its own margin):

* ``HOLD``: does nothing (most accounts; they are liquidated if the price gets there);
* ``DEFEND``: when its margin ratio (maintenance / equity) reaches its threshold, either
  adds margin from its outside reserve (refused during an outage) or closes the position;
* ``MOMENTUM``: a trailing stop below the highest mark seen: closes a long when hit, or
  opens a short when flat;
* ``PANIC``: after news, each after its own reaction delay, closes its position;
* ``DIP_BUYER``: rests a bid far below the price from the start (the deep "stink bids"
  that are the only liquidity when makers leave).

A decision pass is array code: every threshold is turned into a trigger price on the
account's perpetual at each periodic review (exact margins of the live accounts, read
through the client), and between reviews the population is woken only when a mark crosses
the nearest trigger (sorted trigger arrays, one search per perpetual), so a quiet market
costs nothing and a crash costs only the accounts it reaches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from cascadelab.agents.base import (
    NEVER,
    WATCH_MARK,
    Client,
    Observation,
    Requests,
    Schedule,
    Watch,
    account_requests,
    orders,
)
from cascadelab.clearing.accounts import AccountState
from cascadelab.records import FLAG_REDUCE_ONLY, TIF, AccountOp, AccountType, Op
from cascadelab.units import MONEY_SCALE, SECOND_NS


class Behaviour(IntEnum):
    """What a leveraged trader does beyond holding."""

    HOLD = 0
    DEFEND = 1
    MOMENTUM = 2
    PANIC = 3
    DIP_BUYER = 4


@dataclass
class TraderParams:
    """The population's distributions (shares sum to 1 where they are shares)."""

    symbols: tuple[str, ...]
    symbol_weights: tuple[float, ...]
    long_share: float = 0.87
    leverage_median: float = 5.0
    leverage_sigma: float = 0.7
    leverage_max: float = 100.0
    margin_median: float = 2_000.0  # quote units per account
    margin_sigma: float = 1.2
    isolated_share: float = 0.2
    collateral: dict[str, float] = field(default_factory=lambda: {"USDT": 1.0})  # asset -> share of cross accounts
    behaviours: dict[str, float] = field(
        default_factory=lambda: {"hold": 0.5, "defend": 0.25, "momentum": 0.1, "panic": 0.1, "dip_buyer": 0.05}
    )
    defend_ratio: tuple[float, float] = (0.6, 0.9)  # margin ratio at which a defender acts (uniform)
    add_margin_share: float = 0.5  # defenders that add margin (the rest close)
    reserve_multiple: tuple[float, float] = (0.2, 1.5)  # outside reserve as a multiple of margin (uniform)
    momentum_drop: tuple[float, float] = (0.02, 0.08)  # trailing stop distance (uniform)
    momentum_short_share: float = 0.3  # of momentum traders, flat ones that open shorts when the stop hits
    panic_delay_median_s: float = 600.0
    panic_delay_sigma: float = 1.0
    dip_depth: tuple[float, float] = (0.1, 0.9)  # dip buyers' bids: this far below the price (uniform)
    entry_factors: tuple[float, ...] = (0.94, 0.96, 0.98, 1.0, 1.01)  # entry prices as factors of the start price
    review_s: float = 30.0
    cooldown_s: float = 60.0


BEHAVIOURS = {"hold": Behaviour.HOLD, "defend": Behaviour.DEFEND, "momentum": Behaviour.MOMENTUM,
              "panic": Behaviour.PANIC, "dip_buyer": Behaviour.DIP_BUYER}  # fmt: skip


@dataclass
class Leg:
    """Positions to book at one price: accounts and signed lots (the auction crosses them)."""

    symbol: str
    price_ticks: int
    accounts: np.ndarray
    lots: np.ndarray


class LeveragedTraders:
    """The population (see the module docstring). Build with :meth:`build`."""

    account_type = AccountType.RETAIL
    wake_on_fills = False
    wake_on_news = True
    reads: frozenset[str] = frozenset()  # no records of its own are sent: it reads its accounts through its client

    def __init__(self, name: str, accounts: np.ndarray, params: TraderParams, seed: int,
                 latency_ns: int = 150_000_000, jitter_ns: int = 250_000_000) -> None:  # fmt: skip
        self.name = name
        self.accounts = np.asarray(accounts, np.int64)
        self.p = params
        self.rng = np.random.default_rng(seed)
        self.latency_ns, self.jitter_ns = latency_ns, jitter_ns
        n = len(self.accounts)
        self.schedule = Schedule(int(params.review_s * SECOND_NS))
        self.home = np.zeros(n, np.int64)  # venue instrument of the account's position
        self.behaviour = np.zeros(n, np.int8)
        self.threshold = np.zeros(n)  # defend: margin ratio; momentum: stop distance; dip: depth
        self.adds_margin = np.zeros(n, np.bool_)
        self.shorts_when_flat = np.zeros(n, np.bool_)
        self.reserve = np.zeros(n, np.int64)  # outside funds (quote money units) for margin top-ups
        self.collateral_asset = np.zeros(n, np.int64)
        self.margin_target = np.zeros(n)  # quote units: the margin it put up
        self.leverage = np.ones(n)
        self.high = np.zeros(n)  # trailing high of the mark (momentum)
        self.trigger = np.full(n, np.nan)  # trigger price on the home perpetual
        self.trigger_side = np.zeros(n, np.int8)  # -1: fires when the mark falls to it, +1: when it rises
        self.panic_due = np.full(n, NEVER, np.int64)
        self._next_panic = NEVER  # the earliest pending panic reaction (kept as panic_due changes)
        self._pq_due = np.zeros(0, np.int64)  # pending panic reactions in due order (times, accounts), and the next one
        self._pq_idx = np.zeros(0, np.int64)
        self._pq_ptr = 0
        self.last_action = np.full(n, -(1 << 62), np.int64)
        self._sorted: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, int]] = {}
        self._dips_placed = False
        self.actions = {"closes": 0, "deposits": 0, "shorts": 0, "panic": 0}

    # --- construction ----------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        name: str,
        venue: object,
        accounts: np.ndarray,
        params: TraderParams,
        seed: int,
        balance_legs: list[Leg] | None = None,
    ) -> tuple[LeveragedTraders, list[Leg]]:
        """Draw the population, fund its accounts and return it with the legs to book.

        Prices come from the venue's marks (perpetuals) and collateral prices (assets): the
        venue's prices must be set. ``balance_legs`` (other participants' positions at the
        start price) are balanced by the population's shorts in the last entry round.
        Book the returned legs with :func:`book_legs`.
        """
        self = cls(name, accounts, params, seed)
        rng = self.rng
        p = params
        ch = venue.clearing  # type: ignore[attr-defined]
        n = len(self.accounts)
        if abs(sum(p.symbol_weights) - 1) > 1e-9 or len(p.symbol_weights) != len(p.symbols):
            raise ValueError("population: symbol_weights must match symbols and sum to 1")
        ks = np.array([ch.core.perp(s) for s in p.symbols], np.int64)
        self.home = ks[rng.choice(len(ks), n, p=np.asarray(p.symbol_weights))]
        long = rng.random(n) < p.long_share
        bnames = list(p.behaviours)
        beh = np.array([BEHAVIOURS[b] for b in bnames], np.int8)[
            rng.choice(len(bnames), n, p=np.array(list(p.behaviours.values())))
        ]
        self.behaviour = beh
        dip = beh == Behaviour.DIP_BUYER
        lev = np.exp(np.log(p.leverage_median) + p.leverage_sigma * rng.standard_normal(n))
        caps = np.array([ch.perps[k].tiers.max_leverage[0] for k in range(len(ch.perps))], np.float64)[self.home]
        lev = np.clip(lev, 1.0, np.minimum(p.leverage_max, caps))
        self.leverage = lev
        margin = np.exp(np.log(p.margin_median) + p.margin_sigma * rng.standard_normal(n))
        iso = (rng.random(n) < p.isolated_share) & ~dip
        assets = list(p.collateral)
        coll = np.array([ch.ledger.asset(a) for a in assets], np.int64)[
            rng.choice(len(assets), n, p=np.array(list(p.collateral.values())))
        ]
        coll[iso | dip] = ch.q
        self.collateral_asset = coll
        lo, hi = p.defend_ratio
        self.threshold = np.where(beh == Behaviour.DEFEND, rng.uniform(lo, hi, n), 0.0)
        self.threshold = np.where(beh == Behaviour.MOMENTUM, rng.uniform(*p.momentum_drop, n), self.threshold)
        self.threshold = np.where(dip, rng.uniform(*p.dip_depth, n), self.threshold)
        self.adds_margin = (beh == Behaviour.DEFEND) & (rng.random(n) < p.add_margin_share)
        self.shorts_when_flat = (beh == Behaviour.MOMENTUM) & (rng.random(n) < p.momentum_short_share)
        self.reserve = (margin * rng.uniform(*p.reserve_multiple, n) * MONEY_SCALE).astype(np.int64)
        price = ch.asset_price.astype(np.float64) / MONEY_SCALE
        ratio = ch.ratio.astype(np.float64) / 1e6
        unpriced = [ch.assets[a] for a in np.unique(coll).tolist() if price[a] <= 0 or ratio[a] <= 0]
        if unpriced:
            raise ValueError(f"population {name!r}: collateral {unpriced} has no price (or a zero ratio) at the venue yet")
        # positions: lots from margin x leverage at each account's entry price (isolated ones entered at the start price)
        holders = ~dip
        rounds = rng.integers(0, len(p.entry_factors), n)
        rounds[iso] = int(np.argmin(np.abs(np.asarray(p.entry_factors) - 1.0)))
        legs: list[Leg] = []
        marks = ch.marks.astype(np.float64)
        units = [ch.perps[k].instrument for k in range(len(ch.perps))]
        lots = np.zeros(n, np.int64)
        entry = np.zeros(n)
        held = {units[k].symbol for k in np.unique(self.home[holders]).tolist()}
        orphan = sorted({g.symbol for g in (balance_legs or []) if g.symbol not in held})
        if orphan:
            raise ValueError(
                f"population {name!r}: the starting positions of funds and makers in {orphan} need population accounts "
                "holding those perpetuals to take the other side (population.symbols, population.accounts)"
            )
        start_round = int(np.argmin(np.abs(np.asarray(p.entry_factors) - 1.0)))
        for k in np.unique(self.home[holders]).tolist():
            tick, lot = float(units[k].tick_size), float(units[k].lot_size)
            here = holders & (self.home == k)
            # a round needs both sides to cross; a one-sided round (small populations) joins the start-price round
            for r in range(len(p.entry_factors)):
                cell = here & (rounds == r)
                if r != start_round and (not (cell & long).any() or not (cell & ~long).any()):
                    rounds[cell] = start_round
            for r, f in enumerate(p.entry_factors):
                px = max(1, round(marks[k] * f))
                sel = here & (rounds == r)
                extra = [g for g in (balance_legs or []) if g.symbol == units[k].symbol] if r == start_round else []
                # a start round with holders on one side only (tiny populations) and nothing else to cross with:
                # its biggest holder takes the other side
                if sel.sum() >= 2 and (not (sel & long).any() or not (sel & ~long).any()):
                    big = np.flatnonzero(sel)[int(np.argmax((margin * lev)[sel]))]
                    long[big] = ~long[big]
                elif sel.sum() == 1 and not extra:  # a lone holder has no one to trade with: it starts flat
                    holders[sel] = False
                    here &= holders
                    continue
                entry[sel] = px
                longs = sel & long
                shorts = sel & ~long
                lots[longs] = np.maximum(1, np.floor(margin[longs] * lev[longs] / (px * tick * lot))).astype(np.int64)
                need = int(lots[longs].sum()) + sum(int(g.lots.sum()) for g in extra)
                takers = shorts if need > 0 else longs  # who takes the other side of the imbalance
                if need != 0:
                    if not takers.any():
                        takers = sel.copy()  # the extra legs alone are one-sided: the round's holders all take the other side
                        long[takers] = need < 0
                        lots[takers] = 0
                        longs, shorts = sel & long, sel & ~long
                        need = sum(int(g.lots.sum()) for g in extra)
                    if not takers.any():
                        raise ValueError(f"population: no accounts to balance {units[k].symbol} at entry round {r}")
                    w = margin[takers] * lev[takers]
                    s = np.floor(w / w.sum() * abs(need)).astype(np.int64)
                    s[np.argsort(-w, kind="stable")[: abs(need) - int(s.sum())]] += 1
                    lots[takers] += -s if need > 0 else s
                    # the other side is fewer, bigger accounts: each puts up the margin its own leverage needs
                    margin[takers] = np.maximum(margin[takers], np.abs(lots[takers]) * px * tick * lot / lev[takers])
                ids = np.concatenate([self.accounts[sel], *[g.accounts for g in extra]])
                qty = np.concatenate([lots[sel], *[g.lots for g in extra]])
                keep = qty != 0
                legs.append(Leg(units[k].symbol, px, ids[keep], qty[keep]))
        # venue limits: a notional in a higher tier allows less leverage; keep every account at or below its tier's
        # maximum leverage and at least twice its maintenance, as the venue would have required when it opened
        for k in np.unique(ks).tolist():
            here = holders & (self.home == k)
            tiers = ch.perps[k].tiers
            notional = np.abs(lots[here]) * entry[here] * float(units[k].unit_notional)  # money units
            t = np.minimum(np.searchsorted(np.asarray(tiers.caps, np.float64), notional, side="left"), len(tiers.caps) - 1)
            max_lev = np.asarray(tiers.max_leverage, np.float64)[t]
            mmr = np.asarray(tiers.mmr, np.float64)[t] / 1e6
            # the leverage each position is set at (isolated margin is allocated from it): within the tier's maximum
            # and low enough that its margin covers twice the maintenance; the account puts up that margin
            cfg = np.maximum(1, np.floor(np.minimum(np.minimum(lev[here], max_lev), 1.0 / (2.0 * mmr)))).astype(np.int64)
            margin[here] = np.maximum(margin[here], notional / MONEY_SCALE / cfg * 1.001)
            ch.configure_positions(units[k].symbol, self.accounts[here], cfg, iso[here])
        self.margin_target = margin
        # funding: each account's collateral such that its equity now is its margin (losses since entry were
        # topped up, gains count): the leverage it chose holds at the start
        unit = np.array([float(u.unit_notional) / MONEY_SCALE for u in units])[self.home]
        upnl = np.where(holders, (marks[self.home] - entry) * lots * unit, 0.0)
        need_value = np.maximum(margin - upnl, 0.1 * margin)
        amount = np.maximum(1, (need_value * MONEY_SCALE / (price[coll] * ratio[coll]))).astype(np.int64)
        for a in np.unique(coll).tolist():
            sel = coll == a
            ch.deposit_many(self.accounts[sel], ch.assets[a], amount[sel])
        # isolated accounts need their margin in the settlement asset (already USDT); others are set
        self.high = marks[self.home] * np.array([float(u.tick_size) for u in units])[self.home]
        return self, legs

    def start_thresholds(self, venue: object, headroom: float = 0.8, cap: float = 0.95) -> int:
        """Defenders' thresholds above where they start, once the opening positions are booked; returns how many moved.

        A defender acts when its margin ratio (maintenance / equity) reaches its threshold. One
        that starts at or near its threshold would have acted in the days before the run, so
        its threshold is raised to its starting ratio / ``headroom`` (at most ``cap``): at the
        start no defender's own rule has fired yet.
        """
        idx = np.flatnonzero(self.behaviour == Behaviour.DEFEND)
        if not len(idx):
            return 0
        eq, mm, _im, _iso = venue.clearing.exact_margins(self.accounts[idx])  # type: ignore[attr-defined]
        iso, peq, pmm = Client(venue, self.accounts).positions_margin(idx)
        kk, cols = self.home[idx], np.arange(len(idx))
        on_iso = iso[kk, cols]
        eq, mm = np.where(on_iso, peq[kk, cols], eq), np.where(on_iso, pmm[kk, cols], mm)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(eq > 0, mm / np.maximum(eq, 1), np.inf)
        low = ratio > headroom * self.threshold[idx]
        self.threshold[idx[low]] = np.minimum(cap, np.maximum(self.threshold[idx[low]], ratio[low] / headroom))
        return int(low.sum())

    # --- the protocol ----------------------------------------------------------------------------------
    def wake_at(self) -> int:
        """The next review or the next panic seller's reaction."""
        return min(self.schedule.next_ns, self._next_panic)

    def _queue_panics(self) -> None:
        """Order the pending panic reactions by due time (0 = done, NEVER = none scheduled)."""
        pending = np.flatnonzero((self.panic_due > 0) & (self.panic_due < NEVER))
        order = np.argsort(self.panic_due[pending], kind="stable")
        self._pq_idx = pending[order]
        self._pq_due = self.panic_due[self._pq_idx]
        self._pq_ptr = 0
        self._next_panic = int(self._pq_due[0]) if len(self._pq_due) else NEVER

    def _due_panics(self, now: int) -> np.ndarray:
        """Accounts whose panic reaction is due by ``now`` (each once), taken off the front of the queue."""
        end = int(np.searchsorted(self._pq_due, now, side="right"))
        due = self._pq_idx[self._pq_ptr : end]
        self._pq_ptr = end
        self._next_panic = int(self._pq_due[end]) if end < len(self._pq_due) else NEVER
        return due

    def watch(self) -> list[Watch]:
        """Per perpetual: the band between the nearest trigger below the mark and the nearest above."""
        out = []
        for (k, side), (keys, _, ptr) in self._sorted.items():
            if ptr >= len(keys):
                continue
            if side < 0:  # fires when the mark falls to the next trigger (keys are the triggers negated)
                out.append(Watch(k, WATCH_MARK, -float(keys[ptr]), float("inf")))
            else:
                out.append(Watch(k, WATCH_MARK, float("-inf"), float(keys[ptr])))
        return out

    def act(self, obs: Observation, client: Client) -> Requests:
        """One decision pass: reviews when due, news reactions, crossed triggers (all as arrays)."""
        _p, m, now = self.p, obs.market, obs.now_ns
        mark = np.where(m.mark > 0, m.mark * m.tick, np.nan)
        out: list[Requests] = []
        if not self._dips_placed:
            out.append(self._place_dips(m))
            self._dips_placed = True
        if obs.news:
            self._schedule_panic(obs)
        if self.schedule.due(now):
            self.schedule.advance(now)
            self._review(client, mark, np.asarray(m.lot, np.float64))
        fire = self._crossed(mark)
        panic = np.zeros(len(fire), np.bool_)
        if now >= self._next_panic:
            panic[self._due_panics(now)] = True
            self.panic_due[panic] = 0
            fire |= panic
        if fire.any():
            out.append(self._respond(np.flatnonzero(fire), panic, client, m, now))
        return Requests.concat(out)

    # --- decisions ----------------------------------------------------------------------------------
    def _place_dips(self, m: object) -> Requests:
        dip = np.flatnonzero(self.behaviour == Behaviour.DIP_BUYER)
        if not len(dip):
            return Requests()
        b = self.home[dip]
        ref = m.reference()[b]  # type: ignore[attr-defined]
        ok = np.isfinite(ref) & (ref > 0)
        dip, b, ref = dip[ok], b[ok], ref[ok]
        price = ref * (1 - self.threshold[dip])
        tick = m.tick[b]  # type: ignore[attr-defined]
        ticks = np.maximum(1, np.floor(price / tick)).astype(np.int64)
        lots = np.floor(self.margin_target[dip] * self.leverage[dip] / (ticks * tick * m.lot[b])).astype(np.int64)  # type: ignore[attr-defined]
        keep = lots > 0
        return Requests(orders(self.accounts[dip[keep]], b[keep], 1, lots[keep], ticks[keep]))

    def _schedule_panic(self, obs: Observation) -> None:
        sev = max(n.severity for n in obs.news)
        who = (self.behaviour == Behaviour.PANIC) & (self.panic_due == NEVER)
        idx = np.flatnonzero(who)
        react = self.rng.random(len(idx)) < sev
        idx = idx[react]
        delay = self.p.panic_delay_median_s * np.exp(self.p.panic_delay_sigma * self.rng.standard_normal(len(idx)))
        self.panic_due[idx] = obs.now_ns + (delay * SECOND_NS).astype(np.int64)
        self._queue_panics()

    def _review(self, client: Client, mark: np.ndarray, lot: np.ndarray) -> None:
        """Recompute every live account's trigger price from its exact margin now (array code)."""
        n = len(self.accounts)
        size = client.positions_in(self.home)
        alive = client.state() == AccountState.NORMAL
        mk = mark[self.home]
        self.high = np.where(np.isfinite(mk), np.maximum(self.high, mk), self.high)
        trig = np.full(n, np.nan)
        side = np.zeros(n, np.int8)
        d = np.flatnonzero(alive & (size != 0) & (self.behaviour == Behaviour.DEFEND))
        if len(d):
            eq, mm, _ = client.margin(d)
            # an isolated position is liquidated on its own margin: its defender watches that, not the account
            iso, peq, pmm = client.positions_margin(d)
            kk = self.home[d]
            cols = np.arange(len(d))
            on_iso = iso[kk, cols]
            eq = np.where(on_iso, peq[kk, cols], eq)
            mm = np.where(on_iso, pmm[kk, cols], mm)
            q = size[d].astype(np.float64)
            unit = lot[self.home[d]]
            p0 = mk[d]
            r = self.threshold[d]
            e0, m0 = eq / MONEY_SCALE, mm / MONEY_SCALE
            # equity(P) ~ e0 + q*unit*(P - p0); maintenance(P) ~ m0 * P / p0; fire when maintenance = r * equity
            denom = m0 / p0 - r * q * unit
            with np.errstate(divide="ignore", invalid="ignore"):
                pstar = r * (e0 - q * unit * p0) / denom
            ok = np.isfinite(pstar) & (pstar > 0)
            trig[d[ok]] = pstar[ok]
            side[d] = np.where(q > 0, -1, 1)
        mo = np.flatnonzero(alive & (self.behaviour == Behaviour.MOMENTUM) & ((size > 0) | ((size == 0) & self.shorts_when_flat)))
        trig[mo] = self.high[mo] * (1 - self.threshold[mo])
        side[mo] = -1
        self.trigger, self.trigger_side = trig, side
        self._index()

    def _index(self) -> None:
        """Per (perpetual, direction): ascending keys (the triggers, negated for falls), their accounts, a pointer."""
        self._sorted = {}
        ok = np.isfinite(self.trigger) & (self.trigger_side != 0)
        for k in np.unique(self.home[ok]).tolist():
            for side in (-1, 1):
                sel = np.flatnonzero(ok & (self.home == k) & (self.trigger_side == side))
                if not len(sel):
                    continue
                keys = -self.trigger[sel] if side < 0 else self.trigger[sel]  # the nearest trigger first
                order = np.argsort(keys, kind="stable")
                self._sorted[(k, side)] = (keys[order], sel[order], 0)

    def _crossed(self, mark: np.ndarray) -> np.ndarray:
        """Accounts whose trigger the current mark has reached (each fires once until the next review)."""
        fire = np.zeros(len(self.accounts), np.bool_)
        for key, (keys, idx, ptr) in list(self._sorted.items()):
            k, side = key
            mk = mark[k]
            if not np.isfinite(mk):
                continue
            # falls fire where trigger >= mark (key <= -mark); rises where trigger <= mark (key <= mark)
            end = int(np.searchsorted(keys, -mk if side < 0 else mk, side="right"))
            if end > ptr:
                fire[idx[ptr:end]] = True
                self._sorted[key] = (keys, idx, end)
        return fire

    def _respond(self, idx: np.ndarray, panic: np.ndarray, client: Client, m: object, now: int) -> Requests:
        """Orders and top-ups of the accounts that fired (respecting each account's cooldown)."""
        cool = int(self.p.cooldown_s * SECOND_NS)
        idx = idx[(now - self.last_action[idx] >= cool) | panic[idx]]
        if not len(idx):
            return Requests()
        alive = client.state(idx) == AccountState.NORMAL
        idx = idx[alive]
        if not len(idx):
            return Requests()
        self.last_action[idx] = now
        size = client.positions_in(self.home[idx], idx)
        beh = self.behaviour[idx]
        out: list[Requests] = []
        deposit = (beh == Behaviour.DEFEND) & self.adds_margin[idx] & (self.reserve[idx] > 0) & (size != 0)
        if deposit.any():
            j = idx[deposit]
            eq, mm, _ = client.margin(j)
            r = np.maximum(self.threshold[j], 1e-6)
            need = np.maximum(0, (3.0 * mm / r - eq)).astype(np.int64)
            amount = np.minimum(need, self.reserve[j])
            go = amount > 0
            self.reserve[j[go]] -= amount[go]
            self.actions["deposits"] += int(go.sum())
            q = client.asset_index("USDT")
            out.append(Requests(account=account_requests(self.accounts[j[go]], AccountOp.DEPOSIT, q, amount[go])))
        close = (~deposit) & (size != 0)
        if close.any():
            j = idx[close]
            s = size[close]
            out.append(Requests(orders(self.accounts[j], self.home[j], np.where(s > 0, -1, 1), np.abs(s), 0, Op.MARKET, TIF.IOC,
                                       FLAG_REDUCE_ONLY)))  # fmt: skip
            self.actions["closes"] += len(j)
            self.actions["panic"] += int(panic[j].sum())
        opens = (beh == Behaviour.MOMENTUM) & (size == 0) & self.shorts_when_flat[idx]
        if opens.any():
            j = idx[opens]
            b = self.home[j]
            ref = m.reference()[b]  # type: ignore[attr-defined]
            okp = np.isfinite(ref) & (ref > 0)
            j, b, ref = j[okp], b[okp], ref[okp]
            lots = np.floor(self.margin_target[j] * self.leverage[j] / (ref * m.lot[b])).astype(np.int64)  # type: ignore[attr-defined]
            go = lots > 0
            out.append(Requests(orders(self.accounts[j[go]], b[go], -1, lots[go], 0, Op.MARKET, TIF.IOC)))
            self.actions["shorts"] += int(go.sum())
            self.shorts_when_flat[j] = False
        return Requests.concat(out)


def book_legs(venue: object, legs: list[Leg], ts: int = 0) -> int:
    """Book every leg through the clearing house's opening auction; returns the number of fills."""
    ch = venue.clearing  # type: ignore[attr-defined]
    fills = 0
    for g in legs:
        if len(g.accounts):
            fills += len(ch.opening_auction(g.symbol, g.accounts, g.lots, g.price_ticks, ts))
    return fills


__all__ = ["BEHAVIOURS", "Behaviour", "Leg", "LeveragedTraders", "TraderParams", "book_legs"]
