"""ADL rankings against scores computed by hand.

Four short positions (money in plain units, quote unit 1):

| acct | size | entry notional | mark notional | uPnL | wallet | maint | equity |
|------|------|----------------|---------------|------|--------|-------|--------|
| 10   | -100 | -1000          | -800          | 200  | 100    | 8     | 300    |
| 11   | -50  | -600           | -400          | 200  | 1000   | 4     | 1200   |
| 12   | -200 | -1600          | -1600         | 0    | 400    | 16    | 400    |
| 13   | -10  | -70            | -80           | -10  | 50     | 1     | 40     |
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
    wallet=np.array([100, 1000, 400, 50]),
    maint=np.array([8, 4, 16, 1]),
    equity=np.array([300, 1200, 400, 40]),
)


@pytest.mark.parametrize(
    ("ranking", "expected_scores", "expected_order"),
    [
        # PnL% = max(0,uPnL)/max(1,wallet); ratio = maint/(wallet+uPnL): 2 x 8/300, 0.2 x 4/1200, 0, 0
        ("binance", [2 * 8 / 300, 0.2 * 4 / 1200, 0.0, 0.0], [10, 11, 12, 13]),
        # PnL% = uPnL/|entry|; lev = |mark|/equity; x lev if PnL% > 0 else / lev
        ("bitmex", [0.2 * 800 / 300, (200 / 600) * (400 / 1200), 0.0, (-10 / 70) / 2], [10, 11, 12, 13]),
        # shorts: entry/mark x |notional|/equity
        ("hyperliquid", [1.25 * 800 / 300, 1.5 * 400 / 1200, 1.0 * 4, (70 / 80) * 2], [12, 10, 13, 11]),
        ("pnl_pct", [0.2, 200 / 600, 0.0, -10 / 70], [11, 10, 12, 13]),
        ("water_filling", [800 / 300, 400 / 1200, 4.0, 2.0], [12, 10, 13, 11]),
    ],
)
def test_scores_and_order_match_hand_computation(ranking: str, expected_scores, expected_order) -> None:
    s = adl.scores(ranking, C, quote_unit=1)
    np.testing.assert_allclose(s, expected_scores, rtol=1e-12)
    assert C.account[adl.order(s, C.account)].tolist() == expected_order


def test_ranked_allocation_takes_whole_positions_in_order() -> None:
    cuts, _ = adl.allocate("bitmex", C, 120)
    assert dict(zip(C.account.tolist(), cuts.tolist(), strict=True)) == {10: 100, 11: 20, 12: 0, 13: 0}


def test_pro_rata_takes_the_same_fraction_from_everyone() -> None:
    cuts, _ = adl.allocate("pro_rata", C, 72)  # 72 / 360 = 20% of each
    assert cuts.tolist() == [20, 10, 40, 2]
    cuts, _ = adl.allocate("pro_rata", C, 7)  # remainders go to the largest fractions, then lower ids
    assert cuts.sum() == 7 and cuts.tolist() == [2, 1, 4, 0]


def test_water_filling_levels_the_most_levered_to_a_common_leverage() -> None:
    # value per lot 8: lev = 2.67, 0.33, 4, 2; taking 100 lots levels accounts 10 and 12 at L = 2.2857
    cuts, _lev = adl.allocate("water_filling", C, 100, price_value=8.0)
    assert cuts.tolist() == [14, 0, 86, 0]
    after = (np.abs(C.size) - cuts) * 8 / C.equity
    assert after[0] == pytest.approx(after[2], abs=0.05) and after[0] < 2.3


def test_quantiles_and_lights() -> None:
    s = adl.scores("bitmex", C, quote_unit=1)
    q = adl.quantiles(s, C.account)
    # percentiles 100%, 75%, 50%, 25% fall in the 5th, 4th, 3rd and 2nd fifths
    assert q.tolist() == [4, 3, 2, 1] and adl.lights(q).tolist() == [5, 4, 3, 2]


def test_unknown_ranking() -> None:
    with pytest.raises(adl.AdlError, match="unknown ADL ranking"):
        adl.scores("random", C)
