"""Loopers (BRIEF §4, seed 003): leverage hidden in lending loops, held as arrays.

Each looper deposits a seed collateral (BTC, or ETH/SOL as the liquid staking tokens wBETH
and BNSOL), then loops with the clearing house's borrowing primitives: borrow USDT within
its target loan-to-value, buy the yield token (USDe) on the venue's spot book, which is
pledged as collateral by holding it, and repeat until its target number of loops. Its
effective leverage (assets / (assets − debt)) is observable and stays modest (often < 2×),
which is why such accounts look safe.

It watches its own LTV as the venue values its collateral; above its unwind threshold it
sells part of the yield token and repays. When the token is valued from the venue's own
thin book and that book breaks, the LTV jumps past the liquidation LTV faster than loopers
can unwind (and not at all during an outage): the risk engine takes them over and dumps
the collateral into the same book. The depeg is the loops unwinding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cascadelab.agents.base import Client, Observation, Requests, Schedule, Watch, account_requests, check_params, orders
from cascadelab.clearing.accounts import AccountState
from cascadelab.records import TIF, AccountOp, AccountType, Op
from cascadelab.units import MONEY_SCALE, SECOND_NS

IDLE_CASH = 100.0
"""Quote units of borrowed cash a looper tolerates before spending it on the token (or repaying, when unwinding)."""


@dataclass
class LooperParams:
    """Loop construction and unwinding rules."""

    token: str = "USDe"
    book: str = "USDEUSDT"
    borrow_asset: str = "USDT"
    seeds: dict[str, float] = field(default_factory=lambda: {"BTC": 0.4, "wBETH": 0.4, "BNSOL": 0.2})
    seed_value_median: float = 200_000.0
    seed_value_sigma: float = 1.0
    loops: tuple[int, int] = (2, 5)  # target number of loops (uniform, inclusive)
    target_ltv: tuple[float, float] = (0.45, 0.6)  # LTV each loop borrows up to
    unwind_ltv: tuple[float, float] = (0.7, 0.85)  # above it: sell part of the token and repay
    unwind_fraction: float = 0.3
    max_slippage_bps: float = 20.0  # buying, and unwinding at ease: limit price beyond the best price
    panic_slippage_bps: float = 500.0  # unwinding near the venue's liquidation LTV: the limit it accepts there
    review_s: float = 5.0
    prebuilt_loops: tuple[int, int] = (0, 0)  # loops already built before the run, with tokens minted at the issuer
    mint_price: float = 1.0  # the issuer's mint price of the token in the borrowed asset (USDe: 1 USDT)

    def __post_init__(self) -> None:
        check_params(self, positive=("seed_value_median", "unwind_fraction", "review_s", "mint_price"),
                     non_negative=("seed_value_sigma", "max_slippage_bps", "panic_slippage_bps"),
                     ranges=("loops", "target_ltv", "unwind_ltv", "prebuilt_loops"), shares=("seeds",))  # fmt: skip
        if self.target_ltv[1] >= 1 or self.unwind_ltv[0] <= self.target_ltv[1] or self.unwind_fraction > 1:
            raise ValueError(f"LooperParams: need target_ltv < unwind_ltv < 1 and unwind_fraction <= 1, got "
                             f"{self.target_ltv}, {self.unwind_ltv}, {self.unwind_fraction}")  # fmt: skip


class Loopers:
    """A population of looping accounts (see the module docstring)."""

    account_type = AccountType.LOOPER
    wake_on_fills = False
    wake_on_news = False
    reads: frozenset[str] = frozenset()  # no records of its own are sent: it reads its accounts through its client

    def __init__(self, name: str, accounts: np.ndarray, params: LooperParams, seed: int,
                 latency_ns: int = 100_000_000, jitter_ns: int = 200_000_000) -> None:  # fmt: skip
        self.name = name
        self.accounts = np.asarray(accounts, np.int64)
        self.p = params
        self.rng = np.random.default_rng(seed)
        self.latency_ns, self.jitter_ns = latency_ns, jitter_ns
        n = len(self.accounts)
        self.schedule = Schedule(int(params.review_s * SECOND_NS))
        self.target_loops = self.rng.integers(params.loops[0], params.loops[1] + 1, n)
        self.loops_done = np.zeros(n, np.int64)
        self.target_ltv = self.rng.uniform(*params.target_ltv, n)
        self.unwind_ltv = self.rng.uniform(*params.unwind_ltv, n)
        self.unwinding = np.zeros(n, np.bool_)
        self.seed_asset: list[str] = []
        self.last_ltv = np.zeros(n)
        self.last_leverage = np.ones(n)

    def fund(self, venue: object) -> None:
        """Deposit each looper's seed collateral (its own money from outside), valued at the venue's price."""
        ch = venue.clearing  # type: ignore[attr-defined]
        p = self.p
        n = len(self.accounts)
        names = list(p.seeds)
        pick = self.rng.choice(len(names), n, p=np.array(list(p.seeds.values())))
        value = np.exp(np.log(p.seed_value_median) + p.seed_value_sigma * self.rng.standard_normal(n))
        self.seed_asset = [names[j] for j in pick.tolist()]
        for j, name in enumerate(names):
            sel = pick == j
            if not sel.any():
                continue
            price = float(ch.asset_price[ch.ledger.asset(name)]) / MONEY_SCALE
            if price <= 0:
                raise ValueError(f"loopers {self.name!r}: seed asset {name} has no price at the venue yet")
            ch.deposit_many(self.accounts[sel], name, (value[sel] / price * MONEY_SCALE).astype(np.int64))
        self._prebuild(ch)

    def _prebuild(self, ch: object) -> None:
        """Loops built in the weeks before the run, ledger-exact through the clearing house's primitives.

        Each pre-built loop borrows the asset up to the looper's target LTV (as the venue values
        its collateral now), takes the cash out to mint the token at the issuer (``mint_price``),
        and deposits the minted token back as collateral: borrow, deposit, withdraw. How the
        token was acquired is the only thing not simulated; the debt, the collateral and the
        LTV are the venue's own. The remaining loops (up to ``target_loops``) are built on
        the venue's spot book during the run.
        """
        p = self.p
        lo, hi = p.prebuilt_loops
        if hi <= 0:
            return
        n = len(self.accounts)
        pre = np.minimum(self.rng.integers(lo, hi + 1, n), self.target_loops)
        a_tok, a_q = ch.ledger.asset(p.token), ch.ledger.asset(p.borrow_asset)  # type: ignore[attr-defined]
        assets = [ch.ledger.asset(a) for a in sorted({p.token, p.borrow_asset, *p.seeds})]  # type: ignore[attr-defined]
        price = {a: float(ch.asset_price[a]) / MONEY_SCALE for a in assets}  # type: ignore[attr-defined]
        ratio = {a: float(ch.ratio[a]) / 1e6 for a in assets}  # type: ignore[attr-defined]  # millionths
        tok_px = price[a_tok]
        if tok_px <= 0:
            raise ValueError(f"loopers {self.name!r}: token {p.token} has no price at the venue yet")
        bal = ch.ledger.balances  # type: ignore[attr-defined]
        for r in range(int(pre.max(initial=0))):
            idx = np.flatnonzero(pre > r)
            ids = self.accounts[idx]
            coll = np.zeros(len(ids))
            for a in assets:
                coll += np.maximum(bal[a, ids], 0) / MONEY_SCALE * price[a] * ratio[a]
            debt = ch.accounts.debt[a_q, ids] / MONEY_SCALE * price[a_q]  # type: ignore[attr-defined]
            amount = np.floor((self.target_ltv[idx] * coll - debt) * 0.999)
            go = amount > 1.0
            for i, x in zip(ids[go].tolist(), amount[go].tolist(), strict=True):
                cash = int(x * MONEY_SCALE)
                ch.borrow(i, p.borrow_asset, cash)  # type: ignore[attr-defined]
                ch.deposit(i, p.token, int(x / p.mint_price * MONEY_SCALE))  # type: ignore[attr-defined]
                ch.withdraw(i, p.borrow_asset, cash)  # type: ignore[attr-defined]
            self.loops_done[idx[go]] += 1

    def wake_at(self) -> int:
        """Every review."""
        return self.schedule.next_ns

    def watch(self) -> list[Watch]:
        """No price bands: it reviews its LTV on its schedule."""
        return []

    def values(self, client: Client) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(collateral value after haircuts, asset value, debt value) per looper in quote units, as the venue prices them."""
        assets = sorted({self.p.token, self.p.borrow_asset, *self.p.seeds})
        coll = np.zeros(len(self.accounts))
        gross = np.zeros(len(self.accounts))
        debt = np.zeros(len(self.accounts))
        for a in assets:
            price = client.collateral_price(a)
            bal = client.balances(a).astype(np.float64) / MONEY_SCALE
            coll += np.maximum(bal, 0) * price * client.collateral_ratio(a)
            gross += np.maximum(bal, 0) * price
            debt += client.debt(a).astype(np.float64) / MONEY_SCALE * price
        return coll, gross, debt

    def effective_leverage(self, client: Client) -> np.ndarray:
        """Assets over equity (assets − debt) per looper, at the venue's prices."""
        _, gross, debt = self.values(client)
        with np.errstate(divide="ignore", invalid="ignore"):
            lev = np.where(gross > debt, gross / np.maximum(gross - debt, 1e-12), np.inf)
        return lev

    def act(self, obs: Observation, client: Client) -> Requests:
        """Loop further, or unwind when the LTV is too high (array code over all loopers)."""
        p, m = self.p, obs.market
        self.schedule.advance(obs.now_ns)
        alive = client.state() == AccountState.NORMAL
        coll, gross, debt = self.values(client)
        with np.errstate(divide="ignore", invalid="ignore"):
            ltv = np.where(coll > 0, debt / coll, np.where(debt > 0, np.inf, 0.0))
        self.last_ltv = ltv
        self.last_leverage = np.where(gross > debt, gross / np.maximum(gross - debt, 1e-12), np.inf)
        b = m.index(p.book)
        tick, lot = float(m.tick[b]), float(m.lot[b])
        bid, ask = int(m.best_bid[b]) * tick, int(m.best_ask[b]) * tick
        out: list[Requests] = []
        q = client.asset_index(p.borrow_asset)
        cash = client.balances(p.borrow_asset).astype(np.float64) / MONEY_SCALE
        owed = client.debt(p.borrow_asset).astype(np.float64) / MONEY_SCALE
        self.unwinding |= alive & (ltv > self.unwind_ltv)
        # unwind: repay with the cash it has, sell part of the token; the closer its LTV is to the venue's
        # liquidation LTV, the more price it gives up to get out (urgency 0 at its unwind LTV, 1 at liquidation)
        unw = np.flatnonzero(alive & self.unwinding & (owed > 0))
        if len(unw):
            pay = np.minimum(cash[unw], owed[unw])
            go = pay > 0
            if go.any():
                out.append(Requests(account=account_requests(self.accounts[unw[go]], AccountOp.REPAY, q,
                                                             (pay[go] * MONEY_SCALE).astype(np.int64))))  # fmt: skip
            tok = client.balances(p.token, unw).astype(np.float64) / MONEY_SCALE
            lots = np.floor(tok * p.unwind_fraction / lot).astype(np.int64)
            sell = lots > 0
            ref = bid if bid > 0 else float(m.reference()[b])  # no bid: price from the last trade
            if sell.any() and ref > 0:
                liq = client.liquidation_ltv()
                span = np.maximum(liq - self.unwind_ltv[unw], 1e-9)
                urgency = np.clip((ltv[unw] - self.unwind_ltv[unw]) / span, 0.0, 1.0)
                bps = p.max_slippage_bps + urgency * max(0.0, p.panic_slippage_bps - p.max_slippage_bps)
                sell_px = np.maximum(1, (ref * (1 - bps / 1e4) / tick).astype(np.int64))
                who = unw[sell]
                # a limit sell that rests until the next review if no bid takes it; the previous one is replaced
                new = orders(self.accounts[who], b, -1, lots[sell], sell_px[sell], Op.LIMIT, TIF.GTC)
                rows = np.zeros(2 * len(new), new.dtype)
                rows[0::2] = orders(self.accounts[who], b, 0, 0, 0, Op.CANCEL_ALL)
                rows[1::2] = new
                out.append(Requests(rows))
        # build: borrowed cash not yet in the token buys it first; a new loan only once the last one is spent
        if ask > 0:
            px = ask * (1 + p.max_slippage_bps / 1e4)
            idle = np.flatnonzero(alive & ~self.unwinding & (cash > IDLE_CASH) & (owed > 0))
            if len(idle):
                lots = np.floor(cash[idle] / (px * lot) * 0.999).astype(np.int64)
                go = lots > 0
                if go.any():
                    out.append(Requests(orders(self.accounts[idle[go]], b, 1, lots[go], int(px / tick), Op.LIMIT, TIF.IOC)))
            grow = np.flatnonzero(alive & ~self.unwinding & (self.loops_done < self.target_loops) & (ltv < self.target_ltv)
                                  & (cash <= IDLE_CASH))  # fmt: skip
            if len(grow):
                amount = self.target_ltv[grow] * coll[grow] - debt[grow]
                lots = np.floor(amount / (px * lot) * 0.999).astype(np.int64)
                go = lots > 0
                g = grow[go]
                if len(g):
                    borrow = (lots[go] * px * lot * MONEY_SCALE).astype(np.int64)
                    out.append(Requests(orders(self.accounts[g], b, 1, lots[go], int(px / tick), Op.LIMIT, TIF.IOC),
                                        account_requests(self.accounts[g], AccountOp.BORROW, q, borrow)))  # fmt: skip
                    self.loops_done[g] += 1
        return Requests.concat(out)


__all__ = ["LooperParams", "Loopers"]
