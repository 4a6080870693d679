"""The environment profiles shipped with featurestream, and where `--env NAME` finds a profile.

`--env` takes a file (`path/to/prod.yaml`, `./prod.yaml`) or a name, looked up in this order:
1. `conf/environments/<name>.yaml` under the current directory: a project's own profiles, which
   also override a shipped one of the same name;
2. `<name>.yaml` beside this module: `local` (the local stack) and `aws`, package data of the
   wheel and of the `--py-files` zip, so `--env local` works from any folder and on a cluster.
These YAML files are the only copies in the repository.
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from featurestream.errors import ConfigError

# A project's own profiles, relative to the current directory.
PROJECT_DIR = Path("conf/environments")
_SUFFIXES = (".yaml", ".yml")


def shipped(name: str) -> Traversable:
    """The shipped profile `name` (it may not exist); a file in the wheel or in a zip."""
    return files(__name__) / f"{name}.yaml"


def shipped_names() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in files(__name__).iterdir() if p.name.endswith(".yaml"))


def is_path(name_or_path: str | Path) -> bool:
    """A file name (`x.yaml`) or anything with a folder in it is a path, not a profile name."""
    candidate = Path(name_or_path)
    return candidate.suffix in _SUFFIXES or candidate.parent != Path(".")


def find(name_or_path: str | Path) -> Path | Traversable:
    """The profile file `--env` means; an unknown name is a ConfigError listing where it looked."""
    if is_path(name_or_path):
        return Path(name_or_path)
    name = str(name_or_path)
    project = PROJECT_DIR / f"{name}.yaml"
    if project.is_file():
        return project
    packaged = shipped(name)
    if packaged.is_file():
        return packaged
    raise ConfigError(
        "--env", "", f"no profile named {name!r}: looked for {Path.cwd() / project} and for {name}.yaml among "
        f"the profiles shipped with featurestream ({', '.join(shipped_names())}); give a name or a path to a file")
