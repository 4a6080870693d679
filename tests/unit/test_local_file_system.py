"""Local sessions write `file` paths through io.featurestream.fs.NioLocalFileSystem (no `chmod`
process per file); the options that choose it are in tests/unit/test_spark_time_zone.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def test_the_test_session_writes_local_files_in_process(spark: Any, tmp_path: Path) -> None:
    """The session fixture (local_session) uses it; files keep the permissions Hadoop's gives."""
    from featurestream.spark import LOCAL_FS_CLASS

    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(tmp_path.as_uri())
    assert path.getFileSystem(conf).getClass().getName() == LOCAL_FS_CLASS
    spark.range(3).coalesce(1).write.parquet(str(tmp_path / "ours"))
    hadoops = jvm.org.apache.hadoop.conf.Configuration(conf)
    hadoops.set("fs.file.impl", "org.apache.hadoop.fs.LocalFileSystem")
    hadoops.setBoolean("fs.file.impl.disable.cache", True)
    fs = path.getFileSystem(hadoops)
    out = fs.create(jvm.org.apache.hadoop.fs.Path((tmp_path / "theirs").as_uri()), True)
    out.close()
    part = next((tmp_path / "ours").glob("part-*"))
    assert part.stat().st_mode == (tmp_path / "theirs").stat().st_mode
    assert (tmp_path / "ours").stat().st_mode & 0o777 == 0o755
