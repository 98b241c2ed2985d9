"""cascadelab: a simulator of crypto derivatives exchanges under stress.

Threads: compiled parallel kernels (the margin scan, the incremental risk rebuild) run on
Numba's OpenMP layer with ``OMP_WAIT_POLICY=PASSIVE`` set here, before any kernel starts its
threads, unless the environment already chooses. With OpenMP's default active wait, a
kernel call costs about four times as much whenever another process keeps the other core
busy (its threads spin for the core instead of sleeping); passive waiting makes the cost the
same either way. ``make bench`` measures it (benchmarks/bench_threads.py).
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("KMP_BLOCKTIME", "0")

__version__ = "0.1.0"
