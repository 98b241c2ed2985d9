"""Loading scenarios: built-ins by name or TOML files, ``--set key.path=value`` overrides, clear errors.

A file may start from another scenario with ``extends = "NAME"`` (a built-in or a path):
its tables merge into the other's key by key, other values replace.

Errors name the file, the key path and what is allowed; unknown keys are errors. An
override's value is read as a TOML value (``--set population.accounts=1000000``,
``--set venue.profile="hyperliquid"``; a bare word that is not a TOML value is taken as a
string, so ``venue.profile=hyperliquid`` works too). List entries are addressed by index
(``makers.0.gamma=0.05``). Files are UTF-8 (a byte-order mark is allowed).
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from pydantic import ValidationError

from cascadelab.scenario.schema import Invalid, Scenario


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
    builtins = builtin_names()
    if parent not in builtins:  # a relative path counts from the file that names it (spelled one way, for the cycle test)
        base_dir = Path(name_or_path).parent if name_or_path not in builtins else Path()
        parent = os.path.normpath(base_dir / parent)
    here = name_or_path if name_or_path in builtins else os.path.normpath(name_or_path)
    seen = tuple(s if s in builtins else os.path.normpath(s) for s in seen)
    if parent in seen or parent == here:
        raise ScenarioError(f"{where}: extends: {parent!r} extends itself (cycle {' -> '.join((*seen, name_or_path, parent))})")
    try:
        _, base = _read(parent, (*seen, here))
    except ScenarioError as exc:
        if not Path(parent).exists() and parent not in builtin_names():
            raise ScenarioError(f"{where}: extends: {exc}") from None
        raise
    return where, _merge(base, raw)


def _read_one(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """(where, raw dict) of one file, before ``extends``."""
    if name_or_path in builtin_names():
        where = f"built-in scenario {name_or_path!r}"
        text = (resources.files("cascadelab") / "data" / "scenarios" / f"{name_or_path}.toml").read_text(encoding="utf-8-sig")
    else:
        path = Path(name_or_path)
        if not path.exists():
            raise ScenarioError(
                f"{name_or_path}: no such scenario file, and no built-in of that name (built-ins: {builtin_names()})"
            )
        where = str(path)
        if path.is_dir():
            raise ScenarioError(f"{where}: is a directory, not a scenario file")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ScenarioError(f"{where}: cannot read: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise ScenarioError(f"{where}: cannot read: {exc.strerror or exc}") from None
    try:
        return where, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}") from None


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _index(where: str, node: list[Any], part: str, parent: str, key: str) -> int:
    """The list index ``part`` of ``node`` (the list at key path ``parent``), or a ScenarioError naming it."""
    if part.isdigit() and int(part) < len(node):
        return int(part)
    have = "it is empty" if not node else f"indices are 0..{len(node) - 1}"
    what = f"{parent} has no element {part}" if part.isdigit() else f"{parent} is a list: {part!r} is not an index"
    raise ScenarioError(f"{where}: {key}: {what} ({have})")


def apply_override(raw: dict[str, Any], assignment: str, where: str = "--set") -> None:
    """Apply one ``key.path=value`` to a raw scenario dict (creating tables on the way)."""
    if "=" not in assignment:
        raise ScenarioError(f"{where}: {assignment!r}: expected key.path=value")
    key, _, text = assignment.partition("=")
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise ScenarioError(f"{where}: {key!r}: empty key path component")
    node: Any = raw
    for j, part in enumerate(parts[:-1]):
        path = ".".join(parts[: j + 1])
        if isinstance(node, list):
            node = node[_index(where, node, part, ".".join(parts[:j]), path)]
        elif isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            raise ScenarioError(f"{where}: {path}: {'.'.join(parts[:j])} is a value, not a table")
    last = parts[-1]
    value = _parse_value(text.strip())
    if isinstance(node, list):
        node[_index(where, node, last, ".".join(parts[:-1]), ".".join(parts))] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ScenarioError(f"{where}: {'.'.join(parts)}: the parent {'.'.join(parts[:-1])} is a value, not a table")


def _limit(e: dict[str, Any]) -> str | None:
    """What a numeric-constraint error allows, as ``must be > 0, got -1``."""
    ops = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"), "less_than": ("<", "lt"),
           "less_than_equal": ("<=", "le")}  # fmt: skip
    if e["type"] not in ops:
        return None
    op, name = ops[e["type"]]
    bound = e.get("ctx", {}).get(name)
    shown = f"{bound:,}" if isinstance(bound, int) else (f"{int(bound):,}" if isinstance(bound, float) and bound.is_integer()
                                                        and abs(bound) < 1e16 else f"{bound:g}")  # fmt: skip
    return f"must be {op} {shown}, got {e['input']!r}"


_TYPES = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string (in quotes)",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list [...]",
    "tuple_type": "must be a list [low, high]",
    "dict_type": "must be a table",
    "model_type": "must be a table",
}


def _explain(where: str, exc: ValidationError) -> ScenarioError:
    """One line: ``<where>: <key path>: <what is wrong and what is allowed>`` per error, joined by ``; ``."""
    lines = []
    for e in exc.errors():
        loc = tuple(e["loc"])
        msg = e["msg"]
        cause = e.get("ctx", {}).get("error")
        if isinstance(cause, Invalid):
            loc += cause.loc
            msg = str(cause)
        elif e["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "literal_error":
            msg = f"must be one of {e['ctx']['expected']}, got {e['input']!r}"
        elif e["type"] == "finite_number":
            msg = f"must be a finite number (nan and inf are not allowed), got {e['input']!r}"
        elif e["type"] in ("too_short", "too_long"):
            n = e["ctx"]["min_length" if e["type"] == "too_short" else "max_length"]
            msg = (
                f"must have {'at least' if e['type'] == 'too_short' else 'at most'} {n} item(s), got {e['ctx']['actual_length']}"
            )
        elif e["type"] == "missing":
            msg = "required (missing)"
        elif _limit(dict(e)):
            msg = str(_limit(dict(e)))
        elif e["type"] in _TYPES:
            msg = f"{_TYPES[e['type']]}, got {e['input']!r}"
        key = ".".join(str(x) for x in loc if x != "[key]") or "(top level)"
        lines.append(f"{where}: {key}: {msg}")
    return ScenarioError("; ".join(lines))


def describe(name_or_path: str) -> str:
    """How errors name a scenario: ``built-in scenario 'oct-11'`` or the file path."""
    return f"built-in scenario {name_or_path!r}" if name_or_path in builtin_names() else str(name_or_path)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_inline(value: Any, key: str, where: str = "overrides") -> str:
    """A Python override value as one line of TOML (strings quoted; tables and lists inline, nested as needed).

    NumPy scalars and arrays count as the Python values they hold. A ``None`` anywhere, or a
    value TOML cannot hold, is a ScenarioError naming its key path.
    """
    if isinstance(value, np.generic):
        value = value.item()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    if value is None:
        raise ScenarioError(f"{where}: {key}: None is not a value (give a number, string, bool, list or table)")
    if isinstance(value, dict):
        parts = []
        for k, x in value.items():
            name = k if isinstance(k, str) and _BARE_KEY.fullmatch(k) else tomli_w.dumps({"k": str(k)})[4:].strip()
            parts.append(f"{name} = {toml_inline(x, f'{key}.{k}', where)}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_inline(x, f"{key}.{j}", where) for j, x in enumerate(value)) + "]"
    try:
        return tomli_w.dumps({"v": value}).partition("=")[2].strip()
    except (TypeError, ValueError):
        raise ScenarioError(f"{where}: {key}: {value!r} is not a TOML value (number, string, bool, list, table)") from None


def _override_texts(overrides: list[str] | dict[str, Any] | None, where: str) -> list[str]:
    """``key.path=value`` texts of ``["k=v", ...]`` (TOML text) or ``{"k": v}`` (Python values, written as TOML)."""
    if isinstance(overrides, dict):
        return [f"{key}={toml_inline(value, key, f'{where}: --set')}" for key, value in overrides.items()]
    texts = list(overrides or [])
    for o in texts:
        if not isinstance(o, str):
            raise ScenarioError(f"{where}: override {o!r}: expected a 'key.path=value' string")
    return texts


def validate(raw: dict[str, Any], where: str, overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """A validated scenario from a raw dict (as read from TOML), with overrides applied; errors name ``where``."""
    for text in _override_texts(overrides, where):
        apply_override(raw, text, f"{where}, --set {text}")
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise _explain(where, exc) from None


def load(name_or_path: str, overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """A validated scenario from a built-in name or a TOML file, with overrides applied."""
    if not isinstance(name_or_path, str):
        raise ScenarioError(f"scenario: expected a built-in name or a file path, got {name_or_path!r}")
    where, raw = _read(name_or_path)
    return validate(raw, where, overrides)


def to_toml(scenario: Scenario) -> str:
    """The full resolved scenario as TOML (every default written out), to copy and edit."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    return tomli_w.dumps(data)


__all__ = ["ScenarioError", "apply_override", "builtin_names", "describe", "load", "to_toml", "validate"]
