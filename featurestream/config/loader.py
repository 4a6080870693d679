"""Load YAML into the frozen models, turning every failure into ConfigError lines.

A missing file, bad YAML, an unknown key, a wrong type or a broken cross-field rule all end as
`<file>: <field>: <reason>`, one line per mistake and every mistake of the file at once, so the
entry point can print them and exit 2 before Spark starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from featurestream.config import profiles
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.config.validation import problems_of
from featurestream.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def read_yaml(path: Path | Traversable) -> dict[str, Any]:
    """The file's top-level mapping (a file, or package data); missing or bad YAML is a ConfigError naming it."""
    if not path.is_file():
        raise ConfigError(str(path), "", "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(yaml)"
        raise ConfigError(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), "", "expected a mapping at the top level")
    return data


def _expand_env(value: Any, path: Path, field: str, problems: list[ConfigError]) -> Any:
    """Replace `${VAR}` / `${VAR:-default}` in strings, recursively; unset variables go to `problems`."""
    if isinstance(value, dict):
        return {k: _expand_env(v, path, f"{field}.{k}" if field else str(k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, path, f"{field}[{i}]", problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        problems.append(ConfigError(path, field, f"environment variable {name} is not set and has no default"))
        return match.group(0)

    return _ENV_REF.sub(substitute, value)


def to_model(model: type[Model], data: dict[str, Any], path: Path,
             problems: Sequence[ConfigError] = (), hidden: Sequence[str] = ()) -> Model:
    """`${VAR}` references expanded, then validated into `model`.

    Every mistake of the file is raised at once (`problems` found earlier by the caller first),
    each naming file and field; `hidden` are top-level keys the loader sets itself, never suggested.
    """
    found = list(problems)
    expanded = _expand_env(data, path, "", found)
    try:
        result = model.model_validate(expanded)
    except ValidationError as exc:
        # A field whose variable is unset fails validation too: its first line says why.
        named = {p.field for p in found}
        found += [p for p in problems_of(exc, model, path, hidden) if p.field not in named]
    if found:
        raise ConfigError.of(found) from None
    return result


def load_feature_group(path: str | Path) -> FeatureGroupSpec:
    """Load `conf/feature_groups/<name>.yaml`; the file name is the group's name."""
    file = Path(path)
    data = read_yaml(file)
    problems = []
    if "name" in data:
        problems.append(ConfigError(file, "name", "unknown key (the file name is the feature group's name)"))
    data["name"] = file.stem
    return to_model(FeatureGroupSpec, data, file, problems, hidden=("name",))


def resolve_profile_path(name_or_path: str | Path) -> Path:
    """The file `--env` means, for messages: a path, `conf/environments/<name>.yaml`, or a shipped one."""
    return Path(str(profiles.find(name_or_path)))


def load_profile(name_or_path: str | Path) -> EnvironmentProfile:
    """A profile file, or a name looked up as `featurestream.config.profiles` says."""
    found = profiles.find(name_or_path)
    data = read_yaml(found)
    data.setdefault("name", found.name.removesuffix(".yml").removesuffix(".yaml"))
    return to_model(EnvironmentProfile, data, Path(str(found)))
