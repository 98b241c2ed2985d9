"""cascadelab: a simulator of crypto derivatives exchanges under stress.

Threads: compiled parallel kernels (the margin scan, exact margins of many accounts, the
incremental risk rebuild) run on Numba's OpenMP layer with ``OMP_WAIT_POLICY=PASSIVE`` and
``KMP_BLOCKTIME=0`` set here, before any kernel starts its threads, unless the environment
already chooses. Idle worker threads then sleep at once instead of spinning, so they never
take a core from the simulation's own thread or a neighbour, and a woken worker does not
wait behind a spinning one. ``make bench`` (benchmarks/bench_threads.py) times two kernels
with the other core idle and busy under this set-up, OpenMP's default wait and Numba's
workqueue layer: under this set-up a short kernel costs the same either way, and a long
one costs, with the other core busy, what one thread alone costs (no time lost waiting).
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("KMP_BLOCKTIME", "0")

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``cascadelab.run`` and ``cascadelab.RunResult``, imported on first use (the package import stays light)."""
    if name in ("run", "RunResult"):
        from cascadelab import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'cascadelab' has no attribute {name!r}")


__all__ = ["RunResult", "__version__", "run"]
