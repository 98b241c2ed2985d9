"""The check's cliff: a collapse of the depth, not a sweep that is quoted back within a second."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cascadelab.record.summary import CLIFF_HOLD_S, _cliff


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
