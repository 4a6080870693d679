"""The emulator's local offline folder (issue 19, finding 3): whatever the URI, no file is ever
written outside the folder; `s3://../../../x` once put Parquet files beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestream.dev.feature_store.offline import LocalDirSink


def _files(top: Path) -> list[Path]:
    return sorted(p for p in top.rglob("*") if p.is_file())


@pytest.mark.parametrize("uri", [
    "s3://../../escaped/f.parquet",
    "s3://../escaped/f.parquet",
    "s3://bucket//escaped/f.parquet",
    "s3://bucket/a/../../../escaped/f.parquet",
    "s3://bucket/./f.parquet",
])
def test_a_uri_never_leads_out_of_the_folder(tmp_path: Path, uri: str) -> None:
    root = tmp_path / "a" / "b" / "offline"
    root.mkdir(parents=True)
    with pytest.raises(ValueError, match="not a valid s3:// URI"):
        LocalDirSink(root).write(uri, b"PAR1")
    assert _files(tmp_path) == []


def test_a_link_inside_the_folder_is_not_followed_out_of_it(tmp_path: Path) -> None:
    root, outside = tmp_path / "offline", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "bucket").symlink_to(outside)
    with pytest.raises(ValueError, match="leads out of the offline folder"):
        LocalDirSink(root).write("s3://bucket/prefix/f.parquet", b"PAR1")
    assert _files(tmp_path) == []


def test_a_good_uri_lands_under_the_folder(tmp_path: Path) -> None:
    sink = LocalDirSink(tmp_path)
    sink.write("s3://bucket/p/year=2026/f.parquet", b"PAR1")
    assert _files(tmp_path) == [tmp_path / "bucket" / "p" / "year=2026" / "f.parquet"]
