"""Hedged funds (BRIEF §4): long majors, short an altcoin as a hedge, re-hedged by their own rule.

A :class:`HedgedFund` holds long perpetuals (e.g. BTC, ETH) and a short on an altcoin
perpetual as the hedge, booked at the start. Every review it compares the short's notional
with the longs'; if the hedge has shrunk below ``rehedge_below`` of its target (e.g. ADL
closed it), it re-shorts with an IOC order, but only when the altcoin book is sane (spread
within ``max_spread_bps``): a fund does not sell into a broken book. Until then its longs
are naked. That is how ADL breaks a hedge and the other leg is liquidated in the cascade.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cascadelab.agents.base import Client, Observation, Requests, Schedule, Watch, check_params, orders
from cascadelab.agents.population import Leg
from cascadelab.clearing.accounts import AccountState
from cascadelab.records import TIF, AccountType, Op
from cascadelab.units import MONEY_SCALE, SECOND_NS


@dataclass
class FundParams:
    """A hedged fund's book and rule (notionals in quote units)."""

    longs: dict[str, float] = field(default_factory=lambda: {"BTCUSDT": 3_000_000.0, "ETHUSDT": 2_000_000.0})
    hedge_symbol: str = "DOGEUSDT"
    hedge_ratio: float = 1.0  # short notional / long notional at the start
    leverage: int = 10
    margin: float = 700_000.0
    review_s: float = 30.0
    rehedge_below: float = 0.5
    max_spread_bps: float = 100.0

    def __post_init__(self) -> None:
        check_params(self, positive=("hedge_ratio", "leverage", "margin", "review_s", "max_spread_bps"),
                     non_negative=("rehedge_below",))  # fmt: skip
        if not self.longs or any(not (v > 0) for v in self.longs.values()):
            raise ValueError(f"FundParams.longs: notionals must be > 0, got {self.longs!r}")


class HedgedFund:
    """A fund long majors and short an altcoin (see the module docstring)."""

    account_type = AccountType.FUND
    wake_on_fills = False
    wake_on_news = False
    reads: frozenset[str] = frozenset()  # no records of its own are sent: it reads its accounts through its client

    def __init__(self, name: str, account: int, params: FundParams, latency_ns: int = 50_000_000, jitter_ns: int = 50_000_000):
        self.name = name
        self.accounts = np.array([account], np.int64)
        self.p = params
        self.latency_ns, self.jitter_ns = latency_ns, jitter_ns
        self.schedule = Schedule(int(params.review_s * SECOND_NS))
        self.target_short = 0.0
        self.leverage_used: dict[str, int] = {}  # the leverage each leg is margined at (its tiers may cap it)
        self.initial_margin = 0.0  # quote units its legs need at the start
        self.hedge_broken_ns: int | None = None
        self.rehedges = 0

    def legs(self, venue: object) -> list[Leg]:
        """Fund the account and return its starting positions at the venue's marks (to book with the others)."""
        ch = venue.clearing  # type: ignore[attr-defined]
        me = self.accounts
        ch.deposit_many(me, ch.settle_asset, np.array([int(self.p.margin * MONEY_SCALE)]))
        out: list[Leg] = []
        self.leverage_used = {}
        self.initial_margin = 0.0

        def leg(symbol: str, notional: float, sign: int) -> float:
            """Book one leg of about ``notional`` at the leverage its tiers allow; returns its exact notional."""
            k = ch.core.perp(symbol)
            inst = ch.perps[k].instrument
            price = float(ch.marks[k]) * float(inst.tick_size)
            lots = int(notional / (price * float(inst.lot_size)))
            value = lots * price * float(inst.lot_size)
            lev = min(self.p.leverage, ch.leverage_cap(symbol, int(value * MONEY_SCALE)))
            ch.configure_positions(symbol, me, lev, False)
            out.append(Leg(symbol, int(ch.marks[k]), me.copy(), np.array([sign * lots], np.int64)))
            self.leverage_used[symbol] = lev
            self.initial_margin += value / lev
            return value

        total = sum(leg(symbol, notional, 1) for symbol, notional in self.p.longs.items())
        self.target_short = leg(self.p.hedge_symbol, total * self.p.hedge_ratio, -1)
        return out

    def wake_at(self) -> int:
        """Every review."""
        return self.schedule.next_ns

    def watch(self) -> list[Watch]:
        """No price bands: it reviews on its schedule."""
        return []

    def act(self, obs: Observation, client: Client) -> Requests:
        """Re-hedge if the short leg has shrunk and the altcoin book is sane."""
        m, p = obs.market, self.p
        self.schedule.advance(obs.now_ns)
        if client.state()[0] != AccountState.NORMAL:
            return Requests()
        k = m.index(p.hedge_symbol)
        ref = float(m.reference()[k])
        if not (math.isfinite(ref) and ref > 0):
            return Requests()
        short = -float(client.positions()[k, 0]) * float(m.lot[k]) * ref
        ref_all = m.reference()
        longs = sum(max(0.0, float(client.positions()[m.index(s), 0]) * float(m.lot[m.index(s)]) * float(ref_all[m.index(s)]))
                    for s in p.longs)  # fmt: skip
        want = longs * p.hedge_ratio
        if want <= 0 or short >= p.rehedge_below * want:
            return Requests()
        if self.hedge_broken_ns is None:
            self.hedge_broken_ns = obs.now_ns
        spread = float(m.spread_bps()[k])
        if not math.isfinite(spread) or spread > p.max_spread_bps:
            return Requests()  # the book is broken: the longs stay naked for now
        lots = int((want - short) / (ref * float(m.lot[k])))
        if lots <= 0:
            return Requests()
        self.rehedges += 1
        return Requests(orders(self.accounts[0], k, -1, lots, 0, Op.MARKET, TIF.IOC))


__all__ = ["FundParams", "HedgedFund"]
