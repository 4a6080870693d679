"""requirements/*.lock stay in step with pyproject.toml: every dependency that development installs
is locked at a version its range allows, and the AWS connector's lock only adds to the dev lock.

A range changed or a dependency added without `make lock` fails here rather than on a fresh machine.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def locked(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    return {canonicalize_name(m[1]): m[2] for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", text, re.MULTILINE)}


def declared(*extras: str) -> list[Requirement]:
    lines = [*PROJECT["dependencies"], *(d for e in extras for d in PROJECT["optional-dependencies"][e])]
    dev_in = (ROOT / "requirements" / "dev.in").read_text().splitlines()
    return [Requirement(line) for line in [*lines, *dev_in] if line.strip() and not line.startswith("#")]


def outside(requirements: list[Requirement], lock: dict[str, str]) -> list[str]:
    return [f"{r}: locked {lock.get(canonicalize_name(r.name))}" for r in requirements
            if not r.specifier.contains(lock.get(canonicalize_name(r.name), "0+missing"), prereleases=True)]


def test_dev_lock_satisfies_the_ranges() -> None:
    assert outside(declared("spark", "dev"), locked("dev.lock")) == []


def test_connector_lock_adds_only_the_connector() -> None:
    dev, connector = locked("dev.lock"), locked("aws-connector.lock")
    assert outside(declared("spark", "dev", "aws-connector"), connector) == []
    assert {k: v for k, v in connector.items() if k in dev} == dev
    assert set(connector) - set(dev) == {"sagemaker-feature-store-pyspark"}


def test_the_library_pins_nothing_and_leaves_spark_to_the_cluster() -> None:
    runtime = [Requirement(d) for d in PROJECT["dependencies"]]
    assert not [str(r) for r in runtime if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not [str(r) for r in runtime if canonicalize_name(r.name) in ("pyspark", "py4j")]
    # Spark 3.5's Arrow path breaks from pyarrow 20 on, and its metadata caps numpy below 2.
    by_name = {canonicalize_name(r.name): r.specifier for r in runtime}
    assert not by_name["pyarrow"].contains("20.0.0") and not by_name["numpy"].contains("2.0.0")
    assert not by_name["botocore"].contains("1.43.99")
