"""The simulation loop: a clock in integer nanoseconds, the world, the agents, the venue, the recorder.

One step of length ``step_ns`` ending at ``t``:

1. the world advances to ``t`` (external prices on its grid, news, outage windows);
2. requests that have *arrived* by ``t`` (sent at ``s`` with latency ``L``: ``s + L <= t``)
   go to ``Venue.step(t, ...)``: prices and funding when due, order and account entry in
   time order, risk and liquidation;
3. the step's records are routed to the agents that own the accounts;
4. the recorder reads the state;
5. agents are woken: by their schedule, by a price band they watch (one array test for
   all agents), by news, or by records of their own accounts; each reads its observation
   and returns requests, stamped ``t + latency + jitter`` (jitter from the run's seeded
   generator, one draw per wake; requests of one wake keep their order).

Requests of agents in an outage window are refused at the venue (``reject``) or delayed.
A quiet step (nothing due, no band left, no records) costs the venue's quiet step plus a
few array tests. A hash of every step's records (acks, fills, cancels, liquidation events)
identifies the run: the same scenario and seed give the same hash on any machine.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from cascadelab.agents.base import (
    NEVER,
    WATCH_EXTERNAL,
    WATCH_MARK,
    Agent,
    Client,
    News,
    Observation,
)
from cascadelab.compiled import kernel
from cascadelab.records import ACCOUNT_ACK, ACCOUNT_REQUEST, ACK, CANCEL, FILL, LIQ_EVENT, ORDER_REQUEST, stack
from cascadelab.sim.world import ScriptedWorld
from cascadelab.timing import PhaseClock
from cascadelab.venue.venue import StepReport, Venue


class Recorder(Protocol):
    """Reads the state after each step (see :mod:`cascadelab.record`)."""

    def record(self, sim: Simulation, report: StepReport) -> None: ...


@dataclass
class Inbox:
    """Records of an agent's accounts since its last wake."""

    fills: list[np.ndarray] = field(default_factory=list)
    acks: list[np.ndarray] = field(default_factory=list)
    account_acks: list[np.ndarray] = field(default_factory=list)
    cancels: list[np.ndarray] = field(default_factory=list)
    liquidations: list[np.ndarray] = field(default_factory=list)
    news: list[News] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fills or self.acks or self.account_acks or self.cancels or self.liquidations)


RECORD_SLOTS = ("fills", "acks", "account_acks", "cancels", "liquidations")
"""The kinds of records of its own accounts an agent can be sent (the fields of its Observation)."""


def _reads(agent: object) -> frozenset[str]:
    """The record kinds ``agent`` reads (all without a ``reads`` attribute), checked."""
    reads = getattr(agent, "reads", None)
    name = getattr(agent, "name", agent)
    if reads is None:
        return frozenset(RECORD_SLOTS)
    if not isinstance(reads, (set, frozenset, list, tuple)):
        raise ValueError(f"agent {name!r}: reads must be a set of record kinds {list(RECORD_SLOTS)}, got {type(reads).__name__}")
    kinds = frozenset(reads)
    unknown = kinds - set(RECORD_SLOTS)
    if unknown or not all(isinstance(k, str) for k in kinds):
        raise ValueError(f"agent {name!r}: reads {sorted(map(str, unknown))}; known kinds: {list(RECORD_SLOTS)}")
    return kinds


_EMPTY = {dt: np.zeros(0, dt) for dt in (FILL, ACK, ACCOUNT_ACK, CANCEL, LIQ_EVENT)}


_EMPTY_OBS = tuple(_EMPTY[dt] for dt in (FILL, ACK, ACCOUNT_ACK, CANCEL, LIQ_EVENT))


def _owner_of(owner: np.ndarray, accounts: np.ndarray) -> np.ndarray:
    """The agent index of each account (-1 for none, or for an account outside the table)."""
    acc = np.asarray(accounts, np.int64)
    if not len(owner):
        return np.full(len(acc), -1)
    out = np.empty(len(acc), owner.dtype)
    _lookup_owner(owner, acc, out)
    return out


@kernel
def _lookup_owner(owner: np.ndarray, acc: np.ndarray, out: np.ndarray) -> None:
    """``out[i]`` = ``owner[acc[i]]``, -1 where ``acc[i]`` is outside the table (one pass instead of five array ops)."""
    n = owner.shape[0]
    for i in range(acc.shape[0]):
        a = acc[i]
        out[i] = owner[a] if 0 <= a < n else -1


def _stamped(parts: list[np.ndarray], bases: list[int], dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The wakes' requests in one array, each stamped ``base + its position in its wake``; and each row's wake arrival."""
    out = stack(parts, dtype) if len(parts) > 1 else parts[0].copy()
    lens = np.array([len(p) for p in parts], np.int64)
    due = np.repeat(np.array(bases, np.int64), lens)
    starts = np.repeat(np.cumsum(lens) - lens, lens)
    out["ts"] = due + (np.arange(len(out), dtype=np.int64) - starts)
    return out, due


def _cat(parts: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    if not parts:
        return _EMPTY[dtype]
    return parts[0] if len(parts) == 1 else stack(parts, dtype)


_I8 = struct.Struct("=q")
"""An int64 in native byte order: the bytes of ``np.int64(x).tobytes()``."""


@functools.cache
def _hash_dtype(dt: np.dtype) -> np.dtype:
    """``dt``'s fields packed and little-endian: the bytes a record hashes as, the same on any machine."""
    names = dt.names
    assert names is not None  # structured records
    return np.dtype([(name, dt[name].newbyteorder("<")) for name in names])


@functools.cache
def _field_bytes(dt: np.dtype) -> np.ndarray | None:
    """The byte columns of ``dt``'s records that hold its fields, in field order (padding left out).

    On a little-endian machine with native fields, a record's packed little-endian bytes
    (:func:`_hash_dtype`) are these columns of its raw bytes: one gather instead of a
    field-by-field structured copy. ``None`` where that does not hold (the copy is used).
    """
    names = dt.names
    assert names is not None  # structured records
    if sys.byteorder != "little" or any(not dt[n].isnative or dt[n].hasobject for n in names):
        return None
    cols = [np.arange(dt.fields[n][1], dt.fields[n][1] + dt[n].itemsize) for n in names]  # type: ignore[index]
    return np.concatenate(cols).astype(np.intp)


@kernel
def _bands_left(agent: np.ndarray, instrument: np.ndarray, source: np.ndarray, low: np.ndarray, high: np.ndarray,
                ref: np.ndarray, mark: np.ndarray, tick: np.ndarray, ext: np.ndarray, woken: np.ndarray) -> None:  # fmt: skip
    """Mark ``woken`` for every watch row whose price left its band ``[low, high]`` (an absent price never wakes).

    The price of a row is the external reference, the mark (ticks x tick) or the venue's
    reference of its instrument, by ``source``.
    """
    for r in range(agent.shape[0]):
        k = instrument[r]
        if source[r] == WATCH_EXTERNAL:
            price = ext[k]
        elif source[r] == WATCH_MARK:
            price = mark[k] * tick[k] if mark[k] > 0 else np.nan
        else:
            price = ref[k]
        if np.isnan(price):
            price = low[r]
        if price < low[r] or price > high[r]:
            woken[agent[r]] = True


def _watch_table(rows: list[tuple[int, int, int, float, float]]) -> tuple[np.ndarray, ...]:
    """The watch rows as the columns :func:`_bands_left` reads: agent, instrument, source (int64), low, high (float64)."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * 5
    return tuple(np.array(c, dt) for c, dt in zip(cols, (np.int64, np.int64, np.int64, np.float64, np.float64), strict=True))


class Simulation:
    """Runs agents against one venue in a scripted world (see the module docstring)."""

    def __init__(
        self,
        venue: Venue,
        agents: list[Agent],
        world: ScriptedWorld,
        step_ns: int = 100_000_000,
        seed: int = 0,
        start_ns: int = 0,
        recorder: Recorder | None = None,
    ) -> None:
        if step_ns <= 0:
            raise ValueError(f"step_ns must be > 0, got {step_ns}")
        names = [a.name for a in agents]
        if len(set(names)) != len(names):
            raise ValueError(f"agent names must be unique, got duplicates {sorted({n for n in names if names.count(n) > 1})}")
        self.venue = venue
        self.agents = list(agents)
        self.world = world
        self.step_ns = int(step_ns)
        self.now_ns = int(start_ns)
        self.recorder = recorder
        self.rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        n = venue.clearing.accounts.n
        self.owner = np.full(n, -1, np.int32)
        for j, a in enumerate(agents):
            ids = np.asarray(a.accounts, np.int64)
            if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= n):
                raise ValueError(f"agent {a.name!r} holds accounts outside 0..{n - 1}")
            if (self.owner[ids] >= 0).any():
                raise ValueError(f"agent {a.name!r} shares accounts with another agent")
            self.owner[ids] = j
        self.clients = [Client(venue, a.accounts) for a in agents]
        self.inbox = [Inbox() for _ in agents]
        self.has_mail = np.zeros(len(agents), np.bool_)  # an agent's inbox holds records (Inbox.__bool__), kept by _route
        self.next_wake = np.array([a.wake_at() for a in agents], np.int64)
        self.on_news = np.array([bool(getattr(a, "wake_on_news", False)) for a in agents], np.bool_)
        self.on_fills = np.array([bool(getattr(a, "wake_on_fills", False)) for a in agents], np.bool_)
        # which record kinds each agent reads (Agent.reads; all when it does not say): the rest are never routed to it
        kinds = [_reads(a) for a in agents]
        self.reads = {slot: np.array([slot in k for k in kinds], np.bool_) for slot in RECORD_SLOTS}
        self._watch_rows: list[list[tuple[int, int, int, float, float]]] = [[] for _ in agents]
        self._watch = _watch_table([])  # every agent's bands: (agent, instrument, source, low, high) columns
        self._pend_o = np.zeros(0, ORDER_REQUEST)
        self._pend_a = np.zeros(0, ACCOUNT_REQUEST)
        self._due_o = np.zeros(0, np.int64)  # arrival of each pending request's wake: one wake's requests arrive together
        self._due_a = np.zeros(0, np.int64)
        self.hasher = hashlib.blake2b(digest_size=16)
        self.clock = PhaseClock()
        self.steps = 0
        self._blocked_by: set[str] = set()
        self.delayed: dict[str, int] = {}
        self._jit: list[float] = []
        self._jit_i = 0

    def add_agent(self, agent: Agent) -> None:
        """Add a participant (its accounts must exist and belong to no other agent)."""
        if any(a.name == agent.name for a in self.agents):
            raise ValueError(f"an agent named {agent.name!r} already runs")
        n = self.venue.clearing.accounts.n
        if len(self.owner) < n:
            self.owner = np.concatenate([self.owner, np.full(n - len(self.owner), -1, np.int32)])
        ids = np.asarray(agent.accounts, np.int64)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= n):
            raise ValueError(f"agent {agent.name!r} holds accounts outside 0..{n - 1}")
        if (self.owner[ids] >= 0).any():
            raise ValueError(f"agent {agent.name!r} shares accounts with another agent")
        reads = _reads(agent)  # every check before any state changes: a refused agent leaves the simulation as it was
        wake = int(agent.wake_at())
        j = len(self.agents)
        self.owner[ids] = j
        self.agents.append(agent)
        self.clients.append(Client(self.venue, agent.accounts))
        self.inbox.append(Inbox())
        self.has_mail = np.append(self.has_mail, False)
        self.next_wake = np.append(self.next_wake, wake)
        self.on_news = np.append(self.on_news, bool(getattr(agent, "wake_on_news", False)))
        self.on_fills = np.append(self.on_fills, bool(getattr(agent, "wake_on_fills", False)))
        for slot in RECORD_SLOTS:
            self.reads[slot] = np.append(self.reads[slot], slot in reads)
        self._watch_rows.append([])

    # --- the step ---------------------------------------------------------------------------------
    def run(self, until_ns: int, progress: Callable[[int], None] | None = None) -> None:
        """Step until market time ``until_ns``; ``progress(now_ns)`` after each step."""
        while self.now_ns + self.step_ns <= until_ns:
            self.step()
            if progress is not None:
                progress(self.now_ns)

    def step(self) -> StepReport:
        """One step (see the module docstring); returns the venue's report."""
        clock = self.clock
        clock.start()
        t = self.now_ns + self.step_ns
        news = self.world.advance(t, self.venue)
        self._outages(t)
        clock.lap("world")
        due_o, due_a = self._take_due(t)
        report = self.venue.step(t, due_o, due_a)
        for phase, ns in self.venue.clock.totals.items():
            clock.totals[f"venue: {phase}"] = clock.totals.get(f"venue: {phase}", 0) + ns
        self.venue.clock.totals.clear()
        clock.start()
        self.now_ns = t
        self._hash(report)
        self._route(report, news)
        clock.lap("routing")
        if self.recorder is not None:
            self.recorder.record(self, report)
        clock.lap("recording")
        self._wake(t, news)
        clock.lap("agents")
        self.steps += 1
        return report

    def _hash(self, r: StepReport) -> None:
        """Fold the step's records into the run's hash: each record's fields, little-endian, padding bytes never counted."""
        h = self.hasher
        h.update(_I8.pack(r.now_ns))
        for arr in (r.acks, r.account_acks, r.fills, r.cancels, r.events):
            h.update(_I8.pack(len(arr)))
            if len(arr):
                cols = _field_bytes(arr.dtype)
                if cols is None:
                    h.update(np.ascontiguousarray(arr, _hash_dtype(arr.dtype)).tobytes())
                else:
                    raw = np.ascontiguousarray(arr).view(np.uint8).reshape(len(arr), arr.dtype.itemsize)
                    h.update(raw.take(cols, axis=1).tobytes())

    def hash_state(self, *arrays: np.ndarray) -> None:
        """Fold arrays of state into the event hash (the build's booked positions, balances and debts).

        What the build books before the first step (opening legs, pre-built loops) is not in
        any step's records; folding it in makes two runs with different starting books hash
        differently even when their first steps look alike.
        """
        h = self.hasher
        for arr in arrays:
            a = np.ascontiguousarray(arr)
            h.update(np.array(a.shape, np.int64).tobytes())
            h.update(a.astype(a.dtype.newbyteorder("<")).tobytes())

    @property
    def event_hash(self) -> str:
        """Hash of every step's records so far (hex)."""
        return self.hasher.copy().hexdigest()

    def _jitter(self, high: int) -> int:
        """A uniform draw in [0, high) ns from the run's generator (drawn in blocks: one numpy call per 4,096 draws)."""
        if self._jit_i >= len(self._jit):
            self._jit = self.rng.random(4096).tolist()
            self._jit_i = 0
        u = self._jit[self._jit_i]
        self._jit_i += 1
        return int(u * high)

    def _outages(self, t: int) -> None:
        active = self.world.outage_state(t)
        blocked = {name for o in active if o.mode == "reject" for name in o.agents}
        self.delayed = {name: o.delay_ns for o in active if o.mode == "delay" for name in o.agents}
        if blocked != self._blocked_by:
            for a in self.agents:
                was, now = a.name in self._blocked_by, a.name in blocked
                if was != now:
                    self.venue.block_order_entry(a.accounts, now)
            self._blocked_by = blocked

    def _take_due(self, t: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Requests whose wake has arrived by ``t`` (a wake's requests are never split across steps)."""
        out: list[np.ndarray | None] = []
        for attr, dattr in (("_pend_o", "_due_o"), ("_pend_a", "_due_a")):
            pend, due_at = getattr(self, attr), getattr(self, dattr)
            if not len(pend):
                out.append(None)
                continue
            due = due_at <= t
            if due.all():
                out.append(pend)
                setattr(self, attr, pend[:0])
                setattr(self, dattr, due_at[:0])
            elif due.any():
                out.append(pend[due])
                setattr(self, attr, pend[~due])
                setattr(self, dattr, due_at[~due])
            else:
                out.append(None)
        return out[0], out[1]

    def _route(self, r: StepReport, news: list[News]) -> None:
        owner = self.owner

        def deliver(arr: np.ndarray, who: np.ndarray, slot: str) -> None:
            """Append each row of ``arr`` to the inbox of agent ``who`` (-1: none) if that agent reads ``slot``."""
            reads = self.reads[slot]
            if not len(arr) or not reads.any():
                return
            keep = np.flatnonzero(who >= 0)
            keep = keep[reads[who[keep]]]
            if not len(keep):
                return
            w = who[keep]
            if w[0] == w[-1] and (len(w) < 3 or bool((w == w[0]).all())):  # one agent's rows (often): no sort
                j = int(w[0])
                self.has_mail[j] = True
                getattr(self.inbox[j], slot).append(arr[keep])
                return
            order = keep[np.argsort(w, kind="stable")]  # each agent's rows, in their original order
            ws = who[order]
            cut = (np.flatnonzero(ws[1:] != ws[:-1]) + 1).tolist()  # where the next agent's rows start
            bounds = [0, *cut, len(order)]
            agents = ws[bounds[:-1]]
            self.has_mail[agents] = True
            for i, j in enumerate(agents.tolist()):
                getattr(self.inbox[j], slot).append(arr[order[bounds[i] : bounds[i + 1]]])

        if len(r.fills):
            f = r.fills
            om, ot = _owner_of(owner, f["maker_account"]), _owner_of(owner, f["taker_account"])
            deliver(f, om, "fills")
            # the taker's copy, unless the same agent already got the row as the maker (one agent, both sides)
            other = ot != om
            deliver(f[other], ot[other], "fills")
        for arr, slot in ((r.acks, "acks"), (r.account_acks, "account_acks"), (r.cancels, "cancels"), (r.events, "liquidations")):
            if len(arr) and self.reads[slot].any():  # the owners are looked up only for a kind someone reads
                deliver(arr, _owner_of(owner, arr["account"]), slot)
        if news:
            for j in np.flatnonzero(self.on_news).tolist():
                self.inbox[j].news.extend(news)

    # --- waking agents ------------------------------------------------------------------------------
    def _wake(self, t: int, news: list[News]) -> None:
        woken = self.next_wake <= t
        if news:
            woken |= self.on_news
        woken |= self.on_fills & self.has_mail  # records of its own accounts arrived
        if len(self._watch[0]):
            m = self.venue.market_data
            _bands_left(*self._watch, m.reference(), m.mark, m.tick, self.world.external.reference, woken)
        idx = np.flatnonzero(woken)
        if not len(idx):
            return
        market = self.venue.market_data
        ext = self.world.external
        parts_o: list[np.ndarray] = []
        parts_a: list[np.ndarray] = []
        base_o: list[int] = []
        base_a: list[int] = []
        watch_changed = False
        delayed = self.delayed
        for j in idx.tolist():
            a = self.agents[j]
            box = self.inbox[j]
            if self.has_mail[j] or box.news:
                obs = Observation(
                    t, market, ext, tuple(box.news),
                    _cat(box.fills, FILL), _cat(box.acks, ACK), _cat(box.account_acks, ACCOUNT_ACK),
                    _cat(box.cancels, CANCEL), _cat(box.liquidations, LIQ_EVENT),
                )  # fmt: skip
                self.inbox[j] = Inbox()
                self.has_mail[j] = False
            else:  # nothing arrived since its last wake: an empty observation (shared empty record arrays)
                obs = Observation(t, market, ext, (), *_EMPTY_OBS)
            reqs = a.act(obs, self.clients[j])
            self.next_wake[j] = a.wake_at()
            rows = [(j, w.instrument, w.source, w.low, w.high) for w in a.watch()]
            if rows != self._watch_rows[j]:
                self._watch_rows[j] = rows
                watch_changed = True
            if not (len(reqs.orders) or len(reqs.account)):
                continue
            lat = int(a.latency_ns) + (delayed.get(a.name, 0) if delayed else 0)
            if a.jitter_ns > 0:
                lat += self._jitter(a.jitter_ns)
            if len(reqs.orders):
                parts_o.append(reqs.orders)
                base_o.append(t + lat)
            if len(reqs.account):
                parts_a.append(reqs.account)
                base_a.append(t + lat)
        if parts_o:
            o, due = _stamped(parts_o, base_o, ORDER_REQUEST)
            self._pend_o = stack([self._pend_o, o], ORDER_REQUEST)
            self._due_o = np.concatenate([self._due_o, due])
        if parts_a:
            acc, due = _stamped(parts_a, base_a, ACCOUNT_REQUEST)
            self._pend_a = stack([self._pend_a, acc], ACCOUNT_REQUEST)
            self._due_a = np.concatenate([self._due_a, due])
        if watch_changed:
            self._watch = _watch_table([r for rr in self._watch_rows for r in rr])


__all__ = ["NEVER", "Inbox", "Recorder", "Simulation"]
