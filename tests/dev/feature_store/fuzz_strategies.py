"""Hypothesis strategies for fuzzing the emulator: valid requests, and mutations of them.

A mutation replaces, drops or adds one value anywhere in a valid request body, drawing from
values that broke the emulator before (lone surrogates, thousands of digits, JSON nested far
deeper than any shape, identifiers past 2 KB, event times past 9999, TTLs past 32 bits).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hypothesis import strategies as st

_IDS = itertools.count()

# Text a client may legitimately send (no lone surrogates), including what often breaks parsers.
valid_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
# Any Python str: lone surrogates travel as JSON "\ud800" escapes (json.dumps escapes them).
any_text = st.text(st.characters(codec=None), max_size=20) | st.sampled_from(["\ud800", "a\udfffb", "\udc00\ud800"])

_ISO = st.builds(
    lambda y, mo, d, h, mi, s, ms, z: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{ms}{z}",
    st.integers(1, 9998), st.integers(1, 12), st.integers(1, 28), st.integers(0, 23),
    st.integers(0, 59), st.integers(0, 59), st.sampled_from(["", ".000", ".999", ".123"]),
    st.sampled_from(["Z", "+00:00", "-05:30", "+0100", "+23:59"]),
)
_INT64 = st.integers(-(2**63), 2**63 - 1).map(str)
_DOUBLE = st.floats(allow_nan=False, allow_infinity=False).map(repr)

_SPECIAL_STRINGS = st.sampled_from([
    "7" * 5000, "-" + "9" * 25, "0" * 5000 + "1", "1e400", "-1e400", "NaN", "Infinity", "1_000", " 1",
    "9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+00:01", "10000-01-01T00:00:00Z",
    "2024-02-30T10:00:00Z", "2024-05-01T10:00:00.1234Z", "1e300", "-62167219201", "253402300800",
    "r" * 2049, "é" * 1025, "\x00", "\ud800", "\ud83d\ude00", "%2F..%2F", "",
])


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


special_values = st.one_of(
    _SPECIAL_STRINGS,
    st.sampled_from([10**400, 10**300, 2**31, 2**31 - 1, 2**63, -1, 0, True, None, 1.5, 1e308]),
    st.integers(33, 600).map(_deep),  # json.dumps in this process recurses too
    st.just("v" * (360 * 1024)),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
ttl = st.fixed_dictionaries({
    "Unit": st.sampled_from(["Seconds", "Minutes", "Hours", "Days", "Weeks"]),
    "Value": st.integers(1, 2**31 - 1),
})


def fresh_id(prefix: str) -> str:
    return f"{prefix}{next(_IDS)}"


def feature_values(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


@st.composite
def valid_values(draw: st.DrawFn, fractional_time: bool = False) -> dict[str, str]:
    """A record of the fuzz groups (id, ts or et, n Integral, x Fractional, s String)."""
    values = {"id": fresh_id("v")}
    if fractional_time:
        values["et"] = repr(draw(st.floats(-62_167_219_200, 253_402_300_799)))
    else:
        values["ts"] = draw(_ISO)
    for name, strategy in (("n", _INT64), ("x", _DOUBLE), ("s", valid_text)):
        if draw(st.booleans()):
            values[name] = draw(strategy)
    return values


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            out += _paths(child, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, body: dict[str, Any]) -> Any:
    """`body` after one to three mutations."""
    for _ in range(draw(st.integers(1, 3))):
        body = draw(_mutated_once(body))
    return body


@st.composite
def _mutated_once(draw: st.DrawFn, body: Any) -> Any:
    """`body` with one value replaced, one key dropped or added (possibly at the top)."""
    body = copy.deepcopy(body)
    path = draw(st.sampled_from(_paths(body)))
    replacement = draw(special_values | json_values)
    if not path:
        if isinstance(body, dict) and draw(st.booleans()):
            return {**body, draw(any_text): replacement}
        return replacement
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    action = draw(st.sampled_from(["replace", "replace", "drop", "add"]))
    if action == "drop":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(any_text)] = replacement
    else:
        parent[path[-1]] = replacement
    return body
