"""Loading scenarios: built-ins by name or TOML files, ``--set key.path=value`` overrides, clear errors.

A file may start from another scenario with ``extends = "NAME"`` (a built-in or a path):
its tables merge into the other's key by key, other values replace.

Errors name the file, the key path and what is allowed; unknown keys are errors. An
override's value is read as a TOML value (``--set population.accounts=1000000``,
``--set venue.profile="hyperliquid"``; a bare word that is not a TOML value is taken as a
string, so ``venue.profile=hyperliquid`` works too). List entries are addressed by index
(``makers.0.gamma=0.05``).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from cascadelab.scenario.schema import Scenario


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message names the file and key."""


def builtin_names() -> list[str]:
    """Names of the built-in scenarios."""
    folder = resources.files("cascadelab") / "data" / "scenarios"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: tables merge key by key, everything else (values, lists) replaces."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read(name_or_path: str, seen: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """(where, raw dict) of a built-in name or a TOML file path; ``extends = "NAME"`` starts from another scenario."""
    where, raw = _read_one(name_or_path)
    parent = raw.pop("extends", None)
    if parent is None:
        return where, raw
    if not isinstance(parent, str):
        raise ScenarioError(f"{where}: extends: must be the name of a built-in scenario or a file path")
    if parent in seen or parent == name_or_path:
        raise ScenarioError(f"{where}: extends: {parent!r} extends itself (cycle {' -> '.join((*seen, name_or_path, parent))})")
    _, base = _read(parent, (*seen, name_or_path))
    return where, _merge(base, raw)


def _read_one(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """(where, raw dict) of one file, before ``extends``."""
    if name_or_path in builtin_names():
        where = f"built-in scenario {name_or_path!r}"
        text = (resources.files("cascadelab") / "data" / "scenarios" / f"{name_or_path}.toml").read_text()
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise ScenarioError(
                f"{name_or_path}: no such scenario file, and no built-in of that name (built-ins: {builtin_names()})"
            )
        where = str(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{where}: cannot read: {exc}") from None
    try:
        return where, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(raw: dict[str, Any], assignment: str, where: str = "--set") -> None:
    """Apply one ``key.path=value`` to a raw scenario dict (creating tables on the way)."""
    if "=" not in assignment:
        raise ScenarioError(f"{where}: {assignment!r}: expected key.path=value")
    key, _, text = assignment.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ScenarioError(f"{where}: {key!r}: empty key path component")
    node: Any = raw
    for j, part in enumerate(parts[:-1]):
        path = ".".join(parts[: j + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ScenarioError(f"{where}: {path}: list index must be within 0..{len(node) - 1}")
            node = node[int(part)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ScenarioError(f"{where}: {path}: is a value, not a table")
    last = parts[-1]
    value = _parse_value(text.strip())
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ScenarioError(f"{where}: {key}: list index must be within 0..{len(node) - 1}")
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(f"{where}: {key}: the parent is a value, not a table")


def _explain(where: str, exc: ValidationError) -> ScenarioError:
    lines = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"must be one of {e['ctx']['expected']}"
        lines.append(f"{where}: {loc}: {msg}")
    return ScenarioError("; ".join(lines))


def load(name_or_path: str, overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """A validated scenario from a built-in name or a TOML file, with overrides applied."""
    where, raw = _read(name_or_path)
    items = overrides.items() if isinstance(overrides, dict) else [(None, o) for o in overrides or []]
    for key, value in items:
        text = str(value) if key is None else f"{key}={tomli_w.dumps({'v': value}).partition('=')[2].strip()}"
        apply_override(raw, text, f"{where}, --set {text}")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise _explain(where, exc) from None


def to_toml(scenario: Scenario) -> str:
    """The full resolved scenario as TOML (every default written out), to copy and edit."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    return tomli_w.dumps(data)


__all__ = ["ScenarioError", "apply_override", "builtin_names", "load", "to_toml"]
