"""Run every benchmark and print its figures (``make bench``). Nothing here asserts."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import bench_book
import bench_liquidation
import bench_lobster
import bench_margin
import bench_sim
import bench_threads
import bench_venue

if __name__ == "__main__":
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    bench_lobster.run()
    bench_book.run()
    bench_venue.run()
    bench_margin.run()
    bench_liquidation.run()
    bench_threads.run()
    bench_sim.run()
