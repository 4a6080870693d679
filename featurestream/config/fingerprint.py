"""The definition of a feature group's values, and its fingerprint.

Everything in a feature group that changes a value it writes — the entity, the event-time rules,
the transform steps (dedupe included), the tile and lateness, every feature with its aggregation,
column, windows and any other parameter, and the online-store TTL (it decides how long a
window-less `last` outlives its events) — is taken from the validated model, generically: every
field of those parts is included, so a parameter added to the model later is part of the
fingerprint without a change here. Left out on purpose: the group's name and description, the
source transport and payload (where events come from, not how they are computed: `--source
kinesis` runs the same definition) — except `source.max_string_bytes`, which decides which events
are refused to the DLQ and so which ones count — and `online_store.feature_group_name` (the version
itself).

Normalised so that equal definitions have equal fingerprints: durations in their shortest exact
spelling (`24h` and `1d` are one window), lists of durations sorted, features keyed by name (their
order changes no value). Transform steps keep their order (it changes values).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from featurestream.config.feature_group import DURATION, FeatureGroupSpec
from featurestream.durations import format_duration, parse_duration_ms

# The parts of the model that change values (see the module docstring for what is left out).
VALUE_PARTS = ("entity", "event_time", "transforms", "windows", "features")
TTL_PATH = ("online_store", "ttl")
# In only when set: every fingerprint taken before it was added (and every group at the default
# limits) stays as it was.
STRING_LIMITS_PATH = ("source", "max_string_bytes")
ABSENT = "(none)"


def _marks_duration(annotation: Any) -> bool:
    """Whether a type annotation holds the Duration mark anywhere (`list[Duration]`, `Duration | None`)."""
    if get_origin(annotation) is Annotated:
        inner, *metadata = get_args(annotation)
        return any(item is DURATION for item in metadata) or _marks_duration(inner)
    return any(_marks_duration(arg) for arg in get_args(annotation))


def _normal(value: Any, duration: bool, defaults: bool = True) -> Any:
    if isinstance(value, BaseModel):
        return normalise_model(value, defaults=defaults)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        items = [_normal(v, duration, defaults) for v in value]
        return sorted(items, key=parse_duration_ms) if duration else items
    if isinstance(value, dict):
        return {str(k): _normal(v, duration, defaults) for k, v in value.items()}
    if duration and isinstance(value, str):
        return format_duration(parse_duration_ms(value))
    return value


def normalise_model(model: BaseModel, *, defaults: bool = True) -> dict[str, Any]:
    """Every field of a model (by its YAML name), durations in their canonical spelling.

    `defaults=False` leaves out the fields that hold their model default: a parameter added to the
    model later (with a default) then leaves every existing fingerprint as it was.
    """
    out: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        duration = any(item is DURATION for item in info.metadata) or _marks_duration(info.annotation)
        value = _normal(getattr(model, name), duration, defaults)
        if not defaults and not info.is_required() \
                and value == _normal(info.get_default(call_default_factory=True), duration, defaults):
            continue
        out[info.alias or name] = value
    return out


def definition(spec: FeatureGroupSpec, *, defaults: bool = True) -> dict[str, Any]:
    """The normalised definition of the group's values: with every field (to show and compare),
    or without the fields at their default (what the fingerprint is taken of)."""
    whole = normalise_model(spec, defaults=True)
    significant = whole if defaults else normalise_model(spec, defaults=False)
    out = {part: significant[part] for part in VALUE_PARTS if part in significant}
    out["features"] = {f.pop("name"): f for f in (dict(f) for f in significant["features"])}
    ttl = whole[TTL_PATH[0]][TTL_PATH[1]]
    if defaults or ttl is not None:
        out[TTL_PATH[0]] = {TTL_PATH[1]: ttl}
    limits = whole[STRING_LIMITS_PATH[0]][STRING_LIMITS_PATH[1]]
    if limits:
        out[STRING_LIMITS_PATH[0]] = {STRING_LIMITS_PATH[1]: limits}
    return out


def fingerprint(spec: FeatureGroupSpec) -> str:
    """A short, stable hash of the group's definition (fields at their default left out)."""
    return fingerprint_of(definition(spec, defaults=False))


def fingerprint_of(significant: dict[str, Any]) -> str:
    canonical = json.dumps(significant, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


def without_features(normalised: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The definition minus some features (to tell 'features were added' from other changes)."""
    return {**normalised, "features": {k: v for k, v in normalised["features"].items() if k not in names}}


@dataclass(frozen=True)
class Change:
    """One difference between two definitions, at a dotted path (`windows.tile`)."""

    path: str
    before: Any
    after: Any

    @property
    def added_feature(self) -> bool:
        return self.path.startswith("features.") and self.path.count(".") == 1 and self.before == ABSENT

    def line(self) -> str:
        if self.path.startswith("features.") and self.path.count(".") == 1:
            return f"{self.path}: {'added' if self.before == ABSENT else 'removed'}"
        return f"{self.path}: {_show(self.before)} -> {_show(self.after)}"


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _leaves(value: Any, path: str) -> dict[str, Any]:
    """Dotted paths to scalar values (a list of scalars is one value; a list of mappings is indexed)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{path}.{key}" if path else str(key)))
        return out or {path: {}}
    if isinstance(value, list) and any(isinstance(item, dict) for item in value):
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, f"{path}[{index}]"))
        return out or {path: []}
    return {path: value}


def changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """What changed from `before` to `after`; a feature added or removed is one change."""
    found: list[Change] = []
    old_features, new_features = before.get("features", {}), after.get("features", {})
    for name in sorted(set(old_features) | set(new_features)):
        if name not in old_features:
            found.append(Change(f"features.{name}", ABSENT, "added"))
        elif name not in new_features:
            found.append(Change(f"features.{name}", "removed", ABSENT))
    shared = set(old_features) & set(new_features)
    old = _leaves(without_features(before, set(old_features) - shared), "")
    new = _leaves(without_features(after, set(new_features) - shared), "")
    for path in sorted(set(old) | set(new)):
        if old.get(path, ABSENT) != new.get(path, ABSENT):
            found.append(Change(path, old.get(path, ABSENT), new.get(path, ABSENT)))
    return found
