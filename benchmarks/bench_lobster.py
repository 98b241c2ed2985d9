"""LOBSTER replay throughput on the AMZN full-day sample (level 1, 57,515 messages).

Each message is applied to the book and the resulting book is compared with the
orderbook row, so the figure covers replay plus verification. Prints, never asserts.
"""

from __future__ import annotations

from pathlib import Path

from cascadelab.io.lobster import replay

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "lobster"
PAIRS = [
    (
        "AMZN",
        SHARED / "AMZN_2012-06-21_34200000_57600000_message_1.csv",
        SHARED / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv",
    ),
]


def run(repeats: int = 5) -> None:
    """Replay each available sample ``repeats`` times and print the best throughput."""
    for name, msg, ob in PAIRS:
        if not msg.exists():
            print(f"lobster {name}: skipped ({msg} not present)")
            continue
        reports = [replay(msg, ob) for _ in range(repeats)]
        best = min(reports, key=lambda r: r.seconds)
        print(
            f"lobster {name}: {best.messages:,} messages, {best.rows_matched:,}/{best.rows_compared:,} rows matched, "
            f"{best.seconds:.3f} s -> {best.messages_per_second:,.0f} messages/s (replay + row check)"
        )


if __name__ == "__main__":
    run()
