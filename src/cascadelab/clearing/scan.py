"""Margin questions: one account's exact figures, many accounts' exact figures, the full scan.

All figures come from the compiled :func:`cascadelab.clearing.margin.account_figures`, so a
single account, a batch of suspects and the venue's order checks agree to the unit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from cascadelab.clearing.core import ClearingCore, ClearingError
from cascadelab.clearing.margin import (
    EXACT_PARALLEL_FROM,
    ScanResult,
    account_figures,
    bankruptcy_price,
    cross_breach,
    liquidation_price,
    margin_exact,
    margin_exact_serial,
    margin_prescreen,
    position_initial,
    position_maintenance,
)
from cascadelab.units import MONEY_SCALE, RATE_SCALE


@dataclass
class PositionMargin:
    """Exact margin figures of one position."""

    instrument: str
    size: int
    notional: int
    upnl: int
    maintenance: int
    initial: int
    isolated: bool
    isolated_margin: int


@dataclass
class AccountMargin:
    """Exact margin figures of one account (money units of the settlement asset)."""

    account: int
    equity: int  # cross margin balance: haircut collateral - debts + cross unrealized PnL
    maintenance: int
    initial: int
    reserved: int  # initial margin held for open orders
    positions: list[PositionMargin] = field(default_factory=list)

    @property
    def collateral(self) -> int:
        """Cross collateral: equity without the cross unrealized PnL (haircut balances minus debts)."""
        return self.equity - sum(p.upnl for p in self.positions if not p.isolated)

    @property
    def available(self) -> int:
        """What is free for new orders or withdrawal: equity - initial - reserved."""
        return self.equity - self.initial - self.reserved

    @property
    def margin_ratio(self) -> float:
        """Maintenance / equity (>= 1 means liquidation); inf when equity <= 0 with positions."""
        if self.equity <= 0:
            return float("inf") if self.maintenance > 0 else 0.0
        return self.maintenance / self.equity

    @property
    def below_maintenance(self) -> bool:
        """Cross margin balance below maintenance, or an isolated position below its own."""
        cross = bool(cross_breach(self.equity, self.maintenance))
        return cross or any(p.isolated and p.isolated_margin + p.upnl < p.maintenance for p in self.positions)


class Margins:
    """Exact margin figures and the scan over every account."""

    def __init__(self, core: ClearingCore, lent_assets: Callable[[], list[int]]) -> None:
        self.core = core
        self._lent_assets = lent_assets

    def account_margin(self, i: int, balance_delta: tuple[int, int] | None = None) -> AccountMargin:
        """Exact margin figures of one account, optionally as if one balance changed by a delta."""
        c = self.core
        i = c.acct(i)
        acc = c.accounts.arrays
        bal = c.ledger.balances
        old = None
        if balance_delta:
            old = int(bal[balance_delta[0], i])
            bal[balance_delta[0], i] += balance_delta[1]
        try:
            eq, mm, im, _ = account_figures(c.params, acc, bal, i)
        finally:
            if balance_delta:
                bal[balance_delta[0], i] = old
        positions = []
        for k, p in enumerate(c.perps):
            q = int(acc.size[k, i])
            if q == 0:
                continue
            value = q * int(c.marks[k]) * int(c.units[k])
            notional = abs(value)
            positions.append(
                PositionMargin(
                    p.instrument.symbol,
                    q,
                    notional,
                    value - int(acc.cost[k, i]),
                    int(position_maintenance(c.params, k, notional)),
                    int(position_initial(c.params, k, notional, int(acc.leverage[k, i]))),
                    bool(acc.isolated[k, i]),
                    int(acc.iso_margin[k, i]),
                )
            )
        return AccountMargin(i, int(eq), int(mm), int(im), int(acc.reserved[i]), positions)

    def exact_margins(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Exact (equity, maintenance, initial, isolated breach) of the accounts ``ids``."""
        c = self.core
        ids = np.ascontiguousarray(ids, np.int64)
        out = [np.zeros(len(ids), np.int64) for _ in range(3)] + [np.zeros(len(ids), np.bool_)]
        if len(ids):
            kern = margin_exact if len(ids) >= EXACT_PARALLEL_FROM else margin_exact_serial
            kern(ids, c.params, c.accounts.arrays, c.ledger.balances, *out)
        return out[0], out[1], out[2], out[3]

    def scan(self) -> ScanResult:
        """Margin of every account at the current prices: a float pre-screen of all, exact figures for suspects."""
        c = self.core
        n = c.accounts.n
        acc = c.accounts.arrays
        P = c.params
        eq, mm, suspect = np.zeros(n), np.zeros(n), np.zeros(n, np.bool_)
        lent = np.array(self._lent_assets(), np.int64)
        t0 = time.perf_counter()
        margin_prescreen(
            n, acc.size, acc.cost, P.marks, P.unit, P.mmr, P.cum, acc.isolated, acc.iso_margin, c.ledger.balances, acc.debt,
            lent, P.price, P.ratio, P.quote, eq, mm, suspect,
        )  # fmt: skip
        elapsed = time.perf_counter() - t0
        ids = np.flatnonzero(suspect)
        return ScanResult(eq, mm, ids, *self.exact_margins(ids), n, elapsed)

    def position_prices(self, i: int, symbol: str) -> tuple[Fraction, Fraction]:
        """(liquidation price, bankruptcy price) of one position, other prices held fixed (Binance formulas).

        Cross: the wallet is the account's cross collateral, with the other cross positions'
        maintenance and unrealized PnL; isolated: the wallet is the isolated margin alone.
        Prices are exact fractions of the quote asset.
        """
        c = self.core
        i, k = c.acct(i), c.perp(symbol)
        am = self.account_margin(i)
        pos = next((p for p in am.positions if p.instrument == symbol), None)
        if pos is None:
            raise ClearingError(f"account {i} has no {symbol} position")
        inst = c.perps[k].instrument
        tiers = c.perps[k].tiers
        t = tiers.tier(pos.notional)
        size = abs(Fraction(pos.size) * Fraction(inst.lot_size))
        side = 1 if pos.size > 0 else -1
        entry = Fraction(int(c.accounts.cost[k, i]), MONEY_SCALE) / (side * size)
        if pos.isolated:
            wallet, tmm, upnl = Fraction(pos.isolated_margin, MONEY_SCALE), Fraction(0), Fraction(0)
        else:
            others = [p for p in am.positions if not p.isolated and p.instrument != symbol]
            wallet = Fraction(am.collateral, MONEY_SCALE)
            tmm = Fraction(sum(p.maintenance for p in others), MONEY_SCALE)
            upnl = Fraction(sum(p.upnl for p in others), MONEY_SCALE)
        cum = Fraction(tiers.cum[t], MONEY_SCALE)
        mmr = Fraction(tiers.mmr[t], RATE_SCALE)
        return (
            liquidation_price(wallet, tmm, upnl, cum, side, size, entry, mmr),
            bankruptcy_price(wallet, upnl, side, size, entry),
        )
