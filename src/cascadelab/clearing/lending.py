"""Loans against collateral: lending pools, borrowing within the initial LTV, repayment, interest.

Loan-to-value is debts at full value over haircut positive balances (millionths); an
account may borrow only while it stays at or below the initial LTV, and the risk engine
liquidates it above the liquidation LTV. Interest is charged per period at a rate exact to
1e-9 and rounded up (toward the lender); it is exact for any rate and balance that fit.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from cascadelab.arith import exact_sum, muldiv_vec
from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.core import ClearingCore, ClearingError
from cascadelab.clearing.ledger import OUTSIDE
from cascadelab.clearing.margin import loan_to_value
from cascadelab.records import Kind
from cascadelab.units import MONEY_SCALE, RATE_SCALE, UnitError, decimal_to_units

INTEREST_SCALE = 10**9
"""Loan interest rates per accrual period are integers in 1e-9 (so a product never needs more than int64 parts)."""
INT64_MAX = np.iinfo(np.int64).max


class Lending:
    """Lending pools and loans of one clearing core."""

    def __init__(self, core: ClearingCore) -> None:
        self.core = core
        self.pools = {a: core.ledger.system_account(f"lending:{a}") for a in core.assets}
        self.principal = dict.fromkeys(core.assets, 0)

    def seed_pool(self, asset: str, amount: int, ts: int = 0) -> None:
        """Lenders outside the venue put ``amount`` of ``asset`` into its lending pool."""
        self.core.ledger.transfer(asset, OUTSIDE, self.pools[asset], amount, Kind.FUND_SEED, ts)

    def borrow(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Borrow from the lending pool while the loan-to-value stays within the initial LTV."""
        c = self.core
        i = c.acct(i)
        a = c.ledger.asset(asset)
        if amount <= 0:
            raise ClearingError("borrow amount must be > 0")
        if c.accounts.state[i] != AccountState.NORMAL:
            raise ClearingError(f"account {i} is not in normal state: borrowing is blocked")
        if int(c.accounts.debt[a, i]) + amount > INT64_MAX or int(c.ledger.balances[a, i]) + amount > INT64_MAX:
            raise ClearingError(f"account {i}: a loan of {amount} {asset} would exceed the largest balance an account can hold")
        pool = self.pools[asset]
        if c.ledger.balance(pool, a) < amount:
            raise ClearingError(f"{asset} lending pool holds only {c.ledger.balance(pool, a)}")
        ltv = self.ltv(i, balance_delta=(a, amount), debt_delta=(a, amount))
        if ltv > c.loan_terms.initial_ltv:
            raise ClearingError(
                f"account {i}: loan-to-value would be {ltv / RATE_SCALE:.4f} > "
                f"initial LTV {c.loan_terms.initial_ltv / RATE_SCALE:.4f}"
            )
        c.ledger.transfer(a, pool, i, amount, Kind.LOAN, ts)
        c.accounts.debt[a, i] += amount
        self.principal[asset] += amount

    def repay(self, i: int, asset: str, amount: int, ts: int = 0) -> None:
        """Repay up to the outstanding debt from the account's balance."""
        c = self.core
        i = c.acct(i)
        a = c.ledger.asset(asset)
        amount = min(int(amount), int(c.accounts.debt[a, i]))
        if amount <= 0:
            raise ClearingError(f"account {i} owes no {asset}")
        if c.ledger.balances[a, i] < amount:
            raise ClearingError(f"account {i}: balance too small to repay {amount} {asset}")
        c.ledger.transfer(a, i, self.pools[asset], amount, Kind.REPAY, ts)
        c.accounts.debt[a, i] -= amount
        self.principal[asset] -= amount

    def accrue_interest(self, asset: str, rate: str | Decimal, ts: int = 0) -> int:
        """Charge one period's interest (``rate`` per period, exact to 1e-9) on every loan of ``asset``.

        Each borrower pays ``ceil(debt x rate)`` from its balance to the lending pool (a journalled
        transfer; the balance may go negative, which the risk engine then sees). Exact for any
        admissible rate and debt. Returns the total charged.
        """
        c = self.core
        a = c.ledger.asset(asset)
        try:
            r = decimal_to_units(rate, Decimal(1) / INTEREST_SCALE, f"interest rate of {asset}")
        except UnitError as exc:
            raise ClearingError(f"{exc} (rates are exact to 1e-9 per period)") from None
        if r < 0:
            raise ClearingError(f"interest rate of {asset}: must be >= 0, got {rate}")
        n = c.accounts.n
        interest = muldiv_vec(c.accounts.debt[a, :n], r, INTEREST_SCALE, ceil=True)
        who = np.flatnonzero(interest)
        c.ledger.transfer_many(a, who, np.full(len(who), self.pools[asset]), interest[who], Kind.INTEREST, ts)
        return exact_sum(interest)

    def ltv(self, i: int, balance_delta: tuple[int, int] | None = None, debt_delta: tuple[int, int] | None = None) -> int:
        """Loan-to-value in millionths (int64 max with debt but no collateral), optionally after deltas."""
        c = self.core
        acc = c.accounts.arrays
        bal = c.ledger.balances
        saved = []
        for arr, delta in ((bal, balance_delta), (acc.debt, debt_delta)):
            if delta:
                saved.append((arr, delta[0], int(arr[delta[0], i])))
                arr[delta[0], i] += delta[1]
        try:
            return int(loan_to_value(c.params, acc, bal, int(i)))
        finally:
            for arr, a, v in saved:
                arr[a, i] = v

    def ltv_breaches(self, limit: int | None = None) -> np.ndarray:
        """Accounts whose loan-to-value exceeds ``limit`` (default: the liquidation LTV), exactly.

        A float pass over every indebted account keeps only those within a 1e-9 band of the
        limit or beyond it; the exact :meth:`ltv` decides for those.
        """
        c = self.core
        limit = c.loan_terms.liquidation_ltv if limit is None else limit
        n = c.accounts.n
        lent = [a for a, code in enumerate(c.assets) if self.principal[code] > 0]
        if not lent:
            return np.zeros(0, np.int64)
        ids = np.flatnonzero(c.accounts.debt[lent, :n].any(axis=0))
        if len(ids) == 0:
            return ids
        price = c.asset_price.astype(np.float64) / MONEY_SCALE
        owed = (c.accounts.debt[:, ids] * price[:, None]).sum(axis=0)
        bal = np.maximum(c.ledger.balances[:, ids], 0)
        coll = (bal * (price * c.ratio / RATE_SCALE)[:, None]).sum(axis=0)
        suspect = owed * RATE_SCALE >= limit * coll * (1 - 1e-9) - 1.0
        return np.array([i for i in ids[suspect].tolist() if self.ltv(i) > limit], np.int64)
