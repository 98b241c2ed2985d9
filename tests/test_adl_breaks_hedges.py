"""BRIEF §4 end to end through real books: ADL breaks hedges.

A fund is long BTC and ETH and short DOGE as a hedge. DOGE's bids vanish and DOGE falls:
the levered DOGE longs go bankrupt, the book cannot take their positions, the small
insurance fund runs dry and ADL closes the most profitable, most levered DOGE short: the
fund's hedge. BTC and ETH then fall and the now unhedged fund is liquidated. With a fund
large enough to avoid ADL the same crash leaves the hedged fund standing.

A market maker long DOGE spot and short DOGE perp loses its hedge the same way and then
carries naked spot into the fall. Prices on the books come from orders; the marks (the
external index) are the scripted, exogenous input.

ADL rule (by design since the rebuild): for each bankrupt account the fund pays what it
can; ADL closes exactly the uncovered fraction of the bankrupt position itself (rounded up
to a lot) at its bankruptcy price, against the opposite positions ranked profitable first;
the rest of the position goes to the liquidator at the mark.

Units: DOGEUSDT tick 0.00001 x lot 1 DOGE = 1,000 money units per tick-lot, so 100,000 lots
x 1 tick = 1 USDT; BTCUSDT 0.1 x 0.001 = 10,000 units; ETHUSDT 0.01 x 0.001 = 1,000 units.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from cascadelab.clearing.accounts import AccountState
from cascadelab.clearing.collateral import CollateralAsset, fixed, from_index
from cascadelab.instruments import Instrument
from cascadelab.records import LIQ_EVENT, Ev
from cascadelab.units import money_to_units
from cascadelab.venue.profiles import build

S = 1_000_000_000
PERPS = [("BTCUSDT", "0.1", "0.001"), ("ETHUSDT", "0.01", "0.001"), ("DOGEUSDT", "0.00001", "1")]
BTC, ETH, DOGE = 0, 1, 2  # venue indices of the perpetuals (in PERPS order)
DOGE_SPOT = Instrument("DOGE-SPOT", "spot", "DOGE", "USDT", "0.00001", "1", "1", "0", "0.0001")
ENGINES = ("reference", "batched")


def usd(x: str) -> int:
    return money_to_units(x)


class Market:
    """A Binance-profile venue with a market maker, the hedged fund, DOGE longs and another short."""

    def __init__(self, fund_seed: str, engine: str) -> None:
        collateral = [CollateralAsset.of("USDT", "1", fixed("1")), CollateralAsset.of("DOGE", "0.9", from_index("DOGE"))]
        self.v = build(
            "binance", PERPS, spots=[DOGE_SPOT], collateral=collateral, debug=True, engine=engine, fund_seed=usd(fund_seed)
        )
        self.eng = self.v.risk
        self.ch = self.v.clearing
        self.doge_index = self.v.add_asset_index("DOGE", {"ext": Fraction(1)})
        self.t = 0
        self.set_marks("100000", "4000", "0.2")
        (self.mm, self.fund, self.other_short, *self.longs) = (int(x) for x in self.v.open_accounts(7))
        self.ch.deposit(self.mm, "USDT", usd("50000000"))
        self.ch.deposit(self.fund, "USDT", usd("12000"))
        self.ch.deposit(self.other_short, "USDT", usd("50000"))
        for r in self.longs:
            self.ch.deposit(r, "USDT", usd("2100"))
        for sym, lev in (("BTCUSDT", 50), ("ETHUSDT", 50), ("DOGEUSDT", 10)):
            self.ch.set_leverage(self.fund, sym, lev)
        for r in self.longs:
            self.ch.set_leverage(r, "DOGEUSDT", 10)
        # the fund: long 1 BTC and 10 ETH from the market maker, short 300,000 DOGE to three levered longs
        self.cross(self.mm, self.fund, "BTCUSDT", "1", "100000")
        self.cross(self.mm, self.fund, "ETHUSDT", "10", "4000")
        for r in self.longs[:3]:
            self.cross(self.fund, r, "DOGEUSDT", "100000", "0.2")
        # another DOGE short, barely levered, against the fourth long
        self.cross(self.other_short, self.longs[3], "DOGEUSDT", "100000", "0.2")
        self.step()

    def cross(self, seller: int, buyer: int, symbol: str, qty: str, price: str) -> None:
        assert self.v.submit_decimal(seller, symbol, -1, qty, price).accepted
        ack = self.v.submit_decimal(buyer, symbol, 1, qty, price)
        assert ack.accepted and ack.filled > 0, ack

    def set_marks(self, btc: str, eth: str, doge: str) -> None:
        for sym, p in (("BTCUSDT", btc), ("ETHUSDT", eth), ("DOGEUSDT", doge)):
            inst = self.v.instruments[self.v.instrument(sym)]
            self.ch.set_mark(sym, inst.price_to_ticks(p))  # the perpetuals' indices are never fed: marks stay scripted
        self.doge_index.update("ext", Fraction(doge), self.t * S)

    def step(self) -> np.ndarray:
        """One venue step (collateral prices, then the risk engine); proves conservation; returns the step's events."""
        out = self.v.step(self.t * S).events
        self.ch.check(replay_journal=True)
        self.t += 1
        return out

    def events(self, kind: Ev) -> np.ndarray:
        """Every liquidation event of one kind so far."""
        log = self.eng.event_log
        ev = np.concatenate(log) if log else np.zeros(0, LIQ_EVENT)
        return ev[ev["kind"] == kind]

    def quote(self, symbol: str, side: int, qty: str, price: str) -> None:
        assert self.v.submit_decimal(self.mm, symbol, side, qty, price).accepted


def crash(fund_seed: str, engine: str) -> Market:
    m = Market(fund_seed, engine)
    # 05:10 the market makers leave DOGE: no bids at all; DOGE falls 15% on the index
    m.v.cancel_all(m.mm, "DOGEUSDT")
    m.set_marks("100000", "4000", "0.17")
    m.step()
    # 05:20 BTC and ETH fall 15%, DOGE to 0.12; market makers still bid BTC and ETH
    m.quote("BTCUSDT", 1, "2", "84900")
    m.quote("ETHUSDT", 1, "20", "3395")
    m.set_marks("85000", "3400", "0.12")
    m.step()
    return m


@pytest.mark.parametrize("engine", ENGINES)
def test_adl_closes_the_hedge_and_the_unhedged_fund_is_liquidated(engine: str) -> None:
    m = crash(fund_seed="500", engine=engine)
    adl = m.events(Ev.ADL_CLOSE)
    first = adl["ts"] == adl["ts"].min()
    doge_adl = adl[(adl["instrument"] == DOGE) & first]  # the DOGE longs' deficits, in the first step of the crash
    assert len(doge_adl), "the small fund should not have covered the DOGE longs' deficits"
    assert doge_adl[0]["account"] == m.fund and doge_adl[0]["rank"] == 1  # the profitable, levered short goes first
    assert m.other_short not in doge_adl["account"][:1]
    assert m.ch.accounts.size[DOGE, m.fund] == 0  # the hedge is gone ...
    started = m.events(Ev.LIQUIDATION_START)["account"].tolist()
    assert m.fund in started  # ... and the fund is liquidated when BTC and ETH fall
    assert all(m.ch.accounts.state[r] in (AccountState.BANKRUPT, AccountState.TAKEN_OVER) for r in m.longs)

    # The numbers under the ADL rule, by hand. Each DOGE long: wallet 2,100 - 10 taker fee (20,000 x 0.05%)
    # = 2,090; at 0.17 its uPnL is 100,000 x -0.03 = -3,000: equity -910, a deficit of 910 per long.
    # First long: the fund's 500 pays 500; ADL closes ceil(100,000 x 410 / 910) = ceil(45,054.9) = 45,055 lots
    # at the bankruptcy price 0.17 + 910 / 100,000 = 0.1791 (17,910 ticks); the liquidator takes the other
    # 54,945 at the mark. That leaves 2,090 - 45,055 x 0.0209 - 54,945 x 0.03 = -499.9995 for the fund: 0.0005 left.
    # The next three longs: the fund pays 0.0005 of 910, so ADL closes ceil(100,000 x 909.9995 / 910) = 100,000
    # lots, the whole position, at 0.1791 (which absorbs the whole deficit: the fund keeps its 0.0005).
    # In rank order the fund's 300,000 short goes first (45,055 + 100,000 + 100,000 + 54,945), then the other short.
    assert [(int(e["account"]), int(e["qty"]), int(e["price"])) for e in doge_adl] == [
        (m.fund, 45_055, 17_910),
        (m.fund, 100_000, 17_910),
        (m.fund, 100_000, 17_910),
        (m.fund, 54_945, 17_910),
        (m.other_short, 45_055, 17_910),
    ]
    assert doge_adl["rank"].tolist() == [1, 1, 1, 1, 2]
    # the fund's short realized 300,000 x (0.2 - 0.1791) = 6,270: wallet 12,000 - 50 - 20 (BTC, ETH taker fees)
    # - 12 (DOGE maker fee, 60,000 x 0.02%) + 6,270 = 18,188. At BTC 85,000 and ETH 3,400 its uPnL is
    # -15,000 - 6,000: equity -2,812. Nothing fills at the bankruptcy price (the bid is 84,900 < 85,000), so it is
    # taken over: the deficit splits 85,000 : 34,000 by notional, 2,008.57142857 (BTC) and 803.42857143 (ETH);
    # with 0.0005 in the fund ADL closes both whole positions against the market maker's shorts, at
    # 85,000 + ceil(2,008.57142857 / 1 BTC) to the tick = 87,008.6 and 3,400 + 803.43 / 10 rounded up = 3,480.35.
    fund_adl = adl[adl["instrument"] != DOGE]
    # the liquidator took 54,945 DOGE at 0.17; at 0.12 it carries a 2,747.25 loss its 0.1005 fund cannot pay: that
    # part of its backlog is deleveraged at its own bankruptcy price (0.17), against the short left in the queue
    backlog = m.events(Ev.ADL_TRIGGER)
    backlog = backlog[backlog["account"] == m.eng.liquidator]
    assert [(int(e["instrument"]), int(e["qty"]), int(e["price"]), int(e["amount"])) for e in backlog] == [
        (DOGE, 54_943, 17_000, money_to_units("2747.25"))
    ]
    later = adl[(adl["instrument"] == DOGE) & ~first]
    assert later["account"].tolist() == [m.other_short] and int(later["qty"].sum()) == 54_943
    assert [(int(e["instrument"]), int(e["account"]), int(e["qty"]), int(e["price"])) for e in fund_adl] == [
        (BTC, m.mm, 1_000, 870_086),
        (ETH, m.mm, 10_000, 348_035),
    ]
    assert m.ch.accounts.size[:, m.fund].tolist() == [0, 0, 0]
    assert m.ch.accounts.state[m.fund] == AccountState.BANKRUPT
    # closing at prices rounded up to the tick leaves 18,188 - 12,991.4 - 5,196.5 = 0.1 over, which goes to the
    # fund: 0.0005 + 0.1
    assert m.eng.fund_balance(0) == money_to_units("0.1005")  # the backlog's ADL took exactly what the fund could not pay


@pytest.mark.parametrize("engine", ENGINES)
def test_same_crash_with_a_deep_insurance_fund_leaves_the_hedge_and_the_fund_alive(engine: str) -> None:
    m = crash(fund_seed="10000000", engine=engine)
    adl = m.events(Ev.ADL_CLOSE)
    assert len(adl[adl["instrument"] == DOGE]) == 0
    assert m.ch.accounts.size[DOGE, m.fund] == -300_000
    assert m.fund not in m.events(Ev.LIQUIDATION_START)["account"].tolist()
    am = m.ch.account_margin(m.fund)
    assert am.equity > am.maintenance
    # the fund paid the four longs' deficits (910 each, see above) at the mark: 10,000,000 - 3,640
    assert m.eng.fund_balance(0) == usd("10000000") - 4 * usd("910")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fund_seed", ["500", "10000000"])
def test_market_maker_loses_its_spot_perp_hedge_to_adl(fund_seed: str, engine: str) -> None:
    m = Market(fund_seed, engine)
    ch = m.ch
    (mmh,) = (int(x) for x in m.v.open_accounts(1))
    ch.deposit(mmh, "USDT", usd("20000"))
    ch.deposit(mmh, "DOGE", usd("300000"))  # long 300,000 DOGE spot ...
    ch.set_leverage(mmh, "DOGEUSDT", 10)
    (extra_long,) = (int(x) for x in m.v.open_accounts(1))
    ch.deposit(extra_long, "USDT", usd("6300"))
    ch.set_leverage(extra_long, "DOGEUSDT", 10)
    m.cross(mmh, extra_long, "DOGEUSDT", "300000", "0.2")  # ... and short 300,000 DOGE perp: delta neutral
    m.step()
    m.v.cancel_all(m.mm, "DOGEUSDT")
    m.set_marks("100000", "4000", "0.17")
    m.step()
    hedged = ch.accounts.size[DOGE, mmh] == -300_000
    before = ch.account_margin(mmh).equity
    m.set_marks("100000", "4000", "0.12")  # DOGE keeps falling
    m.step()
    change = ch.account_margin(mmh).equity - before
    spot_loss = 300_000 * usd("0.05") * 9 // 10  # 0.05 per DOGE at the 0.9 collateral ratio: 13,500
    if fund_seed == "500":
        assert not hedged  # the perp short was deleveraged: naked spot into the fall
        closes = m.events(Ev.ADL_CLOSE)
        assert mmh in closes["account"].tolist()
        # ranked second, after the fund's short: the fourth long's ADL takes the fund's last 54,945 lots and 45,055
        # of mmh's; the extra long (6,300 - 30 fee - 9,000 = -2,730 at 0.17) is closed whole at 0.17 + 2,730 / 300,000
        # = 0.1791 against mmh's other 254,945 and then the other short: mmh's whole short is closed
        assert int(closes["qty"][closes["account"] == mmh].sum()) == 300_000
        assert change == pytest.approx(-spot_loss, abs=usd("1"))
        assert change == -spot_loss  # no perp position left: only the haircut spot moves
    else:
        assert hedged  # the perp short's gain offsets the spot loss (less the haircut)
        assert change > -spot_loss // 5
        assert change == 300_000 * usd("0.05") - spot_loss  # +15,000 on the short - 13,500 on the spot = +1,500
