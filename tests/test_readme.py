"""The README's Python example runs as printed and does what its text says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

from cascadelab.records import LIQ_EVENT, Ev, Why, frame

README = Path(__file__).parent.parent / "README.md"


def test_readme_example_runs_and_liquidates_the_trader() -> None:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "build(" in b]
    assert blocks, "README has no python example"
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(blocks[0], "README.md", "exec"), scope)
    events = scope["report"].events
    assert Ev.LIQUIDATION_START in events["kind"] and Ev.TAKEOVER in events["kind"]
    assert "LIQUIDATION_START" in out.getvalue()


def test_readme_notebook_example_runs_a_small_replay() -> None:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "cascadelab.run(" in b]
    assert blocks, "README has no cascadelab.run example"
    scope: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(blocks[0], "README.md", "exec"), scope)
    r = scope["r"]
    assert r.summary["ledger_check"]["passed"] and r.summary["accounts"] > 5_000
    assert len(r.steps) > 4_000 and r.summary["event_hash"] in out.getvalue()


def test_frame_labels_name_the_codes() -> None:
    ev = np.zeros(2, LIQ_EVENT)
    ev["kind"] = [Ev.TAKEOVER, Ev.ADL_CLOSE]
    ev["reason"] = [Why.BACKSTOP, Why.NONE]
    df = frame(ev, labels=True)
    assert df["kind"].to_list() == ["TAKEOVER", "ADL_CLOSE"]
    assert df["reason"].to_list() == ["BACKSTOP", "NONE"]
    assert frame(ev)["kind"].to_list() == [7, 13]
