"""The run's figures (PNG, matplotlib's Agg backend: no display, no network).

* ``depth.png``: bilateral ±1% depth of the tracked book over time (bids, asks);
* ``heatmap.png``: resting notional of the tracked book by price over time (the cliff);
* ``prices.png``: internal (last), mark and external prices of every perpetual, as a
  share of the pre-news level;
* ``liquidations.png``: liquidated notional per minute by tier (book, takeover, ADL);
* ``fund_backlog.png``: insurance fund(s) and the liquidator's backlog;
* ``collateral.png``: each collateral asset's price by valuation source;
* ``makers.png``: every market maker's state over time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

STATE_COLOURS = ["#2ca02c", "#ffbf00", "#d62728", "#1f77b4"]  # quoting, widening, withdrawn, returning


def _minutes(t_s: np.ndarray, news_s: float) -> np.ndarray:
    return (t_s - news_s) / 60.0


def draw_all(result: Any, folder: Path) -> list[Path]:
    """Draw every figure of ``result`` (a RunResult) into ``folder``; returns the files."""
    folder.mkdir(parents=True, exist_ok=True)
    h = result.summary["headline"]
    info = h["info"]
    steps, seconds = result.frames["steps"], result.frames["seconds"]
    news = float(info["news_s"])
    tracked = info["tracked"]
    t = _minutes(steps["t_s"].to_numpy(), news)
    ts = _minutes(seconds["t_s"].to_numpy(), news)
    out = []

    def save(fig: plt.Figure, name: str) -> None:
        path = folder / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        out.append(path)

    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(t, steps[f"{tracked}.depth_bid_1pct"].to_numpy() / 1e6, label="bids within 1% of mid", lw=0.8)
    ax.plot(t, steps[f"{tracked}.depth_ask_1pct"].to_numpy() / 1e6, label="asks within 1% of mid", lw=0.8)
    ax.set(title=f"{tracked}: bilateral ±1% depth", xlabel="minutes after the news", ylabel="notional (millions)")
    ax.legend()
    save(fig, "depth.png")

    bid = np.stack([seconds[f"heat_bid.{q}"].to_numpy() for q in range(_buckets(seconds))], axis=1)
    ask = np.stack([seconds[f"heat_ask.{q}"].to_numpy() for q in range(_buckets(seconds))], axis=1)
    fig, ax = plt.subplots(figsize=(10, 5))
    img = np.log10(1.0 + bid + ask).T
    ax.imshow(
        img, aspect="auto", origin="lower", extent=(ts[0] if len(ts) else 0, ts[-1] if len(ts) else 1, -20, 20), cmap="magma"
    )
    ax.set(title=f"{tracked}: resting notional by price (log scale)", xlabel="minutes after the news",
           ylabel="price vs the first price seen (%)")  # fmt: skip
    save(fig, "heatmap.png")

    perps = info["perps"]
    fig, axes = plt.subplots(len(perps), 1, figsize=(10, 2.2 * len(perps)), sharex=True, squeeze=False)
    for ax, sym in zip(axes[:, 0], perps, strict=True):
        ext = steps[f"{sym}.external"].to_numpy()
        pre = np.nanmedian(ext[t < 0]) if (t < 0).any() else np.nanmedian(ext)
        for col, lab, lw in (("last", "internal (last trade)", 0.6), ("mark", "mark", 0.8), ("external", "external index", 1.0)):
            ax.plot(t, steps[f"{sym}.{col}"].to_numpy() / pre, label=lab, lw=lw)
        ax.set_ylabel(sym)
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("minutes after the news")
    fig.suptitle("internal vs mark vs external prices (share of the pre-news index)")
    save(fig, "prices.png")

    fig, ax = plt.subplots(figsize=(10, 4))
    minute = np.floor(t).astype(np.int64)
    base = minute.min() if len(minute) else 0
    bottom = None
    for tier, colour in (("book", "#1f77b4"), ("takeover", "#ff7f0e"), ("adl", "#d62728")):
        per = sum(steps[f"liq.{tier}.{s}.notional"].to_numpy() for s in ("long", "short"))
        y = np.bincount(minute - base, per) / 1e6
        x = np.arange(len(y)) + base
        ax.bar(x, y, bottom=bottom, label=tier, color=colour, width=0.9)
        bottom = y if bottom is None else bottom + y
    ax.set(title="liquidated notional per minute by tier", xlabel="minutes after the news", ylabel="millions")
    ax.legend()
    save(fig, "liquidations.png")

    fig, ax1 = plt.subplots(figsize=(10, 4))
    for c in [c for c in steps.columns if c.startswith("fund.")]:
        ax1.plot(t, steps[c].to_numpy() / 1e6, label=f"insurance {c}")
    ax1.set(xlabel="minutes after the news", ylabel="fund (millions)")
    ax2 = ax1.twinx()
    ax2.plot(t, steps["backlog"].to_numpy() / 1e6, color="black", lw=0.8, label="liquidator backlog")
    ax2.set_ylabel("backlog (millions)")
    ax1.legend(loc="upper left")
    ax2.legend(loc="upper right")
    ax1.set_title("insurance fund and the liquidator's backlog")
    save(fig, "fund_backlog.png")

    assets = sorted({c.split(".")[0] for c in seconds.columns if c.endswith(".price_venue")})
    fig, axes = plt.subplots(len(assets), 1, figsize=(10, 1.8 * len(assets)), sharex=True, squeeze=False)
    for ax, a in zip(axes[:, 0], assets, strict=True):
        for src in ("venue", "book", "external"):
            y = seconds[f"{a}.price_{src}"].to_numpy()
            if np.isfinite(y).any():
                ax.plot(ts, y, label=src, lw=0.8)
        ax.set_ylabel(a)
    axes[0, 0].legend(fontsize=7)
    axes[-1, 0].set_xlabel("minutes after the news")
    fig.suptitle("collateral prices by valuation source (venue = what margin uses)")
    save(fig, "collateral.png")

    cols = [c for c in seconds.columns if c.startswith("maker:") and c.endswith(".state")]
    if cols:
        st = np.stack([seconds[c].to_numpy() for c in cols], axis=0)
        fig, ax = plt.subplots(figsize=(10, 0.25 * len(cols) + 1.5))
        ax.imshow(st, aspect="auto", cmap=ListedColormap(STATE_COLOURS), vmin=-0.5, vmax=3.5, interpolation="nearest",
                  extent=(ts[0], ts[-1], len(cols) - 0.5, -0.5))  # fmt: skip
        ax.set_yticks(range(len(cols)), [c.removesuffix(".state").removeprefix("maker:") for c in cols], fontsize=6)
        ax.set(title="market makers: quoting (green), widening (amber), withdrawn (red), returning (blue)",
               xlabel="minutes after the news")  # fmt: skip
        save(fig, "makers.png")
    return out


def _buckets(seconds: Any) -> int:
    return sum(1 for c in seconds.columns if c.startswith("heat_bid."))


__all__ = ["draw_all"]
