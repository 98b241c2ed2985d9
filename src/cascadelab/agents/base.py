"""The one interface every market participant implements, and what it may see.

A participant (:class:`Agent`) owns a set of accounts and is *woken* on its own schedule
(:meth:`Agent.wake_at`), by market data (:meth:`Agent.watch`: price bands it declares; the
simulation checks every agent's bands with one array test per step, so a quiet market
costs little), by news, or by records of its own accounts (fills, rejects, liquidation
events). Woken, it reads an :class:`Observation` (the venue's public market data,
the external world's public prices and news, and the records of its own accounts since its
last wake: fills, acks, rejects, cancels, liquidation events) and a :class:`Client` (the
venue's read-only account endpoint, restricted to its own accounts), and returns
:class:`Requests`: typed order and account requests. The simulation stamps them with the
agent's latency (plus jitter from the run's seeded generator) and the venue processes them
in time order. A rejected request comes back as a reject in a later observation, never as
an exception. The same interface serves one Python agent and a vectorized population that
answers for a million accounts with arrays.

Agents never touch the ledger and never read another agent's state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from cascadelab.book.kernels import owner_depth
from cascadelab.records import (
    ACCOUNT_ACK,
    ACCOUNT_REQUEST,
    ACK,
    CANCEL,
    FILL,
    LIQ_EVENT,
    ORDER_REQUEST,
    STP,
    TIF,
    AccountOp,
    AccountType,
    Op,
    stack,
)
from cascadelab.venue.feed import MarketData

NEVER = np.iinfo(np.int64).max
"""``wake_at`` of an agent with no scheduled wake."""


@dataclass(frozen=True)
class News:
    """A public information event (e.g. the tariff announcement); ``severity`` in 0..1."""

    ts: int
    name: str
    severity: float


@dataclass
class External:
    """Public prices outside the venue: reference price per venue instrument and per asset, and all news so far.

    ``reference[b]`` is the external index of perpetual ``b`` or the outside value of spot
    pair ``b``'s base (e.g. USDe's redemption value), in quote per base; NaN where none.
    """

    reference: np.ndarray
    assets: dict[str, float] = field(default_factory=dict)
    news: list[News] = field(default_factory=list)


@dataclass
class Observation:
    """What an agent sees when woken: public data and its own accounts' records since its last wake."""

    now_ns: int
    market: MarketData
    external: External
    news: tuple[News, ...] = ()
    fills: np.ndarray = field(default_factory=lambda: np.zeros(0, FILL))
    acks: np.ndarray = field(default_factory=lambda: np.zeros(0, ACK))
    account_acks: np.ndarray = field(default_factory=lambda: np.zeros(0, ACCOUNT_ACK))
    cancels: np.ndarray = field(default_factory=lambda: np.zeros(0, CANCEL))
    liquidations: np.ndarray = field(default_factory=lambda: np.zeros(0, LIQ_EVENT))

    @property
    def rejects(self) -> np.ndarray:
        """Acks of refused order requests (reason != OK)."""
        return self.acks[self.acks["reason"] != 0]


class Client:
    """Read-only account endpoint of one agent: positions, balances, debts and margin of its own accounts.

    Every method answers for ``accounts`` (the agent's accounts, in its order) or for a
    subset given as positions into that array. Values are exact integers (lots, money units).
    """

    def __init__(self, venue: object, accounts: np.ndarray) -> None:
        self._venue = venue
        self.accounts = np.ascontiguousarray(accounts, np.int64)
        self._two = np.zeros(2, np.int64)  # scratch for resting_depth

    def _ids(self, which: np.ndarray | None) -> np.ndarray:
        return self.accounts if which is None else self.accounts[which]

    def positions(self, which: np.ndarray | None = None) -> np.ndarray:
        """Signed position sizes in lots, (perpetuals, accounts)."""
        return self._venue.clearing.accounts.size[:, self._ids(which)]  # type: ignore[attr-defined]

    def positions_in(self, perps: np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
        """Signed position sizes in lots, each account's in its own perpetual (``perps[i]`` for account ``i``)."""
        return self._venue.clearing.accounts.size[perps, self._ids(which)]  # type: ignore[attr-defined]

    def position(self, perp: int, which: int = 0) -> int:
        """Signed position in lots of one account (by position in ``accounts``) in one perpetual: a scalar read."""
        return int(self._venue.clearing.accounts.size[perp, self.accounts[which]])  # type: ignore[attr-defined]

    def position_cost(self, perp: int, which: int = 0) -> int:
        """Open cost basis in money units of one account in one perpetual: a scalar read."""
        return int(self._venue.clearing.accounts.cost[perp, self.accounts[which]])  # type: ignore[attr-defined]

    def balance(self, asset: str, which: int = 0) -> int:
        """Balance of ``asset`` in money units of one account: a scalar read."""
        ch = self._venue.clearing  # type: ignore[attr-defined]
        return int(ch.ledger.balances[ch.ledger.asset(asset), self.accounts[which]])

    def cost(self, which: np.ndarray | None = None) -> np.ndarray:
        """Open cost basis in money units, (perpetuals, accounts)."""
        return self._venue.clearing.accounts.cost[:, self._ids(which)]  # type: ignore[attr-defined]

    def balances(self, asset: str, which: np.ndarray | None = None) -> np.ndarray:
        """Balances of ``asset`` in money units."""
        ch = self._venue.clearing  # type: ignore[attr-defined]
        return ch.ledger.balances[ch.ledger.asset(asset), self._ids(which)]

    def debt(self, asset: str, which: np.ndarray | None = None) -> np.ndarray:
        """Debts in ``asset`` (money units)."""
        ch = self._venue.clearing  # type: ignore[attr-defined]
        return ch.accounts.debt[ch.ledger.asset(asset), self._ids(which)]

    def margin(self, which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact (equity, maintenance, initial) in money units, as the venue computes them."""
        eq, mm, im, _ = self._venue.clearing.exact_margins(self._ids(which))  # type: ignore[attr-defined]
        return eq, mm, im

    def ltv(self, which: np.ndarray | None = None) -> np.ndarray:
        """Loan-to-value in millionths (0 without debt)."""
        ch = self._venue.clearing  # type: ignore[attr-defined]
        return np.array([ch.ltv(int(i)) for i in self._ids(which)], np.int64)

    def state(self, which: np.ndarray | None = None) -> np.ndarray:
        """Account lifecycle states (AccountState codes)."""
        return self._venue.clearing.accounts.state[self._ids(which)]  # type: ignore[attr-defined]

    def asset_index(self, asset: str) -> int:
        """The clearing house's index of ``asset`` (for account requests)."""
        return int(self._venue.clearing.ledger.asset(asset))  # type: ignore[attr-defined]

    def collateral_ratio(self, asset: str) -> float:
        """The venue's collateral ratio (haircut) of ``asset``, 0..1 (public)."""
        ch = self._venue.clearing  # type: ignore[attr-defined]
        return float(ch.ratio[ch.ledger.asset(asset)]) / 1e6

    def positions_margin(self, which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per perpetual x account: (isolated, equity of the position, maintenance), money units.

        For an isolated position the equity is its earmarked margin plus its unrealized PnL at
        the mark (what the venue liquidates it on); for a cross one, its unrealized PnL. The
        maintenance is the position's own, at its tier.
        """
        from cascadelab.liquidation import kernels as LK  # the venue's own position figures

        ch = self._venue.clearing  # type: ignore[attr-defined]
        ids = np.ascontiguousarray(self._ids(which), np.int64)
        shape = (len(ch.perps), len(ids))
        upnl, maint, notional, mmr = (np.zeros(shape, np.int64) for _ in range(4))
        if len(ids):
            LK.position_figures(ch.core.params, ch.accounts.arrays, ids, upnl, maint, notional, mmr)
        iso = ch.accounts.isolated[:, ids]
        return iso, np.where(iso, ch.accounts.iso_margin[:, ids] + upnl, upnl), maint

    def resting_depth(self, instrument: int, bps: int, which: int = 0) -> tuple[int, int]:
        """Money units of its own resting orders within ±``bps`` of the book's band centre (bids, asks).

        The same band as the feed's ``MarketData.depth``, so the difference is what the other
        participants offer there.
        """
        v = self._venue
        out = self._two
        owner_depth(v.book_set.st, int(instrument), int(self.accounts[which]), int(bps), out)  # type: ignore[attr-defined]
        unit = int(v.feed.data.unit_notional[instrument])  # type: ignore[attr-defined]
        return int(out[0]) * unit, int(out[1]) * unit

    def liquidation_ltv(self) -> float:
        """The venue's published LTV (0..1) at which a loan account is liquidated (public terms)."""
        return float(self._venue.clearing.loan_terms.liquidation_ltv) / 1e6  # type: ignore[attr-defined]

    def collateral_price(self, asset: str) -> float:
        """The venue's current valuation price of ``asset`` (quote per coin, float)."""
        ch = self._venue.clearing  # type: ignore[attr-defined]
        return float(ch.asset_price[ch.ledger.asset(asset)]) / 1e8


def check_params(obj: object, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
                 ranges: tuple[str, ...] = (), shares: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Validate an agent's parameter record at construction: finite numbers, signs, ``(low, high)`` pairs, shares.

    Raises ``ValueError`` naming the record, the field and what is allowed (a scenario file is
    validated by its schema; this guards agents built directly from Python).
    """
    name = type(obj).__name__
    for f in positive + non_negative:
        v = getattr(obj, f)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
            raise ValueError(f"{name}.{f}: must be a finite number, got {v!r}")
        if (f in positive and v <= 0) or v < 0:
            raise ValueError(f"{name}.{f}: must be {'> 0' if f in positive else '>= 0'}, got {v!r}")
    for f in ranges:
        v = tuple(getattr(obj, f))
        if len(v) != 2 or not all(np.isfinite(x) and x >= 0 for x in v) or v[0] > v[1]:
            raise ValueError(f"{name}.{f}: must be (low, high) with 0 <= low <= high, got {v!r}")
    for f in shares:
        d = getattr(obj, f)
        vals = list(d.values())
        if not vals or any(not np.isfinite(x) or x < 0 for x in vals) or abs(sum(vals) - 1) > 1e-9:
            raise ValueError(f"{name}.{f}: shares must be >= 0 and sum to 1, got {d!r}")


_NO_ORDERS = np.zeros(0, ORDER_REQUEST)
_NO_ACCOUNT_REQUESTS = np.zeros(0, ACCOUNT_REQUEST)


@dataclass
class Requests:
    """What an agent sends: order requests and account requests (time stamps are set by the simulation)."""

    orders: np.ndarray = field(default_factory=lambda: _NO_ORDERS)  # empty defaults are shared (nothing to mutate)
    account: np.ndarray = field(default_factory=lambda: _NO_ACCOUNT_REQUESTS)

    def __len__(self) -> int:
        return len(self.orders) + len(self.account)

    @staticmethod
    def concat(parts: list[Requests]) -> Requests:
        """One Requests from many (order preserved)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Requests()
        if len(parts) == 1:
            return parts[0]
        return Requests(stack([p.orders for p in parts], ORDER_REQUEST), stack([p.account for p in parts], ACCOUNT_REQUEST))


def orders(
    account: np.ndarray | int,
    instrument: np.ndarray | int,
    side: np.ndarray | int,
    qty: np.ndarray | int,
    price: np.ndarray | int = 0,
    kind: Op | np.ndarray = Op.LIMIT,
    tif: TIF | np.ndarray = TIF.GTC,
    flags: np.ndarray | int = 0,
    order_id: np.ndarray | int = 0,
) -> np.ndarray:
    """ORDER_REQUEST rows from broadcast columns (the simulation sets ``ts``); STP cancels the resting order."""
    values = (account, instrument, side, qty, price, kind, tif, flags, order_id)
    names = ("account", "instrument", "side", "qty", "price", "kind", "tif", "flags", "order_id")
    n = 1
    for x in values:
        if isinstance(x, np.ndarray) and x.ndim:
            n = len(x)
            break
    out = np.zeros(n, ORDER_REQUEST)
    for name, col in zip(names, values, strict=True):
        if isinstance(col, np.ndarray) or col != 0:
            out[name] = col
    out["stp"] = STP.CANCEL_RESTING
    return out


def account_requests(account: np.ndarray | int, kind: AccountOp, asset: int, amount: np.ndarray | int) -> np.ndarray:
    """ACCOUNT_REQUEST rows from broadcast columns (the simulation sets ``ts``)."""
    a, m = np.broadcast_arrays(np.asarray(account), np.asarray(amount))
    out = np.zeros(a.shape[0] if a.ndim else 1, ACCOUNT_REQUEST)
    out["account"] = a
    out["amount"] = m
    out["asset"] = asset
    out["kind"] = kind
    return out


WATCH_VENUE, WATCH_MARK, WATCH_EXTERNAL = 0, 1, 2
"""Prices a :class:`Watch` can follow: the book's reference (mid, else last, else mark), the mark, the external reference."""


@dataclass(frozen=True)
class Watch:
    """Wake me when the ``source`` price of ``instrument`` leaves [low, high] (quote per base)."""

    instrument: int
    source: int
    low: float
    high: float


@runtime_checkable
class Agent(Protocol):
    """A market participant (see the module docstring)."""

    name: str
    accounts: np.ndarray  # the accounts it acts for
    account_type: AccountType
    latency_ns: int  # one-way latency of its requests
    jitter_ns: int  # uniform extra latency in [0, jitter_ns), drawn per wake from the run's generator
    wake_on_fills: bool  # woken by fills, rejects, cancels or liquidation events of its own accounts
    wake_on_news: bool
    # optional ``reads``: a frozenset of the record kinds of its own accounts it reads ("fills", "acks", "account_acks",
    # "cancels", "liquidations"); the others are never routed to it (nor wake it). Without it, it is sent every kind.

    def wake_at(self) -> int:
        """Market time of the next scheduled wake (``NEVER`` for none)."""
        ...

    def watch(self) -> list[Watch]:
        """Price bands that wake it when left (read after every wake)."""
        ...

    def act(self, obs: Observation, client: Client) -> Requests:
        """Decide: read the observation and the client, return requests."""
        ...


@dataclass
class Schedule:
    """A periodic wake: every ``every_ns`` from ``start_ns`` (``wake_at`` / ``advance`` for agents)."""

    every_ns: int
    next_ns: int = 0

    def due(self, now_ns: int) -> bool:
        """Whether the schedule has reached ``now_ns``."""
        return now_ns >= self.next_ns

    def advance(self, now_ns: int) -> None:
        """Move to the first wake after ``now_ns``."""
        if self.every_ns <= 0:
            self.next_ns = NEVER
            return
        self.next_ns = (now_ns // self.every_ns + 1) * self.every_ns


__all__ = [
    "NEVER",
    "WATCH_EXTERNAL",
    "WATCH_MARK",
    "WATCH_VENUE",
    "Agent",
    "Client",
    "External",
    "News",
    "Observation",
    "Requests",
    "Schedule",
    "Watch",
    "account_requests",
    "check_params",
    "orders",
]
