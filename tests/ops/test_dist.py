"""`make dist`'s cluster artefacts: a reproducible --py-files zip that imports on its own."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from featurestream.io.jars import CLUSTER_PACKAGES
from featurestream.ops import package


def test_artefacts(tmp_path: Path) -> None:
    written = package.build(tmp_path / "a")
    package.build(tmp_path / "b")
    (zip_a,) = (tmp_path / "a").glob("featurestream-*-pyfiles.zip")
    (zip_b,) = (tmp_path / "b").glob("featurestream-*-pyfiles.zip")
    assert zip_a.read_bytes() == zip_b.read_bytes()  # same sources, same bytes
    names = zipfile.ZipFile(zip_a).namelist()
    assert {"featurestream/ops/metrics.py", "featurestream/connectors/online_store.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "jobs/", "featurestream/dev/"))]
    assert {p.name for p in (tmp_path / "a" / "jars").iterdir()} == {
        "featurestream-tiles.jar", "featurestream-kinesis-source.jar"}
    assert (tmp_path / "a" / "packages.txt").read_text().split() == list(CLUSTER_PACKAGES)
    requirements = [r for r in (tmp_path / "a" / "requirements.txt").read_text().splitlines() if r[:1] not in "#"]
    assert "pandas>=2.0,<3" in requirements and not [r for r in requirements if "==" in r]  # ranges, not pins
    assert not [r for r in requirements if r.lower().startswith(("pyspark", "py4j"))]  # the nodes' Spark stays
    assert (tmp_path / "a" / "jobs" / "stream_features.py") in written
    # The zip first on the path wins over the checkout, as it does on an executor.
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import featurestream.ops.metrics as m, "
             "featurestream.cli.commands.compact as c; print(m.__file__); print(c.__file__)")
    out = subprocess.run([sys.executable, "-I", "-c", probe, str(zip_a)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert all(path.startswith(str(zip_a)) for path in out)
