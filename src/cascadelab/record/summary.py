"""Headline metrics of a run and the targets of ``cascadelab check`` (BRIEF §1, §4, §6).

Both read only the recorded tables (``steps``, ``seconds``, ``events``) and the run's
``summary.json`` facts, so a run directory can be checked long after the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from cascadelab.records import Ev, Why
from cascadelab.units import MONEY_SCALE

WINDOW_CLIFF_S = 60.0
CLIFF_HOLD_S = 60.0  # after the cliff the depth stays below 50% of its pre-news level this long
SMOOTH_S = 1.0  # the depth's rolling median spans this much market time (11 steps of 100 ms)
RECOVERY_S = 45 * 60.0
BACKLOG_MIN_S = 30 * 60.0


@dataclass(frozen=True)
class Target:
    """One check: what, the measured value, the band, pass or fail."""

    name: str
    value: str
    band: str
    passed: bool


def _pre(t: np.ndarray, x: np.ndarray, news_s: float, span_s: float = 60.0) -> float:
    """Median of ``x`` over the ``span_s`` before the news (the pre-news level)."""
    sel = (t >= news_s - span_s) & (t < news_s) & np.isfinite(x)
    if not sel.any():
        sel = (t < news_s) & np.isfinite(x)
    return float(np.median(x[sel])) if sel.any() else math.nan


def _smooth_steps(t: np.ndarray) -> int:
    """Steps in :data:`SMOOTH_S` of market time (odd, at least 1), from the steps' spacing: 11 at 100 ms steps."""
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    n = round(SMOOTH_S / dt) + 1 if dt > 0 else 1
    return max(1, n | 1)


def _drawdown(low: np.ndarray, pre: float) -> float:
    """1 - lowest / pre-news level, at least 0; NaN without a level or a reading after the news."""
    ok = np.isfinite(low)
    if not (pre > 0 and ok.any()):
        return math.nan
    return max(0.0, 1 - float(np.min(low[ok])) / pre)


def facts(steps: pl.DataFrame, seconds: pl.DataFrame, events: pl.DataFrame, info: dict[str, Any]) -> dict[str, Any]:
    """Every measured quantity the headline and the check use."""
    t = steps["t_s"].to_numpy()
    news = float(info["news_s"])
    tracked = info["tracked"]
    out: dict[str, Any] = {"news_s": news}
    depth = steps[f"{tracked}.depth_bid_1pct"].to_numpy() + steps[f"{tracked}.depth_ask_1pct"].to_numpy()
    pre = _pre(t, depth, news)
    out["depth_pre"] = pre
    after = t >= news
    rel = depth / pre if pre > 0 else np.full(len(depth), math.nan)
    # the trough and the cliff read the depth's one-second rolling median: a single step where a sweep empties the band
    # or the mid jumps across an empty side is neither the trough nor a cliff
    smooth = pl.Series(rel).rolling_median(window_size=_smooth_steps(t), min_samples=1).to_numpy()
    ok = after & np.isfinite(smooth)
    out["depth_trough_ratio"] = float(np.min(smooth[ok])) if ok.any() else math.nan
    out["depth_trough_s"] = float(t[ok][int(np.argmin(smooth[ok]))]) if ok.any() else math.nan
    # the cliff: the first collapse after the news, from >= 50% to <= 10% of the pre-news level
    cliff = _cliff(t, smooth, news)
    out["cliff_s"] = cliff[0]
    out["cliff_start_s"], out["cliff_end_s"] = cliff[1], cliff[2]
    if math.isfinite(cliff[0]):
        # the fall itself, on the steps' own depth: from its last reading >= 50% before the smoothed cliff ends to its
        # first <= 10% after that (the median finds the collapse; it lags the steps, and in a book left with a thin
        # resting floor it ends only after that floor has been hit and re-posted a few times)
        i0, i1 = _fall(rel, int(np.searchsorted(t, cliff[2], side="right")))
        out["cliff_fall_start_s"], out["cliff_fall_end_s"] = float(t[i0]), float(t[i1])
        idx = np.arange(i0 + 1, i1 + 1)
        rc = steps[f"{tracked}.removed_cancel"].to_numpy()[idx]
        rt = steps[f"{tracked}.removed_trade"].to_numpy()[idx]
        canc, trade = removed_by(np.nan_to_num(depth[idx - 1] - depth[idx]), rc, rt)
        out["cliff_cancel_share"] = canc / (canc + trade) if canc + trade > 0 else math.nan
        out["cliff_cancel_gross"] = float(rc.sum())
    else:
        out["cliff_cancel_share"] = math.nan
    # makers' return and the recovery of depth
    out["makers_return_s"] = _makers_return(seconds, tracked, out["depth_trough_s"])
    out["recovery_s"] = math.nan
    if math.isfinite(out["makers_return_s"]):
        back = (t >= out["makers_return_s"]) & (rel >= 0.9)
        if back.any():
            out["recovery_s"] = float(t[back][0] - out["makers_return_s"])
    # drawdowns: internal (last trade) and external, from the pre-news level
    out["drawdown_internal"], out["drawdown_external"] = {}, {}
    for sym in info["perps"] + info["spots"]:
        last = steps[f"{sym}.last"].to_numpy()
        ext = steps[f"{sym}.external"].to_numpy()
        p_last, p_ext = _pre(t, last, news), _pre(t, ext, news)
        # a low above the pre-news level is no drawdown (0), not a negative one
        out["drawdown_internal"][sym] = _drawdown(last[after], p_last)
        out["drawdown_external"][sym] = _drawdown(ext[after], p_ext)
    # open interest (notional, all perpetuals)
    ts = seconds["t_s"].to_numpy()
    oi = np.zeros(len(ts))
    for s in info["perps"]:
        oi = oi + seconds[f"{s}.open_interest"].to_numpy()
    oi_pre = _pre(ts, oi, news)
    out["oi_pre"] = oi_pre
    out["oi_drop"] = 1 - float(np.min(oi[ts >= news])) / oi_pre if oi_pre > 0 and (ts >= news).any() else math.nan
    # liquidations
    liq = {}
    for tier in ("book", "takeover", "adl"):
        for side in ("long", "short"):
            liq[f"{tier}.{side}"] = float(steps[f"liq.{tier}.{side}.notional"].sum())
            liq[f"{tier}.{side}.count"] = int(steps[f"liq.{tier}.{side}.count"].sum())
    out["liquidations"] = liq
    total_long = sum(liq[f"{t_}.long"] for t_ in ("book", "takeover"))
    total_short = sum(liq[f"{t_}.short"] for t_ in ("book", "takeover"))
    out["liquidated_notional"] = total_long + total_short
    out["long_share"] = total_long / (total_long + total_short) if total_long + total_short > 0 else math.nan
    per_step = np.zeros(len(t))
    for t_ in ("book", "takeover"):
        for s_ in ("long", "short"):
            per_step = per_step + steps[f"liq.{t_}.{s_}.notional"].to_numpy()
    minute = (t // 60).astype(np.int64)
    if len(minute) and per_step.max() > 0:  # no liquidation: no peak minute
        by_min = np.bincount(minute, per_step)
        out["peak_minute_s"] = float(np.argmax(by_min) * 60)
        out["peak_minute_notional"] = float(by_min.max())
    ev = events
    kind = ev["kind"].to_numpy() if len(ev) else np.zeros(0, np.int16)
    out["adl_count"] = int((kind == Ev.ADL_CLOSE).sum())
    out["adl_notional"] = liq["adl.long"] + liq["adl.short"]
    trig = ev.filter(pl.col("kind") == int(Ev.ADL_TRIGGER)) if len(ev) else ev
    out["adl_triggers"] = len(trig)
    out["adl_triggers_fund_short"] = int((trig["pnl"] < trig["amount"]).sum()) if len(trig) else 0
    out["adl_trigger_reasons"] = sorted({Why(int(x)).name for x in trig["reason"].to_list()}) if len(trig) else []
    funds = [c for c in steps.columns if c.startswith("fund.")]
    fund_total = np.zeros(len(t))
    for c in funds:
        fund_total = fund_total + steps[c].to_numpy()
    out["fund_start"] = float(fund_total[0]) if len(fund_total) else math.nan
    out["fund_min"] = float(fund_total.min()) if len(fund_total) else math.nan
    out["fund_end"] = float(fund_total[-1]) if len(fund_total) else math.nan
    # what the funds paid out (losses covered) and took in (liquidation surpluses, clearance fees), whatever their balance did
    for key, ev_kind in (("fund_paid", Ev.FUND_OUT), ("fund_received", Ev.FUND_IN)):
        out[key] = float(ev.filter(pl.col("kind") == int(ev_kind))["amount"].sum()) / MONEY_SCALE if len(ev) else 0.0
    out["bad_debt"] = float(steps["bad_debt"].to_numpy()[-1]) if len(t) else 0.0
    out["accounts_liquidated"] = int(steps["liquidated"].to_numpy()[-1]) if len(t) else 0
    out["accounts_bankrupt"] = int(steps["bankrupt"].to_numpy()[-1]) if len(t) else 0
    out["backlog_peak"] = float(steps["backlog"].to_numpy().max()) if len(t) else 0.0
    out["backlog_s"] = _backlog_duration(t, steps["backlog"].to_numpy(), float(info["end_s"]))
    # collateral token: internal price vs its redemption value
    token = info["token"]
    if f"{token}.last" in steps.columns:
        last = steps[f"{token}.last"].to_numpy()
        mid = steps[f"{token}.mid"].to_numpy()
        low = np.nanmin(np.fmin(last[after], mid[after])) if after.any() else math.nan
        out["token_internal_low"] = float(low)
        out["token_redemption_low"] = float(np.nanmin(steps[f"{token}.external"].to_numpy()[after])) if after.any() else math.nan
    # hedges broken by ADL, then the other leg liquidated
    out["hedges_broken"] = _hedges_broken(ev)
    lev = info.get("liquidated_low_leverage")
    out["liquidated_below_2x"] = int(lev) if lev is not None else 0
    return out


def removed_by(drop: np.ndarray, cancelled: np.ndarray, traded: np.ndarray) -> tuple[float, float]:
    """(by cancels, by trades): the depth that left over some steps, each step's ``drop`` split between the two.

    Per step only the depth that left counts, net of what came back in the same step. A cancel
    whose order is replaced (a requote) removes no depth, so cancels count only for the drop that
    trades do not explain; a trade against depth that is posted again (an arbitrageur's resting
    bid, hit and re-posted) removes no more than the drop, so trades count at most the drop. A
    step whose depth rises removes nothing.
    """
    d = np.asarray(drop, np.float64)
    t = np.asarray(traded, np.float64)
    return float(np.clip(d - t, 0.0, cancelled).sum()), float(np.clip(d, 0.0, t).sum())


def _fall(rel: np.ndarray, end: int) -> tuple[int, int]:
    """(i0, i1): the last sample at >= 50% before ``end`` and the first at <= 10% after it (within ``end``).

    The steps whose depth changes make up the fall of a collapse found on the smoothed series
    that ends at sample ``end - 1``. With no such samples (NaN readings) the whole span is used.
    """
    r = np.asarray(rel[:end], np.float64)
    high = np.flatnonzero(r >= 0.5)
    i0 = int(high[-1]) if len(high) else 0
    low = np.flatnonzero(r[i0:] <= 0.1)
    i1 = i0 + int(low[0]) if len(low) else max(i0, end - 1)
    return i0, i1


def _cliff(t: np.ndarray, rel: np.ndarray, news: float) -> tuple[float, float, float]:
    """(duration, start, end) of the first collapse after the news: from >= 50% to <= 10% of the pre-news depth.

    The duration runs from the last reading at >= 50% to the first at <= 10%. Only a collapse
    counts: after the fall the depth stays below 50% for ``CLIFF_HOLD_S`` (a fall later than that
    before the end of the run cannot show it, and does not count). A sweep that empties the band
    for a moment and is quoted back within seconds is not the cliff (on the day the depth stayed
    down for some twenty minutes). The first collapse, not the fastest of the run: a quick fall
    long after the crash does not stand in for a slow erosion during it.
    """
    best = (math.inf, math.nan, math.nan)
    if len(t) != len(rel):
        raise ValueError(f"_cliff: {len(t)} times but {len(rel)} depths")
    if not len(t) or math.isnan(news):
        return best
    end = float(t[-1])
    # the time depth is next back at >= 50% (NaN is no reading; +inf, from an empty pre-news book, is high), per sample
    next_high = np.full(len(t), math.inf)
    upcoming = math.inf
    for i in range(len(t) - 1, -1, -1):
        if not math.isnan(rel[i]) and rel[i] >= 0.5:
            upcoming = float(t[i])
        next_high[i] = upcoming
    last_high = -math.inf
    for i, (ti, r) in enumerate(zip(t.tolist(), rel.tolist(), strict=True)):
        if ti < news or math.isnan(r):
            continue
        if r >= 0.5:
            last_high = ti
        elif (
            r <= 0.1
            and last_high > -math.inf
            # held below half for the hold: a fall too close to the end of the run to show that is not counted
            and next_high[i] - ti >= CLIFF_HOLD_S
            and end - ti >= CLIFF_HOLD_S
        ):
            return (ti - last_high, last_high, ti)
    return best


def _makers_return(seconds: pl.DataFrame, tracked: str, trough_s: float) -> float:
    """First time after the trough when most makers on the tracked book quote again, having withdrawn."""
    cols = [c for c in seconds.columns if c.startswith(f"maker:{tracked}:") and c.endswith(".state")]
    if not cols or not math.isfinite(trough_s):
        return math.nan
    st = np.stack([seconds[c].to_numpy() for c in cols], axis=1)
    ts = seconds["t_s"].to_numpy()
    withdrawn = st == 2
    ever = np.maximum.accumulate(withdrawn.any(axis=1))
    quoting = (~withdrawn).sum(axis=1) > len(cols) / 2
    ok = (ts >= trough_s) & ever & quoting
    return float(ts[ok][0]) if ok.any() else math.nan


def _backlog_duration(t: np.ndarray, backlog: np.ndarray, end_s: float) -> float:
    """From the first step with a backlog to when it is cleared (below 1% of its peak) for good; to the end if never."""
    if not len(backlog) or backlog.max() <= 0:
        return 0.0
    start = int(np.flatnonzero(backlog > 0)[0])
    peak = backlog.max()
    above = np.flatnonzero(backlog > 0.01 * peak)
    last = int(above[-1])
    end = float(t[last + 1]) if last + 1 < len(t) else end_s
    return end - float(t[start])


def _hedges_broken(ev: pl.DataFrame) -> int:
    """Accounts whose position was closed by ADL and which were liquidated afterwards on another instrument."""
    if not len(ev):
        return 0
    adl = (
        ev.filter(pl.col("kind") == int(Ev.ADL_CLOSE))
        .group_by("account")
        .agg(pl.col("ts").min().alias("t_adl"), pl.col("instrument").first().alias("k_adl"))
    )
    if not len(adl):
        return 0
    liq = ev.filter(pl.col("kind").is_in([int(Ev.LIQUIDATION_ORDER), int(Ev.TAKEOVER)]))
    j = liq.join(adl, on="account").filter((pl.col("ts") > pl.col("t_adl")) & (pl.col("instrument") != pl.col("k_adl")))
    return int(j["account"].n_unique())


def headline(frames: dict[str, pl.DataFrame], scenario: object, built: object) -> dict[str, Any]:
    """The summary's headline metrics (and the facts the check reads)."""
    info = run_info(scenario, built)
    f = facts(frames["steps"], frames["seconds"], frames["events"], info)
    f["info"] = info
    return _plain(f)


def run_info(scenario: object, built: object) -> dict[str, Any]:
    """Facts of the run the check needs besides the tables."""
    s = scenario
    b = built
    v = b.venue  # type: ignore[attr-defined]
    symbols = list(v.market_data.symbols)
    return {
        "news_s": b.news_ns / 1e9,  # type: ignore[attr-defined]
        "end_s": s.run.duration_s,  # type: ignore[attr-defined]
        "start_label": s.run.start_label,  # type: ignore[attr-defined]
        "tracked": s.check.tracked,  # type: ignore[attr-defined]
        "majors": list(s.check.majors),  # type: ignore[attr-defined]
        "altcoins": list(s.check.altcoins),  # type: ignore[attr-defined]
        "token": s.check.token,  # type: ignore[attr-defined]
        "token_priced_from_book": any(c.source in ("book", "blend") and c.book == s.check.token for c in s.collateral.values()),  # type: ignore[attr-defined]
        "perps": symbols[: v.n_perps],
        "spots": symbols[v.n_perps :],
        "liquidated_low_leverage": getattr(b, "liquidated_low_leverage", None),
        "profile": s.venue.profile,  # type: ignore[attr-defined]
    }


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    return x


def targets(h: dict[str, Any]) -> list[Target]:
    """The event's targets, evaluated on a run's headline facts."""
    info = h["info"]

    def num(key: str) -> float:
        v = h.get(key)
        return math.nan if v is None else float(v)

    def fmt(x: float, pct: bool = True) -> str:
        return "n/a" if not math.isfinite(x) else (f"{100 * x:.1f}%" if pct else f"{x:,.0f}")

    out = []
    trough = num("depth_trough_ratio")
    name = f"±1% depth trough of {info['tracked']} (share of the pre-news level, one-second median)"
    out.append(Target(name, fmt(trough), "<= 5%", math.isfinite(trough) and trough <= 0.05))
    cliff = num("cliff_s")
    after_news = (num("cliff_end_s") - num("news_s")) / 60
    cliff_s = "n/a" if not math.isfinite(cliff) else f"{cliff:.1f} s, down {after_news:.1f} min after the news"
    out.append(Target("cliff: the first collapse after the news, depth from >= 50% to <= 10% of its pre-news level "
                      "(then < 50% for 60 s)", cliff_s,
                      "<= 60 s", math.isfinite(cliff) and cliff <= WINDOW_CLIFF_S))  # fmt: skip
    share = num("cliff_cancel_share")
    name = "depth removed in the cliff by cancels, not trades (net of requotes and re-posts)"
    out.append(Target(name, fmt(share), ">= 75%", math.isfinite(share) and share >= 0.75))
    rec = num("recovery_s")
    out.append(Target("depth back to >= 90% after the makers' return", "n/a" if not math.isfinite(rec) else f"{rec / 60:.1f} min",
                      "<= 45 min", math.isfinite(rec) and rec <= RECOVERY_S))  # fmt: skip
    di, de = h["drawdown_internal"], h["drawdown_external"]
    alts = [a for a in info["altcoins"] if a in di]
    worst = max(alts, key=lambda a: di[a] or 0.0) if alts else None
    alt_low = (di.get(worst) or math.nan) if worst else math.nan
    btc = max((di.get(m) or 0.0) for m in info["majors"]) if info["majors"] else math.nan
    ext = max((de.get(a) or 0.0) for a in alts) if alts else math.nan
    # one target (the event's shape): an altcoin crashes on the venue's book while BTC and the outside index fall less
    alt_ok = math.isfinite(alt_low) and alt_low >= 0.70
    out.append(Target(f"altcoin internal low ({worst}), while BTC's internal low and the external altcoin index's",
                      f"{fmt(alt_low)}; BTC {fmt(btc)}; external {fmt(ext)}", ">= 70%; BTC < 20%; external < 45%",
                      alt_ok and 0 < btc < 0.20 and 0 < ext < 0.45))  # fmt: skip
    oi = num("oi_drop")
    out.append(Target("open interest down from its pre-news level", fmt(oi), "35% - 65%", 0.35 <= oi <= 0.65))
    ls = num("long_share")
    out.append(Target("share of liquidated notional that was long", fmt(ls), ">= 80%", math.isfinite(ls) and ls >= 0.8))
    # each target passes on what its value and band show, nothing hidden
    low, red = num("token_internal_low"), num("token_redemption_low")
    book = bool(info.get("token_priced_from_book", False))
    low_s = "n/a" if not math.isfinite(low) else f"{low:.4f}"
    red_s = "n/a" if not math.isfinite(red) else f"{red:.4f}"
    low_ok = book and math.isfinite(low) and low <= 0.75
    out.append(Target(f"{info['token']} internal low, as collateral priced from its book",
                      f"{low_s} ({'priced from its book' if book else 'not priced from its book'})",
                      "<= 0.75, priced from its book", low_ok))  # fmt: skip
    out.append(Target(f"{info['token']} depeg on the venue only: internal low while its redemption value held",
                      f"internal {low_s}, redemption {red_s}", "internal <= 0.75 (book-priced), redemption >= 0.99",
                      low_ok and math.isfinite(red) and red >= 0.99))  # fmt: skip
    n2 = int(h.get("liquidated_below_2x") or 0)
    out.append(Target("liquidated accounts with effective leverage < 2x", str(n2), ">= 1", n2 >= 1))
    hb = int(h.get("hedges_broken") or 0)
    out.append(Target("hedges broken by ADL, then the other leg liquidated", str(hb), ">= 1", hb >= 1))
    trig, short = int(h.get("adl_triggers") or 0), int(h.get("adl_triggers_fund_short") or 0)
    # the venue's trigger rule, shown with the count: "insufficient" (the fund cannot cover), "drawdown" (it would fall
    # below its drawdown floor, OKX), "negative_equity" (the account's value is negative, Hyperliquid)
    why = ", ".join(r.removeprefix("TRIGGER_").lower() for r in h.get("adl_trigger_reasons") or [])
    value = f"{short}/{trig} triggers" + (f" ({why})" if why else "")
    out.append(Target("ADL only after the insurance fund could not cover", value, "all, and >= 1", trig >= 1 and short == trig))
    bl = num("backlog_s")
    bl_s = "n/a" if not math.isfinite(bl) else f"{bl / 60:.1f} min"
    out.append(Target("liquidator's backlog: time to clear", bl_s, ">= 30 min",
                      math.isfinite(bl) and bl >= BACKLOG_MIN_S))  # fmt: skip
    return out


__all__ = ["Target", "facts", "headline", "removed_by", "run_info", "targets"]
