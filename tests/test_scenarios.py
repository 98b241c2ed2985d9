"""Scenario files: validation with errors that name the file and the key path, overrides, extends, show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cascadelab.scenario.load import ScenarioError, builtin_names, load, to_toml


def test_builtins_load_and_show_round_trips(tmp_path: Path) -> None:
    assert {"oct-11", "calm"} <= set(builtin_names())
    for name in builtin_names():
        s = load(name)
        p = tmp_path / f"{name}.toml"
        p.write_text(to_toml(s))
        assert load(str(p)) == s  # the printed scenario is complete: loading it gives the same scenario
    calm = load("calm")
    flat = all(len(p.knots) == 1 for p in calm.world.paths.values() if p.of is None and p.start is None)
    assert calm.world.news == [] and flat
    oct11 = load("oct-11")
    assert calm.makers == oct11.makers and calm.population == oct11.population  # the same participants


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["venue.profile=foo"], "venue.profile: must be one of"),
        (["population.nope=1"], "population.nope: unknown key"),
        (["makers.0.gamma=-1"], "makers.0.gamma"),
        (["makers.99.gamma=1"], "makers.99: makers has no element 99 (indices are 0..10)"),
        (["run.duration_s=0"], "run.duration_s"),
        (["population.symbols.XUSDT=0.5"], "population"),
        (["lending.liquidation_ltv=0.5"], "lending.liquidation_ltv: must be above lending.initial_ltv"),
        (["makers.0.calm_vol_ratio=100"], "hysteresis"),
        (["loopers.prebuilt_loops=[1, 9]"], "loopers.prebuilt_loops: must not exceed loops (4-7)"),
        (["makers.0.liquidity_drop=1.5"], "makers.0.liquidity_drop"),
        (["makers.0.liquidity_band_bps=50"], "makers.0.liquidity_band_bps"),
        (["makers.0.max_half_spread_bps=0.5"], "makers.0.max_half_spread_bps: must be at least min_half_spread_bps (1)"),
        (
            ["run.duration_s=200", "world.outages=[{start_s=20.0, end_s=80.0, groups=['makers']}]"],
            "world.outages.0.start_s: the window opens at 320 s",
        ),
        (["population.accounts"], "expected key.path=value"),
        (["run.duration_s=3.05"], "run.duration_s: 3.05 s leaves less than one step of 100 ms after the 3 s pre-open"),
        (["run.duration_s=3.5", "run.step_ms=1000"], "nothing would be recorded"),
    ],
)
def test_bad_overrides_name_the_key_and_what_is_allowed(overrides: list[str], needle: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(needle)) as exc:
        load("oct-11", overrides)
    assert "oct-11" in str(exc.value)


def test_overrides_reach_any_field_and_are_typed() -> None:
    s = load("oct-11", ["venue.profile=hyperliquid", "population.accounts=1234", "makers.1.gamma=0.05", "run.seed=7"])
    assert s.venue.profile == "hyperliquid" and s.population is not None and s.population.accounts == 1234
    assert s.makers[1].gamma == 0.05 and s.run.seed == 7


def test_files_name_themselves_in_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "oct-11"\nname = "x"\n[venue]\nprofil = "okx"\n')
    with pytest.raises(ScenarioError, match=r"bad\.toml: venue\.profil: unknown key"):
        load(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load(str(broken))
    loop = tmp_path / "loop.toml"
    loop.write_text(f'extends = "{loop}"\nname = "loop"\n')
    with pytest.raises(ScenarioError, match="extends itself"):
        load(str(loop))
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load(str(tmp_path / "missing.toml"))
    unknown_ref = tmp_path / "ref.toml"
    unknown_ref.write_text('extends = "oct-11"\nname = "r"\n[check]\ntracked = "NOPEUSDT"\n')
    with pytest.raises(ScenarioError, match=r"check\.tracked: unknown \['NOPEUSDT'\]"):
        load(str(unknown_ref))


def test_external_paths_do_not_depend_on_the_run_length() -> None:
    """A shorter run sees a prefix of a longer run's external paths, every path (each has its own generator)."""
    import numpy as np

    from cascadelab.scenario.build import external_paths

    long = external_paths(load("oct-11"), 300.0, seed=7)
    short = external_paths(load("oct-11", ["run.duration_s=600"]), 300.0, seed=7)
    assert set(long) == set(short)
    for name, path in short.items():
        assert np.array_equal(path, long[name][: len(path)]), name
    other = external_paths(load("oct-11"), 300.0, seed=8)
    noisy = [n for n, p in load("oct-11").world.paths.items() if p.of is None and p.noise > 0]
    assert noisy and all(not np.array_equal(other[n], long[n]) for n in noisy)


def test_a_relative_extends_counts_from_the_file_that_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "base.toml").write_text('extends = "oct-11"\nname = "base"\n[run]\nduration_s = 600.0\n')
    (sub / "child.toml").write_text('extends = "base.toml"\nname = "child"\n')
    monkeypatch.chdir(tmp_path.parent)  # not the files' folder
    s = load(str(sub / "child.toml"))
    assert s.name == "child" and s.run.duration_s == 600.0
    (sub / "base.toml").write_text('extends = "./../sub/child.toml"\nname = "base"\n')
    with pytest.raises(ScenarioError, match="extends itself"):
        load(str(sub / "child.toml"))
    (sub / "child.toml").write_text('extends = "missing.toml"\nname = "child"\n')
    with pytest.raises(ScenarioError, match=r"child\.toml: extends: .*missing\.toml: no such scenario file"):
        load(str(sub / "child.toml"))


def test_numbers_and_flags_are_typed_as_toml_writes_them(tmp_path: Path) -> None:
    """A quoted number or a flag given as "yes" or 0 is an error naming the key, not silently converted."""
    for override, needle in (('makers.0.gamma="0.02"', "makers.0.gamma: must be a number, got the string '0.02'"),
                             ('makers.0.anchor_external="yes"', "makers.0.anchor_external: must be true or false"),
                             ("venue.debug=0", "venue.debug: must be true or false")):  # fmt: skip
        with pytest.raises(ScenarioError, match=re.escape(needle)):
            load("oct-11", [override])
    assert load("oct-11", ["makers.0.gamma=0.5", "run.duration_s=600"]).run.duration_s == 600.0  # an integer is a number
