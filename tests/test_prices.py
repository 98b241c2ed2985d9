"""Index, mark and funding formulas against DOMAIN.md."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from cascadelab.prices.funding import FundingClock, FundingRule, impact_price, premium_index, rate_units
from cascadelab.prices.index import IndexPrice
from cascadelab.prices.mark import BinanceMark, HyperliquidMark, mark_rule

S = 1_000_000_000
H = 3600 * S


def clock_at(now_ns: int, last_rate: F = F(0)) -> FundingClock:
    """An 8 h funding clock whose next funding is 4 h after ``now_ns`` (half an interval), with ``last_rate``."""
    clock = FundingClock(FundingRule(interval_hours=8), start_ns=now_ns - 4 * H)
    clock.last_rate = last_rate
    return clock


def index3() -> IndexPrice:
    return IndexPrice({"binance": F(1), "okx": F(1), "coinbase": F(2)})


def test_index_weighted_average() -> None:
    ix = index3()
    for src, p in (("binance", 100), ("okx", 102), ("coinbase", 101)):
        ix.update(src, p, 0)
    assert ix.value(0) == F(100 + 102 + 2 * 101, 4)


def test_index_drops_one_outlier() -> None:
    ix = index3()
    for src, p in (("binance", 100), ("okx", 90), ("coinbase", 101)):
        ix.update(src, p, 0)
    # median 100; okx is 10% away -> weight 0
    assert ix.value(0) == F(100 + 2 * 101, 3)


def test_index_uses_median_when_several_deviate() -> None:
    ix = IndexPrice({"a": F(1), "b": F(1), "c": F(1), "d": F(1)})
    for src, p in (("a", 100), ("b", 80), ("c", 101), ("d", 130)):
        ix.update(src, p, 0)
    assert ix.value(0) == F(100 + 101, 2)


def test_index_ignores_stale_sources() -> None:
    ix = index3()
    ix.update("binance", 100, 0)
    ix.update("okx", 200, 0)
    ix.update("coinbase", 102, 5 * S)
    assert ix.value(11 * S) == 102  # binance and okx silent for 11 s
    assert ix.value(16 * S) is None


def test_binance_mark_median_of_p1_p2_last() -> None:
    m = BinanceMark()
    index = F(100)
    bid, ask = F(1002, 10), F(1004, 10)  # mid 100.3
    for t in range(30):
        mark = m.update(t * S, index, bid, ask, F(99), clock_at(t * S, F(1, 10_000)))
    # P1 = 100 x (1 + 0.0001 x 0.5) = 100.005; P2 = 100 + 0.3 = 100.3; last 99 -> median 100.005
    assert mark == F(100005, 1000)
    mark = m.update(31 * S, index, bid, ask, F(101), clock_at(31 * S, F(1, 10_000)))
    assert mark == F(1003, 10)


def test_binance_mark_basis_is_a_30_sample_moving_average() -> None:
    m = BinanceMark()
    clock = FundingClock(FundingRule(), 0)  # last rate 0: P1 is the index
    for t in range(60):
        mid = F(100) + (1 if t < 45 else 0)
        m.update(t * S, F(100), mid - F(1, 2), mid + F(1, 2), None, clock)
    # one sample per second; the window keeps seconds 30..59, of which 30..44 had basis 1
    assert len(m.basis) == 30 and sum(b for _, b in m.basis) == 15


def test_mark_rule_by_name() -> None:
    assert isinstance(mark_rule("binance"), BinanceMark) and isinstance(mark_rule("hyperliquid"), HyperliquidMark)
    with pytest.raises(ValueError, match="mark rule must be one of"):
        mark_rule("bitmex")


def test_hyperliquid_mark() -> None:
    m = HyperliquidMark()
    oracle = F(100)
    clock = FundingClock(FundingRule.hyperliquid(), 0)  # Hyperliquid's mark does not read the funding clock
    first = m.update(0, oracle, F(101), F(103), F(102), clock)
    # EMA starts at the basis 2: a = 102; book median(101, 103, 102) = 102
    assert first == 102
    m.external_mids = [F(104), F(106)]
    mark = m.update(150 * S, oracle, F(99), F(101), F(100), clock)
    ema = 2 + (1 - np.exp(-1.0)) * (0 - 2)
    assert float(mark) == pytest.approx(sorted([100 + ema, 100, 105])[1])


def test_impact_price_and_premium() -> None:
    tick = F(1, 10)
    unit = 10_000  # 0.1 x 0.001 BTC in 1e-8 USDT
    prices = np.array([1_000_000, 999_990])  # 100,000.0 and 99,999.0
    qtys = np.array([10, 1_000])  # 0.01 BTC, 1 BTC
    notional = 200 * 125 * 10**8  # 25,000 USDT
    ip = impact_price(prices, qtys, unit, tick, notional)
    # 1,000 USDT at 100,000 then 24,000 at 99,999: average = 25,000 / (0.01 + 24000/99999)
    assert ip == F(25_000) / (F(1, 100) + F(24_000, 99_999))
    assert impact_price(prices, qtys, unit, tick, 10**20) is None
    assert premium_index(F(101), F(102), F(100)) == F(1, 100)
    assert premium_index(F(97), F(98), F(100)) == F(-2, 100)
    assert premium_index(F(99), F(101), F(100)) == 0


def test_funding_rate_clamp() -> None:
    rule = FundingRule()
    assert rule.rate(F(0)) == F(1, 10_000)  # interest only
    assert rule.rate(F(3, 10_000)) == F(1, 10_000)  # |I - P| within 0.05% -> I
    assert rule.rate(F(10, 10_000)) == F(10, 10_000) - F(5, 10_000)
    assert FundingRule(interval_hours=4).rate(F(10, 10_000)) == (F(10, 10_000) - F(5, 10_000)) / 2  # clamp, then scale
    assert rule.rate(F(1, 10)) == F(75, 10_000)  # capped
    hl = FundingRule.hyperliquid()
    assert hl.rate(F(0)) == F(1, 80_000)  # 1/8 of the 8 h interest


def test_funding_time_weights() -> None:
    clock = FundingClock(FundingRule(interval_hours=1), 0)
    for t, p in ((0, F(1)), (5, F(2)), (10, F(3))):
        clock.sample(t * S, p)
    assert clock.average_premium() == F(1 * 1 + 2 * 2 + 3 * 3, 6)
    clock.sample(3600 * S, F(0))
    assert clock.due(3600 * S)
    clock.settle()
    assert clock.samples == [] and not clock.due(3600 * S)


@pytest.mark.parametrize(
    ("rate", "units"), [(F(1, 10_000), 10_000), (F(-1, 3 * 10**8), 0), (F(5, 10**9), 1), (F(-5, 10**9), -1), (F(-15, 10**9), -2)]
)
def test_rate_units_round_half_away_from_zero(rate: F, units: int) -> None:
    assert rate_units(rate) == units


def test_venue_samples_premium_and_pays_funding_through_the_ledger() -> None:
    """A book 1% above the index for an hour: longs pay shorts at the clamped rate, exactly zero-sum."""
    from cascadelab.units import money_to_units
    from market_helpers import make_venue

    v = make_venue()
    ch = v.clearing
    mm, long_, short = (int(x) for x in v.open_accounts(3))
    for a in (mm, long_, short):
        ch.deposit(a, "USDT", money_to_units("1000000"))
    v.add_perp_market("BTCUSDT", {"ext": F(1)}, rule="binance", funding=FundingRule(interval_hours=1))
    v.markets["BTCUSDT"].index.update("ext", 100_000, 0)
    ch.set_mark("BTCUSDT", 1_000_000)
    assert v.submit_decimal(short, "BTCUSDT", -1, "1", "101000").accepted
    assert v.submit_decimal(long_, "BTCUSDT", 1, "1", "101000").filled == 1000
    assert v.submit_decimal(mm, "BTCUSDT", 1, "5", "100990").accepted  # the book stays ~1% above the index
    assert v.submit_decimal(mm, "BTCUSDT", -1, "5", "101010").accepted
    before = {a: ch.ledger.balance(a, "USDT") for a in (long_, short)}
    for t in range(0, 3601, 5):
        v.markets["BTCUSDT"].index.update("ext", 100_000, t * S)
        v.update_prices(t * S)
    rate = v.markets["BTCUSDT"].funding.last_rate
    # impact bid 100,990 (25,000 USDT fits in the first bid level) vs index 100,000: every sample P = 0.99%;
    # F = [P + clamp(0.01% - P, +/-0.05%)] x 1/8 = (0.99% - 0.05%) / 8
    assert rate == (F(99, 10_000) - F(5, 10_000)) / 8
    paid = before[long_] - ch.ledger.balance(long_, "USDT")
    received = ch.ledger.balance(short, "USDT") - before[short]
    assert paid > 0 and paid == received  # the only two positions: exactly zero-sum
    mark = int(ch.marks[0])
    assert paid == -(-1000 * mark * 10_000 * rate_units(rate) // 10**8)  # size x mark x rate, rounded up


def test_index_in_integer_arithmetic_equals_the_published_rule_in_fractions_on_random_quotes() -> None:
    """The index against the rule written out in Fraction arithmetic: weights, the 5% guard, the median fallback."""
    from statistics import median

    rng = np.random.default_rng(11)
    for _ in range(400):
        n = int(rng.integers(1, 6))
        names = [f"s{j}" for j in range(n)]
        weights = {s: F(int(rng.integers(0, 5)), int(rng.integers(1, 7))) for s in names}
        if sum(weights.values()) == 0:
            weights[names[0]] = F(1)
        idx = IndexPrice(weights, max_deviation=F(int(rng.integers(1, 10)), 100))
        base = int(rng.integers(1_000, 10**9))
        for s in names:
            idx.update(s, F(base + int(rng.integers(-base // 8, base // 8)), 10 ** int(rng.integers(0, 9))), 0)
        live = {s: p for s, (p, _) in idx.quotes.items() if weights[s] > 0}
        med = F(median(sorted(live.values())))
        deviant = {s for s, p in live.items() if abs(p - med) > idx.max_deviation * med}
        if len(deviant) > 1:
            expected = med
        else:
            kept = {s: p for s, p in live.items() if s not in deviant}
            expected = sum((weights[s] * p for s, p in kept.items()), F(0)) / sum((weights[s] for s in kept), F(0))
        got = idx.value(0)
        assert got == expected and isinstance(got, F)


def test_binance_mark_p1_is_index_times_one_plus_rate_times_time_left() -> None:
    fr = FundingClock(FundingRule(), 0)
    fr.last_rate = F(-37, 100_000)
    mark = BinanceMark()
    index, now = F(12_345_678, 100), 1_234_000_000
    p1 = index * (1 + fr.last_rate * F(fr.next_funding_ns - now, fr.interval_ns))
    # with no basis yet p2 is the index; with the last trade far above both, the median is the larger of p1 and p2
    assert mark.update(now, index, None, None, index * 2, fr) == max(p1, index)
