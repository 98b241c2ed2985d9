"""``cascadelab adl-rank``: where each position of a file stands in each venue's ADL queue.

Reads the positions with :func:`cascadelab.io.positions.read_positions`, scores them with
:func:`cascadelab.liquidation.adl.scores` (the function the risk engine uses) and the
venue profile's margin tiers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cascadelab.io.positions import Position, money_units
from cascadelab.liquidation import adl


@dataclass(frozen=True)
class RankedPosition:
    """Where one position of the file stands in its venue's ADL queue.

    ``score`` is None for a position whose account has no positive equity (it is being
    liquidated itself, so it is never deleveraged first: it is ranked last).
    """

    row: int
    account: str
    symbol: str
    side: str
    venue: str
    ranking: str
    score: float | None
    rank: int
    of: int
    quantile: int
    lights: int


def rank_positions(positions: list[Position], venue: str) -> list[RankedPosition]:
    """Score, rank, quantile (0-4) and lights (1-5) of every position under ``venue``'s rule.

    Positions are ranked against the others in the file on the same symbol and side with
    :func:`cascadelab.liquidation.adl.scores`, the function the risk engine uses. Account-level
    quantities (see :mod:`cascadelab.liquidation.adl`) come from all of an account's rows:
    maintenance margin and unrealized PnL are summed over them; the wallet is the row's
    ``wallet_balance``; an ``equity`` column, when given, is the margin balance backing that
    position (it sets the account's unrealized PnL to ``equity - wallet_balance``).
    """
    from cascadelab.venue.profiles import profile

    p = profile(venue)
    ranking = str(p.liquidation["adl_ranking"].value)
    pos_mm = []
    pos_upnl = []
    for pos in positions:
        mark_n = money_units(pos.side * pos.size * pos.mark)
        tiers = p.tiers_for(pos.symbol.removesuffix("USDT").removesuffix("USDC"))
        pos_mm.append(pos.maint if pos.maint is not None else tiers.maintenance(abs(mark_n)))
        pos_upnl.append(money_units(pos.side * pos.size * (pos.mark - pos.entry)))
    acct_mm: dict[str, int] = {}
    acct_upnl: dict[str, int] = {}
    for pos, mm, up in zip(positions, pos_mm, pos_upnl, strict=True):
        acct_mm[pos.account] = acct_mm.get(pos.account, 0) + mm
        acct_upnl[pos.account] = acct_upnl.get(pos.account, 0) + up
    groups: dict[tuple[str, int], list[int]] = {}
    for j, pos in enumerate(positions):
        groups.setdefault((pos.symbol, pos.side), []).append(j)
    results: list[RankedPosition] = []
    for (symbol, side), members in groups.items():
        group = [positions[j] for j in members]
        idx = np.arange(len(group))
        c = adl.Candidates(
            idx,
            np.array([side * int(g.size * 10**8) for g in group], np.int64),
            np.array([money_units(side * g.size * g.entry) for g in group], np.int64),
            np.array([money_units(side * g.size * g.mark) for g in group], np.int64),
            np.array([pos_mm[j] for j in members], np.int64),
            np.array([g.wallet for g in group], np.int64),
            np.array([acct_mm[g.account] for g in group], np.int64),
            np.array([g.equity - g.wallet if g.equity is not None else acct_upnl[g.account] for g in group], np.int64),
        )
        s = adl.scores(ranking, c)
        if ranking == "pro_rata":  # no order by design: show the share each would give up, largest first
            s = np.where(np.isfinite(s), np.abs(c.size).astype(np.float64), s)
        q = adl.quantiles(s, idx, c.upnl)
        rank = np.empty(len(group), np.int64)
        rank[adl.order(s, idx, c.upnl)] = np.arange(1, len(group) + 1)
        for j, g in enumerate(group):
            score = float(s[j])
            results.append(
                RankedPosition(g.row, g.account, symbol, "long" if side > 0 else "short", venue, ranking,
                               score if np.isfinite(score) else None, int(rank[j]), len(group), int(q[j]), int(q[j]) + 1)
            )  # fmt: skip
    return sorted(results, key=lambda r: r.row)
