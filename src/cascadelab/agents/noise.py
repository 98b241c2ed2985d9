"""Noise traders and news-driven sellers: vectorized populations on simple public rules.

* :class:`NoiseTraders`: each account trades at random times (Poisson, ``rate_per_min``),
  a random side, a lognormal notional; a share of orders are marketable, the rest rest
  near the touch. Their flow keeps a calm book two-sided; it does not follow the news.
* :class:`NewsSellers`: accounts that learn of the news and, each after its own reaction
  delay (lognormal, seconds to minutes), sell: close a long with a reduce-only market
  order, or open a short of their chosen size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascadelab.agents.base import NEVER, Client, Observation, Requests, Schedule, Watch, orders
from cascadelab.records import FLAG_REDUCE_ONLY, TIF, AccountType, Op


@dataclass
class NoiseParams:
    """Noise flow: who trades what, how often, how big."""

    symbols: tuple[str, ...]
    rate_per_min: float = 0.5  # orders per account per minute
    notional_median: float = 2_000.0
    notional_sigma: float = 1.0  # lognormal σ of the notional
    marketable_share: float = 0.5
    passive_offset_bps: float = 5.0  # resting orders: this far from the reference price (exponential)
    every_ms: int = 1_000


class NoiseTraders:
    """A vectorized population of noise traders (see the module docstring)."""

    account_type = AccountType.NOISE
    wake_on_fills = False
    wake_on_news = False
    reads: frozenset[str] = frozenset()  # no records of its own are sent: it reads its accounts through its client

    def __init__(self, name: str, accounts: np.ndarray, params: NoiseParams, seed: int, latency_ns: int = 50_000_000,
                 jitter_ns: int = 50_000_000):  # fmt: skip
        self.name = name
        self.accounts = np.asarray(accounts, np.int64)
        self.p = params
        self.rng = np.random.default_rng(seed)
        self.latency_ns, self.jitter_ns = latency_ns, jitter_ns
        self.schedule = Schedule(params.every_ms * 1_000_000)
        self._symbols: np.ndarray | None = None
        self.home = self.rng.integers(0, len(params.symbols), len(self.accounts))

    def wake_at(self) -> int:
        """Every ``every_ms``."""
        return self.schedule.next_ns

    def watch(self) -> list[Watch]:
        """Noise does not watch prices."""
        return []

    def act(self, obs: Observation, client: Client) -> Requests:
        """Draw this interval's orders for the whole population at once."""
        p, m, rng = self.p, obs.market, self.rng
        self.schedule.advance(obs.now_ns)
        if self._symbols is None:
            self._symbols = np.array([m.index(s) for s in p.symbols], np.int64)
        dt_min = p.every_ms / 60_000
        n = rng.poisson(len(self.accounts) * p.rate_per_min * dt_min)
        if n == 0:
            return Requests()
        who = rng.integers(0, len(self.accounts), n)
        b = self._symbols[self.home[who]]
        ref = m.reference()[b]
        ok = np.isfinite(ref) & (ref > 0)
        if not ok.any():
            return Requests()
        who, b, ref = who[ok], b[ok], ref[ok]
        n = len(who)
        side = np.where(rng.random(n) < 0.5, 1, -1)
        notional = p.notional_median * np.exp(p.notional_sigma * rng.standard_normal(n))
        lots = np.maximum(1, np.floor(notional / (ref * m.lot[b]))).astype(np.int64)
        marketable = rng.random(n) < p.marketable_share
        off = rng.exponential(p.passive_offset_bps, n) / 1e4
        price = np.where(side > 0, ref * (1 - off), ref * (1 + off))
        ticks = np.where(side > 0, np.floor(price / m.tick[b]), np.ceil(price / m.tick[b])).astype(np.int64)
        ticks = np.maximum(ticks, 1)
        kind = np.where(marketable, Op.MARKET, Op.LIMIT)
        tif = np.where(marketable, TIF.IOC, TIF.GTC)
        new = orders(self.accounts[who], b, side, lots, np.where(marketable, 0, ticks), kind, tif)
        # a trader's earlier resting order goes when it places the next one (noise orders do not linger for hours)
        out = np.zeros(2 * len(new), new.dtype)
        out[0::2] = orders(self.accounts[who], b, 0, 0, 0, Op.CANCEL_ALL)
        out[1::2] = new
        return Requests(out)


@dataclass
class NewsSellerParams:
    """Who sells on the news, after how long, how much."""

    symbols: tuple[str, ...]
    delay_median_s: float = 120.0
    delay_sigma: float = 1.0
    short_notional: float = 20_000.0  # accounts without a long open a short of about this size


class NewsSellers:
    """Accounts that sell after news, each after its own delay (see the module docstring)."""

    account_type = AccountType.RETAIL
    wake_on_fills = False
    wake_on_news = True
    reads: frozenset[str] = frozenset()  # no records of its own are sent: it reads its accounts through its client

    def __init__(self, name: str, accounts: np.ndarray, params: NewsSellerParams, seed: int, latency_ns: int = 100_000_000,
                 jitter_ns: int = 100_000_000):  # fmt: skip
        self.name = name
        self.accounts = np.asarray(accounts, np.int64)
        self.p = params
        self.rng = np.random.default_rng(seed)
        self.latency_ns, self.jitter_ns = latency_ns, jitter_ns
        self.home = self.rng.integers(0, len(params.symbols), len(self.accounts))
        self.due = np.full(len(self.accounts), NEVER, np.int64)  # when each reacts
        self.done = np.zeros(len(self.accounts), np.bool_)

    def wake_at(self) -> int:
        """The next account's reaction time."""
        pending = self.due[~self.done]
        return int(pending.min()) if len(pending) else NEVER

    def watch(self) -> list[Watch]:
        """No price bands: news and delays drive it."""
        return []

    def act(self, obs: Observation, client: Client) -> Requests:
        """Schedule reactions to new news; sell for the accounts whose delay has passed."""
        p, m = self.p, obs.market
        if obs.news:
            sev = max(n.severity for n in obs.news)
            fresh = (self.due == NEVER) & ~self.done
            delay = p.delay_median_s * np.exp(p.delay_sigma * self.rng.standard_normal(int(fresh.sum())))
            react = self.rng.random(int(fresh.sum())) < sev
            d = self.due[fresh]
            d[react] = obs.now_ns + (delay[react] * 1e9).astype(np.int64)
            self.due[fresh] = d
        go = (self.due <= obs.now_ns) & ~self.done
        if not go.any():
            return Requests()
        self.done |= go
        idx = np.flatnonzero(go)
        b = np.array([m.index(s) for s in p.symbols], np.int64)[self.home[idx]]
        pos = client.positions_in(b, idx)
        ref = m.reference()[b]
        long = pos > 0
        short_lots = np.where(
            np.isfinite(ref) & (ref > 0), np.floor(p.short_notional / (np.nan_to_num(ref, nan=1.0) * m.lot[b])), 0
        )
        qty = np.where(long, pos, short_lots).astype(np.int64)
        keep = qty > 0
        if not keep.any():
            return Requests()
        flags = np.where(long, FLAG_REDUCE_ONLY, 0)
        return Requests(orders(self.accounts[idx[keep]], b[keep], -1, qty[keep], 0, Op.MARKET, TIF.IOC, flags[keep]))


__all__ = ["NewsSellerParams", "NewsSellers", "NoiseParams", "NoiseTraders"]
