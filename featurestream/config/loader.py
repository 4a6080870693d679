"""Load YAML into the frozen models, turning every failure into one ConfigError line.

A missing file, bad YAML, an unknown key, a wrong type or a broken cross-field rule all end as
`<file>: <field>: <reason>` so the entry point can print it and exit 2 before Spark starts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
PROFILE_DIR = Path("conf/environments")


def read_yaml(path: Path) -> dict[str, Any]:
    """The file's top-level mapping; a missing file or bad YAML is a ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(path, "", "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(yaml)"
        raise ConfigError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(path, "", "expected a mapping at the top level")
    return data


def _expand_env(value: Any, path: Path, field: str) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in strings, recursively."""
    if isinstance(value, dict):
        return {k: _expand_env(v, path, f"{field}.{k}" if field else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, path, f"{field}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(path, field, f"environment variable {name} is not set and has no default")

    return _ENV_REF.sub(substitute, value)


def _field_path(location: tuple[int | str, ...]) -> str:
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


def _validate(model: type[Model], data: dict[str, Any], path: Path) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # Drop pydantic's "Value error, " prefix: the reason should read as ours.
        reason = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            reason = "unknown key"
        raise ConfigError(path, _field_path(first["loc"]), reason) from None


def to_model(model: type[Model], data: dict[str, Any], path: Path) -> Model:
    """`${VAR}` references expanded, then validated into `model`; every failure names file and field."""
    return _validate(model, _expand_env(data, path, ""), path)


def load_feature_group(path: str | Path) -> FeatureGroupSpec:
    """Load `conf/feature_groups/<name>.yaml`; the file name is the group's name."""
    file = Path(path)
    data = read_yaml(file)
    if "name" in data:
        raise ConfigError(file, "name", "unknown key (the file name is the feature group's name)")
    data["name"] = file.stem
    return to_model(FeatureGroupSpec, data, file)


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """A bare name (`local`) means `conf/environments/<name>.yaml`."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.parent != Path("."):
        return candidate
    return PROFILE_DIR / f"{candidate}.yaml"


def load_profile(name_or_path: str | Path) -> EnvironmentProfile:
    file = resolve_profile_path(name_or_path)
    data = read_yaml(file)
    data.setdefault("name", file.stem)
    return to_model(EnvironmentProfile, data, file)
