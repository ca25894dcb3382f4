"""Config problems as users need them: the key, the value found and what is allowed, in one line.

jsonschema's own messages name the value but rarely what is allowed ("'bogus' was unexpected" does not
list the known keys; "0 is less than the minimum of 1" hides an exclusive bound on the other side), so
:func:`describe` rewrites each schema error from the failing keyword and its sub-schema. The semantic
checks (:mod:`equitable_fl.config.checks` and its helpers) build their lines with :func:`problem`, so
every line reads the same way: ``key: value …; allowed: …``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}
_RANGE_KEYWORDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")


def show(value: Any) -> str:
    """A value as the config would spell it (JSON-like, short)."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def key_path(parts: Iterable[Any]) -> str:
    """``clients.tiers.thresholds`` / ``phases[1].tiers`` from a path of keys and list positions."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def problem(key: str, value: Any, what: str, allowed: str) -> str:
    """One problem line: ``key: <value> <what>; allowed: <allowed>``."""
    return f"{key}: {show(value)} {what}; allowed: {allowed}"


def one_of(values: Sequence[Any]) -> str:
    return ", ".join(show(v) for v in values)


def value_range(schema: Mapping[str, Any]) -> str:
    """The range a schema's bounds allow, e.g. ``0 < x ≤ 1``, ``x ≥ 1`` or ``x < 1``."""
    low = next(
        ((schema[k], op) for k, op in (("exclusiveMinimum", "<"), ("minimum", "≤")) if k in schema), None
    )
    high = next(
        ((schema[k], op) for k, op in (("exclusiveMaximum", "<"), ("maximum", "≤")) if k in schema), None
    )
    if low and high:
        return f"{show(low[0])} {low[1]} x {high[1]} {show(high[0])}"
    if low:
        return f"x {'>' if low[1] == '<' else '≥'} {show(low[0])}"
    return f"x {high[1]} {show(high[0])}" if high else "any number"


def _types(schema: Mapping[str, Any]) -> str:
    t = schema.get("type")
    names = [t] if isinstance(t, str) else list(t or [])
    return " or ".join(_TYPE_NAMES.get(n, n) for n in names) or "any value"


def describe(error: Any, prefix: Sequence[Any] = ()) -> str:
    """One line for a jsonschema ``ValidationError``: key, value found and what is allowed."""
    path = [*prefix, *error.path]
    key, value, schema, kw = key_path(path), error.instance, error.schema, error.validator
    arg = error.validator_value
    if kw == "additionalProperties" and isinstance(value, Mapping):
        known = sorted(schema.get("properties", {}))
        unknown = sorted(set(value) - set(known))
        where = key_path([*path, unknown[0]]) if len(unknown) == 1 else key
        what = f"unknown key {show(unknown[0])}" if len(unknown) == 1 else f"unknown keys {one_of(unknown)}"
        return f"{where}: {what}; allowed keys here: {', '.join(known) or 'none'}"
    if kw == "enum":
        return problem(key, value, "is not one of the choices", one_of(arg))
    if kw == "const":
        return problem(key, value, "is not allowed with the other settings", show(arg))
    if kw == "type":
        return problem(key, value, f"is not {_types(schema)}", _types(schema))
    if kw in _RANGE_KEYWORDS:
        return problem(key, value, "is out of range", value_range(schema))
    if kw == "minItems":
        return problem(key, value, f"has {len(value)} item(s)", f"at least {arg} item(s)")
    if kw == "maxItems":
        return problem(key, value, f"has {len(value)} item(s)", f"at most {arg} item(s)")
    if kw == "uniqueItems":
        return problem(key, value, "repeats an item", "distinct items")
    if kw == "pattern":
        return problem(key, value, "does not have the allowed form", f"text matching {arg}")
    if kw == "propertyNames":
        inner = getattr(error, "context", None) or []
        bad = inner[0].instance if inner else value
        return problem(key, bad, "is not an allowed name", f"names matching {arg.get('pattern', arg)}")
    if kw == "required":
        missing = [r for r in arg if not isinstance(value, Mapping) or r not in value]
        where = key_path([*path, missing[0]]) if missing else key
        return f"{where}: missing; required keys here: {', '.join(arg)}"
    return f"{key}: {error.message}"
