"""`make dist`: what a cluster needs to run the jobs, next to the wheel pip builds.

    python -m featurestream.ops.package build/dist

writes into the folder (which already holds the wheel):
- `featurestream-<version>-pyfiles.zip`: the Python packages for `spark-submit --py-files`
  (the featurestream package without its development layer, with the shipped profiles;
  byte-identical for the same sources: sorted, fixed times);
- `jars/`: our JVM modules (the tile engine, the Kinesis source) for `--jars`;
- `packages.txt`: the Maven coordinates for `--packages`;
- `requirements.txt`: the wheel's own dependency ranges, without pyspark (the nodes' Spark provides
  it and pip must not replace it), for a bootstrap action, an image or a packed venv for `--archives`;
- `jobs/`: the spark-submit entry points as plain files (spark-submit wants a file, not a module).
"""

from __future__ import annotations

import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

from featurestream.io.jars import CLUSTER_PACKAGES, MODULE_JARS, project_root

PACKAGES = ("featurestream",)
# Modules, and the package data the jobs read (the shipped profiles: `--env aws` with --py-files).
SOURCE_PATTERNS = ("*.py", "config/profiles/*.yaml")
# The local stack, emulator, demo and generator never run on a cluster.
DEVELOPMENT = Path("featurestream/dev")
# Zip entries carry this time so the same sources give the same bytes.
_EPOCH = (1980, 1, 1, 0, 0, 0)


class PackagingError(Exception):
    """Something `make dist` needs is missing (e.g. a JVM module that was not built)."""


def _sources(root: Path) -> list[Path]:
    files = [p for package in PACKAGES for pattern in SOURCE_PATTERNS for p in (root / package).rglob(pattern)
             if "__pycache__" not in p.parts]
    return sorted(r for r in (p.relative_to(root) for p in files) if not r.is_relative_to(DEVELOPMENT))


def build_pyfiles_zip(root: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for relative in _sources(root):
            info = zipfile.ZipInfo(relative.as_posix(), date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, (root / relative).read_bytes())
    return target


def project_metadata(root: Path) -> tuple[str, list[str]]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return str(project["version"]), list(project["dependencies"])


def build(out: Path, root: Path | None = None) -> list[Path]:
    root = root or project_root()
    out.mkdir(parents=True, exist_ok=True)
    version, dependencies = project_metadata(root)
    written = [build_pyfiles_zip(root, out / f"featurestream-{version}-pyfiles.zip")]
    jars = out / "jars"
    jars.mkdir(exist_ok=True)
    for jar in MODULE_JARS:
        if not (root / jar).is_file():
            raise PackagingError(f"{jar} is missing: run `make modules` first")
        written.append(Path(shutil.copy2(root / jar, jars / jar.name)))
    (out / "packages.txt").write_text("\n".join(CLUSTER_PACKAGES) + "\n")
    header = f"# featurestream {version}: its dependencies beside the cluster's own Spark 3.5 (not listed here).\n"
    (out / "requirements.txt").write_text(header + "\n".join(dependencies) + "\n")
    jobs = out / "jobs"
    jobs.mkdir(exist_ok=True)
    for job in sorted((root / "jobs").glob("*.py")):
        if job.name != "__init__.py":
            written.append(Path(shutil.copy2(job, jobs / job.name)))
    return [*written, out / "packages.txt", out / "requirements.txt"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "build/dist")
    try:
        for path in build(out):
            print(path)
    except PackagingError as exc:
        print(f"featurestream: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
