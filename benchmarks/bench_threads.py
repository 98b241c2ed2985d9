"""Threads that don't stall: a parallel kernel's cost with the other core idle and with it busy.

Each threading set-up runs in a fresh process (the OpenMP wait policy is read once, when the
threads start): the full margin scan of 200,000 accounts (``ClearingHouse.scan``, a parallel
kernel) is timed 60 times with the machine otherwise idle, then 60 times while another
process spins on a core. cascadelab's choice (passive waiting, set in ``cascadelab/__init__``)
is printed beside OpenMP's default wait and Numba's workqueue layer. Prints, never asserts.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

SETUPS: dict[str, dict[str, str | None]] = {
    "cascadelab's choice: OpenMP, OMP_WAIT_POLICY=PASSIVE, KMP_BLOCKTIME=0": {
        "NUMBA_THREADING_LAYER": "omp",
        "OMP_WAIT_POLICY": "PASSIVE",
        "KMP_BLOCKTIME": "0",
    },
    "OpenMP with its default wait policy": {"NUMBA_THREADING_LAYER": "omp", "OMP_WAIT_POLICY": None, "KMP_BLOCKTIME": None},
    "Numba's workqueue layer": {"NUMBA_THREADING_LAYER": "workqueue"},
}

CHILD = """
import json, sys, time
import numba
import numpy as np
sys.path.insert(0, {bench!r})
import bench_margin
ch = bench_margin.build(200_000)
few = np.arange(0, 200_000, 100, dtype=np.int64)
calls = {{"scan": ch.scan, "small": lambda: ch.exact_margins(few)}}
for f in calls.values():
    f()
def median_ms(f):
    ts = []
    for _ in range(150):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
        time.sleep(0.001)  # the worker threads go idle between calls, as between simulation steps
    return [float(np.median(ts)) * 1e3, float(np.percentile(ts, 90)) * 1e3]
out = {{f"idle_{{k}}": median_ms(f) for k, f in calls.items()}}
numba.set_num_threads(1)
out.update({{f"one_{{k}}": median_ms(f) for k, f in calls.items()}})
numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
print(json.dumps(out), flush=True)
sys.stdin.readline()  # the parent starts the busy loop
out = {{f"busy_{{k}}": median_ms(f) for k, f in calls.items()}}
out["layer"] = numba.threading_layer()
print(json.dumps(out), flush=True)
"""


def _spin(stop: mp.synchronize.Event) -> None:
    while not stop.is_set():
        pass


def measure(env_extra: dict[str, str | None]) -> dict:
    """Idle and busy medians (ms) of the scan under one threading set-up, in a fresh process."""
    env = dict(os.environ)
    for key, value in env_extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    code = CHILD.format(bench=str(Path(__file__).parent))
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None and child.stdout is not None
    out = json.loads(child.stdout.readline())
    stop = mp.Event()
    spinner = mp.Process(target=_spin, args=(stop,))
    spinner.start()
    time.sleep(0.2)
    child.stdin.write("go\n")
    child.stdin.flush()
    out.update(json.loads(child.stdout.readline()))
    stop.set()
    spinner.join()
    child.wait()
    return out


def run() -> dict[str, dict]:
    """Print each set-up's idle and busy cost of one parallel kernel call."""
    results = {}
    for label, env in SETUPS.items():
        r = measure(env)
        results[label] = r
        print(f"threads, {label} [{r['layer']}]:")
        for key, what in (("scan", "full margin scan, 200,000 accounts"), ("small", "exact margins of 2,000 accounts")):
            idle, busy, one = (r[f"{x}_{key}"] for x in ("idle", "busy", "one"))
            print(
                f"  {what} (median / 90th percentile): {idle[0]:.3f} / {idle[1]:.3f} ms with the other core idle, "
                f"{busy[0]:.3f} / {busy[1]:.3f} ms with it busy; reference, one thread alone: {one[0]:.3f} ms "
                f"-> busy = {busy[0] / one[0]:.2f}x one thread"
            )
    return results


if __name__ == "__main__":
    run()
