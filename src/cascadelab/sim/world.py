"""The exogenous world: external prices, news and outages — the only scripted inputs of a run.

A :class:`ScriptedWorld` quotes external prices to the venue's indices on a grid
(default once per second of market time), publishes news at their times, and opens and
closes outage windows (order and account requests of chosen agents refused, or delayed).
Everything else in a run comes from the participants' rules and the venue's mechanics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from cascadelab.agents.base import External, News
from cascadelab.units import SECOND_NS

PricePath = Callable[[int], float]
"""An external price as a function of market time (ns), in quote per base."""


@dataclass(frozen=True)
class Outage:
    """An API outage window for a group of agents: their requests are refused (``reject``) or delayed."""

    start_ns: int
    end_ns: int
    agents: frozenset[str]  # agent names
    mode: str = "reject"  # "reject" | "delay"
    delay_ns: int = 0  # extra latency in "delay" mode

    def active(self, now_ns: int) -> bool:
        """Whether the window covers ``now_ns``."""
        return self.start_ns <= now_ns < self.end_ns


@dataclass
class ScriptedWorld:
    """External prices from paths, news at fixed times, outage windows.

    ``instrument_paths`` map a venue instrument's symbol to its external reference (a
    perpetual's index; a spot pair's outside value of its base, e.g. a redemption value);
    ``asset_paths`` map a collateral asset to its external index (used by ``("index",
    asset)`` valuations).
    """

    symbols: tuple[str, ...]
    instrument_paths: dict[str, PricePath]
    asset_paths: dict[str, PricePath] = field(default_factory=dict)
    news: list[News] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    feed_every_ns: int = SECOND_NS
    external: External = field(init=False)
    _next_feed_ns: int = field(default=0, init=False)
    _news_done: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        unknown = set(self.instrument_paths) - set(self.symbols)
        if unknown:
            raise ValueError(f"external paths for unknown instruments {sorted(unknown)}; instruments: {list(self.symbols)}")
        self.news = sorted(self.news, key=lambda n: n.ts)
        self.external = External(np.full(len(self.symbols), np.nan))

    def advance(self, now_ns: int, venue: object) -> list[News]:
        """Bring the world to ``now_ns``: quote prices when due; return news published since the last call."""
        if now_ns >= self._next_feed_ns:
            self._feed(now_ns, venue)
            self._next_feed_ns = (now_ns // self.feed_every_ns + 1) * self.feed_every_ns
        out = []
        while self._news_done < len(self.news) and self.news[self._news_done].ts <= now_ns:
            out.append(self.news[self._news_done])
            self._news_done += 1
        self.external.news.extend(out)
        return out

    def _feed(self, now_ns: int, venue: object) -> None:
        ref = self.external.reference
        markets = venue.markets  # type: ignore[attr-defined]
        for j, symbol in enumerate(self.symbols):
            path = self.instrument_paths.get(symbol)
            if path is None:
                continue
            price = float(path(now_ns))
            ref[j] = price
            if symbol in markets and math.isfinite(price) and price > 0:
                venue.feed_index(symbol, _fraction(price), now_ns)  # type: ignore[attr-defined]
        for asset, path in self.asset_paths.items():
            price = float(path(now_ns))
            self.external.assets[asset] = price
            if asset in venue.asset_indices and math.isfinite(price) and price > 0:  # type: ignore[attr-defined]
                venue.feed_index(asset, _fraction(price), now_ns)  # type: ignore[attr-defined]

    def outage_state(self, now_ns: int) -> list[Outage]:
        """Outage windows active at ``now_ns``."""
        return [o for o in self.outages if o.active(now_ns)]


def _fraction(price: float) -> Fraction:
    """A float price as an exact fraction with 1e-8 resolution."""
    return Fraction(round(price * 100_000_000), 100_000_000)


__all__ = ["Outage", "PricePath", "ScriptedWorld"]
