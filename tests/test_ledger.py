"""The double-entry ledger: transfers, system accounts, exact conservation checks."""

from __future__ import annotations

import numpy as np
import pytest

from cascadelab.arith import exact_sum, muldiv_ceil, muldiv_floor, muldiv_trunc, wide_add
from cascadelab.clearing.ledger import FEE_POOL, OUTSIDE, ConservationError, Ledger, LedgerError
from cascadelab.records import JOURNAL, Kind


@pytest.fixture
def ledger() -> Ledger:
    led = Ledger(["USDT", "BTC"])
    led.add_accounts(3)
    return led


def test_deposit_transfer_withdraw_and_check(ledger: Ledger) -> None:
    ledger.deposit(0, "USDT", 1_000)
    ledger.transfer("USDT", 0, 1, 300, Kind.SPOT_TRADE)
    ledger.transfer("USDT", 1, FEE_POOL, 7, Kind.TRADE_FEE)
    ledger.withdraw(1, "USDT", 100)
    assert [ledger.balance(i, "USDT") for i in range(3)] == [700, 193, 0]
    assert ledger.balance(FEE_POOL, "USDT") == 7 and ledger.balance(OUTSIDE, "USDT") == -900
    ledger.check(replay_journal=True)
    j = ledger.journal_records()
    assert j.dtype == JOURNAL and len(j) == 4  # deposit, trade, fee, withdrawal: one record each
    fees = (j["kind"] == Kind.TRADE_FEE) & (j["asset"] == ledger.asset("USDT"))
    assert int(j["amount"][fees].sum()) == 7
    assert (int(j["src"][fees][0]), int(j["dst"][fees][0])) == (1, FEE_POOL)


def test_check_catches_a_value_created_from_nothing(ledger: Ledger) -> None:
    ledger.deposit(0, "BTC", 5)
    ledger.balances[1, 2] += 1  # a bug that creates value without an entry
    with pytest.raises(ConservationError, match="BTC"):
        ledger.check()


def test_check_catches_a_silent_system_loss(ledger: Ledger) -> None:
    ledger.deposit(0, "USDT", 5)
    # the fee pool loses one unit with no journal entry (system balances are 96-bit limb pairs)
    wide_add(ledger.arrays.sys_hi, ledger.arrays.sys_lo, -FEE_POOL - 1, ledger.asset("USDT"), -1)
    assert ledger.balance(FEE_POOL, "USDT") == -1
    with pytest.raises(ConservationError):
        ledger.check()


def test_journal_replay_catches_unjournalled_moves(ledger: Ledger) -> None:
    ledger.deposit(0, "USDT", 5)
    ledger.balances[0, 0] -= 2
    ledger.balances[0, 1] += 2  # conserved, but not journalled
    ledger.check()
    with pytest.raises(ConservationError, match="journal"):
        ledger.check(replay_journal=True)


def test_transfer_many_with_repeats_and_system_accounts(ledger: Ledger) -> None:
    sl = ledger.system_account("insurance:BTCUSDT")
    ledger.transfer_many("USDT", np.array([OUTSIDE, OUTSIDE, OUTSIDE]), np.array([0, 0, 2]), np.array([5, 6, 7]), Kind.DEPOSIT)
    ledger.transfer_many("USDT", np.array([0, 0, 2]), np.array([sl, sl, FEE_POOL]), np.array([1, 2, 3]), Kind.INSURANCE)
    assert ledger.balance(0, "USDT") == 8 and ledger.balance(sl, "USDT") == 3 and ledger.balance(FEE_POOL, "USDT") == 3
    ledger.check(replay_journal=True)


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda led: led.transfer("USDT", 0, 1, -1, Kind.SPOT_TRADE), ">= 0"),
        (lambda led: led.transfer("XRP", 0, 1, 1, Kind.SPOT_TRADE), "unknown asset"),
        (lambda led: led.transfer("USDT", 0, 9, 1, Kind.SPOT_TRADE), "unknown account"),
        (lambda led: led.transfer("USDT", 0, -99, 1, Kind.SPOT_TRADE), "unknown system account"),
    ],
)
def test_refused_transfers_change_nothing(ledger: Ledger, call, needle: str) -> None:
    before = ledger.balances.copy()
    with pytest.raises(LedgerError, match=needle):
        call(ledger)
    assert np.array_equal(before, ledger.balances)
    ledger.check(replay_journal=True)


def test_system_balances_exceed_int64(ledger: Ledger) -> None:
    big = 2**62
    ledger.add_accounts(3)
    for i in range(6):
        ledger.deposit(i, "USDT", big)
    assert ledger.balance(OUTSIDE, "USDT") == -6 * big  # beyond int64, exact
    assert ledger.system_balances("USDT")["outside"] == -6 * big
    ledger.check()


def test_exact_helpers() -> None:
    v = np.array([2**62, 2**62, 2**62, -5], np.int64)
    assert exact_sum(v) == 3 * 2**62 - 5
    # 10,000 BTC at $122,000: the product overflows int64, the result does not
    for a, b, d in [
        (10**12, 12_200_000_000_000, 10**8),
        (-(10**12), 12_200_000_000_000, 10**8),
        (-7, 3, 2),
        (123_456_789_123, 999_999, 10**6),
    ]:
        assert muldiv_floor(a, b, d) == (a * b) // d
        assert muldiv_ceil(a, b, d) == -((-a * b) // d)
        assert muldiv_trunc(a, b, d) == (abs(a) * b // d) * (1 if a >= 0 else -1)
    assert muldiv_trunc(-7, 3, 2) == -10
