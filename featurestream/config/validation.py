"""pydantic's ValidationError as ConfigErrors: every mistake of a file, one line each.

A user fixing a config should see all of its mistakes in one run, each naming the file and the
field; an unknown key (the models forbid extras) comes with the closest allowed key, and the
"Field required" that a misspelt required key causes is folded into that suggestion.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from featurestream.errors import ConfigError

Location = tuple[int | str, ...]


def field_path(location: Location) -> str:
    """`features[0].agg` from pydantic's ('features', 0, 'agg'), without union tags."""
    text = ""
    previous: int | str | None = None
    for part in location:
        # pydantic names the chosen member of a tagged union (`source.kafka.topic`); users wrote `source.topic`.
        if previous == "source" and part in ("kafka", "kinesis"):
            previous = part
            continue
        previous = part
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The model classes an annotation can hold (through Annotated, unions, lists and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType, list, tuple, set, frozenset):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    if origin is dict:
        return _models_in(typing.get_args(annotation)[1])
    return []


def _keys(model: type[BaseModel]) -> dict[str, Any]:
    """The keys a file may use for `model` (aliases where a field has one) → annotation."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _is_tag_of(model: type[BaseModel], tag: str) -> bool:
    literal = _keys(model).get("type")
    return typing.get_origin(literal) is typing.Literal and tag in typing.get_args(literal)


def allowed_keys(root: type[BaseModel], parent: Location, hidden: Iterable[str] = ()) -> list[str]:
    """The keys allowed at `parent` (a location inside a document of `root`)."""
    models = [root]
    for part in parent:
        if isinstance(part, int):
            continue  # a list index: the element's models are already the candidates
        found = [m for model in models if part in _keys(model) for m in _models_in(_keys(model)[part])]
        if found:
            models = found
        else:
            # Not a key: the tag pydantic adds for the chosen member of a tagged union.
            models = [m for m in models if _is_tag_of(m, part)] or models
    keys = {key for model in models for key in _keys(model)}
    return sorted(keys - set(hidden) if not parent else keys)


def _reason(error: Any) -> str:
    # Drop pydantic's "Value error, " prefix: the reason should read as ours.
    return str(error["msg"]).removeprefix("Value error, ")


def problems_of(exc: ValidationError, root: type[BaseModel], path: Path,
                hidden: Sequence[str] = ()) -> list[ConfigError]:
    """One ConfigError per distinct mistake, in pydantic's order (fields first, then unknown keys)."""
    errors = exc.errors()
    suggested: dict[Location, str] = {}
    for error in errors:
        if error["type"] == "extra_forbidden":
            location: Location = tuple(error["loc"])
            match = difflib.get_close_matches(str(location[-1]), allowed_keys(root, location[:-1], hidden), n=1)
            if match:
                suggested[location] = match[0]
    # A required key reported missing because it was misspelt: the suggestion already says it.
    folded = {(*loc[:-1], key) for loc, key in suggested.items()}
    problems: list[ConfigError] = []
    seen: set[Location] = set()
    for error in errors:
        location = tuple(error["loc"])
        if location in seen or (error["type"] == "missing" and location in folded):
            continue  # one line per field: a union may report each of its members
        seen.add(location)
        reason = _reason(error)
        if error["type"] == "extra_forbidden":
            reason = "unknown key" + (f" (did you mean {suggested[location]!r}?)" if location in suggested else "")
        problems.append(ConfigError(path, field_path(location), reason))
    return problems
