"""ADL rankings against scores computed by hand.

Four short positions, each the only position of its account (money in plain units, quote
unit 1), so position and account levels agree: maint = pos_maint = acct_maint and
acct_upnl = uPnL, equity = wallet + acct_upnl:

| acct | size | entry notional | mark notional | uPnL | wallet | maint | equity |
|------|------|----------------|---------------|------|--------|-------|--------|
| 10   | -100 | -1000          | -800          | 200  | 100    | 8     | 300    |
| 11   | -50  | -600           | -400          | 200  | 1000   | 4     | 1200   |
| 12   | -200 | -1600          | -1600         | 0    | 400    | 16    | 400    |
| 13   | -10  | -70            | -80           | -10  | 50     | 1     | 40     |

By design every rule now closes profitable positions (uPnL > 0: accounts 10 and 11) before
the others (12 and 13), the score ordering only within each group.
"""

from __future__ import annotations

import numpy as np
import pytest

from cascadelab.liquidation import adl

C = adl.Candidates(
    account=np.array([10, 11, 12, 13]),
    size=np.array([-100, -50, -200, -10]),
    entry_notional=np.array([-1000, -600, -1600, -70]),
    mark_notional=np.array([-800, -400, -1600, -80]),
    pos_maint=np.array([8, 4, 16, 1]),
    wallet=np.array([100, 1000, 400, 50]),
    acct_maint=np.array([8, 4, 16, 1]),
    acct_upnl=np.array([200, 200, 0, -10]),
)
SIZE = np.abs(C.size)  # what each position still holds
LOT_VALUE = 8.0  # money value of one lot at the mark (|mark notional| / |size|)


def test_the_table_is_consistent() -> None:
    assert C.upnl.tolist() == [200, 200, 0, -10] and C.equity.tolist() == [300, 1200, 400, 40]


@pytest.mark.parametrize(
    ("ranking", "expected_scores", "expected_order"),
    [
        # PnL% = max(0,uPnL)/max(1,wallet); ratio = maint/(wallet+uPnL): 2 x 8/300, 0.2 x 4/1200, 0, 0
        ("binance", [2 * 8 / 300, 0.2 * 4 / 1200, 0.0, 0.0], [10, 11, 12, 13]),
        # PnL% = uPnL/|entry|; lev = |mark|/equity; x lev if PnL% > 0 else / lev
        ("bitmex", [0.2 * 800 / 300, (200 / 600) * (400 / 1200), 0.0, (-10 / 70) / 2], [10, 11, 12, 13]),
        # by design the published formula for both sides: |mark|/|entry| x |notional|/equity
        # (was entry/mark for shorts). Order: profitable 10 (2.13) before 11 (0.22), then 12 (4) before 13 (2.29)
        ("hyperliquid", [0.8 * 800 / 300, (400 / 600) * (400 / 1200), 1.0 * 4, (80 / 70) * 2], [10, 11, 12, 13]),
        ("pnl_pct", [0.2, 200 / 600, 0.0, -10 / 70], [11, 10, 12, 13]),
        # profitable first (by design): 10 (2.67) before 11 (0.33), then 12 (4) before 13 (2); was [12, 10, 13, 11]
        ("water_filling", [800 / 300, 400 / 1200, 4.0, 2.0], [10, 11, 12, 13]),
    ],
)
def test_scores_and_order_match_hand_computation(ranking: str, expected_scores, expected_order) -> None:
    s = adl.scores(ranking, C, quote_unit=1)
    np.testing.assert_allclose(s, expected_scores, rtol=1e-12)
    assert C.account[adl.order(s, C.account, C.upnl)].tolist() == expected_order


def test_ranked_allocation_takes_whole_positions_in_order() -> None:
    cuts = adl.allocate("bitmex", C, 120, SIZE, LOT_VALUE)
    assert dict(zip(C.account.tolist(), cuts.tolist(), strict=True)) == {10: 100, 11: 20, 12: 0, 13: 0}


def test_pro_rata_takes_the_same_fraction_from_everyone() -> None:
    # by design the same fraction of every position *of a group*, profitable group first (was 72 / 360 = 20%
    # of all four: [20, 10, 40, 2]). 72 lots fit in the profitable group (10, 11: 150 lots): 72/150 = 48% of each
    assert adl.allocate("pro_rata", C, 72, SIZE, LOT_VALUE).tolist() == [48, 24, 0, 0]
    # 192 lots: the profitable 150 close, the other 42 are 42 / 210 = 20% of each losing or flat position
    assert adl.allocate("pro_rata", C, 192, SIZE, LOT_VALUE).tolist() == [100, 50, 40, 2]
    # remainders go to the largest fractions: 7 x 100/150 = 4 r 100 and 7 x 50/150 = 2 r 50, the last lot to account 10
    cuts = adl.allocate("pro_rata", C, 7, SIZE, LOT_VALUE)
    assert cuts.sum() == 7 and cuts.tolist() == [5, 2, 0, 0]
    # then to the lower ids: with 100 lots left each, 10 and 11 tie for a single lot (remainder 100 of 200 each)
    assert adl.allocate("pro_rata", C, 1, np.array([100, 100, 200, 10]), LOT_VALUE).tolist() == [1, 0, 0, 0]


def test_water_filling_levels_the_most_levered_to_a_common_leverage() -> None:
    # value per lot 8: lev = 100x8/300 = 2.67, 50x8/1200 = 0.33, 200x8/400 = 4, 10x8/40 = 2.
    # By design the profitable group (10, 11) is levelled first (was: 10 and 12 levelled at 2.2857).
    # 100 lots: (100 - 37.5 L) + (50 - 150 L) = 100 gives L = 4/15 = 0.2667 (< 0.33, so both are cut): 90 and 10
    cuts = adl.allocate("water_filling", C, 100, SIZE, LOT_VALUE)
    assert cuts.tolist() == [90, 10, 0, 0]
    after = (SIZE - cuts) * LOT_VALUE / C.equity
    assert after[0] == pytest.approx(after[1], abs=0.05) and after[0] == pytest.approx(4 / 15)
    # 250 lots: the profitable 150 close; 100 from 12 (lev 4) and 13 (lev 2): 200 - 50 L = 100 at L = 2, which is
    # 13's leverage, so 13 is not cut: 12 comes down to exactly 13's leverage
    cuts = adl.allocate("water_filling", C, 250, SIZE, LOT_VALUE)
    assert cuts.tolist() == [100, 50, 100, 0]
    after = (SIZE - cuts) * LOT_VALUE / C.equity
    assert after[2] == pytest.approx(after[3]) == pytest.approx(2.0)


def test_allocation_never_exceeds_what_is_left() -> None:
    for ranking in adl.RANKINGS:
        cuts = adl.allocate(ranking, C, 10_000, SIZE, LOT_VALUE)
        assert cuts.tolist() == SIZE.tolist(), ranking  # more than everyone holds: everyone is closed, no more


def test_quantiles_and_lights() -> None:
    s = adl.scores("bitmex", C, quote_unit=1)
    q = adl.quantiles(s, C.account, C.upnl)
    # percentiles 100%, 75%, 50%, 25% fall in the 5th, 4th, 3rd and 2nd fifths
    assert q.tolist() == [4, 3, 2, 1] and adl.lights(q).tolist() == [5, 4, 3, 2]


def test_unknown_ranking() -> None:
    with pytest.raises(adl.AdlError, match="unknown ADL ranking"):
        adl.scores("random", C)
