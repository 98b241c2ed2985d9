"""The check's cliff: a collapse of the depth, not a sweep that is quoted back within a second."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cascadelab.record.summary import CLIFF_HOLD_S, _cliff, _drawdown, _fall, _smooth_steps, removed_by


def _series(points: list[tuple[float, float]], end: float, dt: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Depth (share of the pre-news level) on a 100 ms grid, stepping to each (time, level) in turn."""
    t = np.arange(0.0, end, dt)
    rel = np.ones(len(t))
    for at, level in points:
        rel[t >= at] = level
    return t, rel


def test_a_collapse_that_holds_is_the_cliff() -> None:
    t, rel = _series([(100.0, 0.6), (130.0, 0.05)], 400.0)
    dur, start, end = _cliff(t, rel, news=50.0)
    assert math.isclose(start, 129.9) and math.isclose(end, 130.0) and math.isclose(dur, 0.1, abs_tol=1e-9)


def test_a_sweep_quoted_back_at_once_is_not_a_cliff() -> None:
    t, rel = _series([(100.0, 0.0), (100.7, 1.0)], 400.0)
    assert math.isinf(_cliff(t, rel, news=50.0)[0])
    # back above half only after the hold: a cliff
    t, rel = _series([(100.0, 0.0), (100.0 + CLIFF_HOLD_S + 1, 1.0)], 400.0)
    assert math.isclose(_cliff(t, rel, news=50.0)[1], 99.9)


def test_the_first_collapse_after_the_news_is_the_cliff_and_the_last_minute_cannot_show_one() -> None:
    # a slow erosion (40 s from 100% to 40%, then to 8% at 140 s) and, long after, a fast fall
    points = [(20.0, 0.0), (30.0, 1.0), (100.0, 0.4), (140.0, 0.08), (300.0, 1.0), (350.0, 0.3), (352.0, 0.0)]
    t, rel = _series(points, 420.0)
    dur, start, end = _cliff(t, rel, news=50.0)  # the fall at 20 s is before the news
    # the first collapse: from the last >= 50% sample (99.9 s) to <= 10% (140 s): 40 s, not the later 2-second fall
    assert math.isclose(start, 99.9) and math.isclose(end, 140.0) and math.isclose(dur, 40.1, abs_tol=1e-9)
    # a first collapse that is quoted back within the hold does not count; the next one is the cliff
    t, rel = _series([(100.0, 0.05), (110.0, 1.0), (350.0, 0.3), (352.0, 0.0)], 420.0)
    assert math.isclose(_cliff(t, rel, news=50.0)[1], 349.9)
    t, rel = _series([(100.0, 0.05), (110.0, 1.0), (350.0, 0.3), (352.0, 0.0)], 400.0)  # ends 48 s after it: no cliff
    assert math.isinf(_cliff(t, rel, news=50.0)[0])


def test_bad_inputs() -> None:
    t, rel = _series([(100.0, 0.0)], 400.0)
    assert math.isinf(_cliff(t, rel, news=math.nan)[0])
    assert math.isinf(_cliff(t[:0], rel[:0], news=0.0)[0])
    with pytest.raises(ValueError, match="times but"):
        _cliff(t, rel[:-1], news=0.0)


def test_depth_removed_by_cancels_and_by_trades_is_net_of_what_comes_back() -> None:
    # a requote (cancel 1,500 replaced at once): nothing left; a sweep among requotes: the drop is the trades'
    assert removed_by(np.array([0.0]), np.array([1_500.0]), np.array([0.0])) == (0.0, 0.0)
    assert removed_by(np.array([400.0]), np.array([1_500.0]), np.array([500.0])) == (0.0, 400.0)
    # a mass cancel: the drop is the cancels'; a step where depth rises removes nothing
    assert removed_by(np.array([1_500.0, -300.0]), np.array([1_700.0, 900.0]), np.array([0.0, 50.0])) == (1_500.0, 0.0)
    # a resting bid hit (277 traded, depth down 117), posted again, hit again: trades count only what left each time
    drop, cancelled, traded = np.array([117.0, -117.0, 56.0]), np.zeros(3), np.array([277.0, 0.0, 137.0])
    assert removed_by(drop, cancelled, traded) == (0.0, 173.0)
    # both at once: trades explain their part of the drop first, cancels the rest (at most what they removed)
    assert removed_by(np.array([1_000.0]), np.array([2_000.0]), np.array([300.0])) == (700.0, 300.0)


def test_the_fall_is_read_on_the_steps_own_depth() -> None:
    # a mass cancel leaves a thin resting floor (16%) that is hit and re-posted before the book empties: the fall is
    # from the last step at >= 50% to the first at <= 10%, not the later flicker the one-second median waits out
    rel = np.array([0.9, 0.8, 0.7, 0.16, 0.02, 0.16, 0.05, 0.0, 0.0, 0.0, 0.6])
    assert _fall(rel, 10) == (2, 4)
    # a transient dip before a rebound is not the fall: it starts after the last reading at >= 50%
    rel = np.array([0.9, 0.05, 0.8, 0.6, 0.3, 0.08, 0.0])
    assert _fall(rel, 7) == (3, 5)
    # no reading at >= 50% before (or none at <= 10% after): the span up to the end
    assert _fall(np.array([0.4, 0.3, 0.2]), 3) == (0, 2)


def test_the_depth_median_spans_one_second_whatever_the_step_and_a_drawdown_is_never_negative() -> None:
    for step_s, n in ((0.1, 11), (0.25, 5), (1.0, 3), (0.007, 145)):
        assert _smooth_steps(np.arange(50) * step_s) == n
    assert _smooth_steps(np.zeros(1)) == 1
    assert _drawdown(np.array([101.0, 102.0]), 100.0) == 0.0
    assert _drawdown(np.array([np.nan, 80.0]), 100.0) == pytest.approx(0.2)
    assert math.isnan(_drawdown(np.array([np.nan]), 100.0)) and math.isnan(_drawdown(np.array([90.0]), 0.0))
