"""The step loop's and the recorder's compiled passes against the array code they replace, on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from cascadelab.agents.base import WATCH_EXTERNAL, WATCH_MARK, WATCH_VENUE
from cascadelab.record.recorder import _heat_add, _oi_change, _removed_near
from cascadelab.records import ACCOUNT_ACK, ACK, CANCEL, FILL, LIQ_EVENT
from cascadelab.sim.loop import _bands_left, _field_bytes, _hash_dtype, _watch_table

RNG = np.random.default_rng(2024)


@pytest.mark.parametrize("dt", [ACK, ACCOUNT_ACK, FILL, CANCEL, LIQ_EVENT])
def test_the_hash_reads_the_same_bytes_as_the_packed_little_endian_copy(dt: np.dtype) -> None:
    arr = np.frombuffer(RNG.integers(0, 256, 37 * dt.itemsize, dtype=np.uint8).tobytes(), dt).copy()
    cols = _field_bytes(dt)
    assert cols is not None  # this machine is little-endian with native fields
    raw = arr.view(np.uint8).reshape(len(arr), dt.itemsize)
    assert raw.take(cols, axis=1).tobytes() == np.ascontiguousarray(arr, _hash_dtype(dt)).tobytes()


def test_removed_near_the_mid_equals_the_bincount_it_replaces() -> None:
    for _ in range(200):
        nb, n = int(RNG.integers(1, 5)), int(RNG.integers(0, 60))
        pb = RNG.integers(0, 3, nb) * RNG.integers(990, 1000, nb)  # 0: an empty side
        pa = np.where(pb > 0, pb + RNG.integers(1, 20, nb), RNG.integers(0, 1010, nb))
        inst = RNG.integers(0, nb, n).astype(np.int16)
        price = RNG.integers(950, 1050, n).astype(np.int64)
        qty = RNG.integers(1, 10**6, n).astype(np.int64)
        out = np.full(nb, np.nan)
        _removed_near(inst, price, qty, pb, pa, out)
        b = inst.astype(np.int64)
        mid2 = pb[b] + pa[b]
        near = (pb[b] > 0) & (pa[b] > 0) & (np.abs(200 * price - mid2 * 100) <= mid2)
        expected = np.bincount(b[near], (price * qty)[near], minlength=nb)[:nb]
        assert out.tolist() == expected.tolist()


def test_open_interest_change_equals_a_recount_before_and_after_the_fills() -> None:
    k_n, n = 3, 40
    seen, delta = np.full((k_n, n), -1, np.int64), np.zeros((k_n, n), np.int64)
    for stamp in range(200):
        before = RNG.integers(-5, 6, (k_n, n)).astype(np.int64)
        m = int(RNG.integers(0, 30))
        inst = RNG.integers(0, k_n + 2, m).astype(np.int16)  # k_n and above: spot books, not counted
        maker, taker = RNG.integers(0, n, m).astype(np.int64), RNG.integers(0, n, m).astype(np.int64)
        aggressor = RNG.choice(np.array([-1, 1], np.int8), m)
        qty = RNG.integers(1, 4, m).astype(np.int64)
        after = before.copy()
        for i in range(m):
            if inst[i] < k_n:
                after[inst[i], taker[i]] += aggressor[i] * qty[i]
                after[inst[i], maker[i]] -= aggressor[i] * qty[i]
        oi = np.maximum(before, 0).sum(axis=1)
        keys = np.empty(4 * m, np.int64)
        assert _oi_change(inst, maker, taker, aggressor, qty, after, n, stamp, seen, delta, keys, oi)
        assert oi.tolist() == np.maximum(after, 0).sum(axis=1).tolist()
    bad = np.array([n], np.int64)
    assert not _oi_change(np.zeros(1, np.int16), bad, bad, np.ones(1, np.int8), bad, after, n, 999, seen, delta,
                          np.empty(4, np.int64), oi)  # fmt: skip


def test_heatmap_buckets_equal_the_add_at_they_replace() -> None:
    for _ in range(100):
        n = int(RNG.integers(0, 80))
        px = RNG.integers(1, 3000, n).astype(np.int64)
        qty = RNG.integers(1, 10**5, n).astype(np.int64)
        tick, lo, width, unit = 0.01, float(RNG.uniform(0, 20)), float(RNG.uniform(0.01, 0.3)), float(RNG.uniform(1e-3, 1))
        out = np.zeros(64, np.float32)
        _heat_add(px, qty, tick, lo, width, unit, out)
        k = np.floor((px * tick - lo) / width).astype(np.int64)
        ok = (k >= 0) & (k < 64)
        expected = np.zeros(64, np.float32)
        np.add.at(expected, k[ok], (px[ok] * qty[ok] * unit).astype(np.float32))
        assert out.tolist() == expected.tolist()


def test_band_test_wakes_exactly_the_agents_whose_price_left_its_band() -> None:
    for _ in range(200):
        nk, rows = 4, int(RNG.integers(0, 30))
        ref = np.where(RNG.random(nk) < 0.2, np.nan, RNG.uniform(90, 110, nk))
        ext = np.where(RNG.random(nk) < 0.2, np.nan, RNG.uniform(90, 110, nk))
        mark = np.where(RNG.random(nk) < 0.2, 0, RNG.integers(9_000, 11_000, nk)).astype(np.int64)
        tick = np.full(nk, 0.01)
        table = [(int(RNG.integers(0, 8)), int(RNG.integers(0, nk)), int(RNG.choice([WATCH_VENUE, WATCH_MARK, WATCH_EXTERNAL])),
                  float(RNG.uniform(85, 100)), float(RNG.uniform(100, 115))) for _ in range(rows)]  # fmt: skip
        woken = np.zeros(8, np.bool_)
        _bands_left(*_watch_table(table), ref, mark, tick, ext, woken)
        expected = np.zeros(8, np.bool_)
        mark_px = np.where(mark > 0, mark * tick, np.nan)
        for agent, k, source, low, high in table:
            price = ext[k] if source == WATCH_EXTERNAL else mark_px[k] if source == WATCH_MARK else ref[k]
            if not np.isnan(price) and (price < low or price > high):
                expected[agent] = True
        assert woken.tolist() == expected.tolist()
