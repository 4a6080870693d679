"""Small reads through the JVM's Hadoop FileSystem: one code path for local, s3a:// and hdfs://.

Used for the few files the driver looks at itself (checkpoint metadata, a stop marker, the
training-set manifest), with the session's Hadoop configuration, so S3A endpoints and credentials
are the ones Spark uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurestream.io.jvm import java_class

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def filesystem(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """The Hadoop FileSystem serving `uri` and its Path."""
    path = java_class(spark, "org.apache.hadoop.fs.Path")(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = filesystem(spark, uri)
    return bool(fs.exists(path))


def glob(spark: SparkSession, pattern: str) -> list[str]:
    """Paths matching a Hadoop glob (`*`, `{a,b}`), as strings; [] when nothing matches."""
    fs, path = filesystem(spark, pattern)
    statuses = fs.globStatus(path)
    return [] if statuses is None else sorted(str(status.getPath().toString()) for status in statuses)


def list_names(spark: SparkSession, uri: str) -> list[str]:
    fs, path = filesystem(spark, uri)
    if not fs.exists(path):
        return []
    return sorted(str(status.getPath().getName()) for status in fs.listStatus(path))


def read_text(spark: SparkSession, uri: str) -> str:
    fs, path = filesystem(spark, uri)
    stream = fs.open(path)
    try:
        return str(java_class(spark, "org.apache.commons.io.IOUtils").toString(stream, "UTF-8"))
    finally:
        stream.close()


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    """Write a small file whole: a hidden temporary file beside it, then a rename over it."""
    fs, path = filesystem(spark, uri)
    parent = path.getParent()
    fs.mkdirs(parent)
    tmp = java_class(spark, "org.apache.hadoop.fs.Path")(parent, f".{path.getName()}.tmp")
    stream = fs.create(tmp, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    # Hadoop's rename does not replace an existing target on every file system: remove it first.
    if fs.exists(path):
        fs.delete(path, False)
    if not fs.rename(tmp, path):
        raise OSError(f"could not rename {tmp} to {uri}")


def delete(spark: SparkSession, uri: str, recursive: bool = True) -> bool:
    fs, path = filesystem(spark, uri)
    return bool(fs.delete(path, recursive))


def rename(spark: SparkSession, source: str, target: str) -> None:
    """Move a file or folder (on S3A a copy and a delete); the target's parent is created.

    Across file systems (a local staging folder, an s3a:// target) it is a copy, then a delete.
    """
    fs, path = filesystem(spark, source)
    target_fs, destination = filesystem(spark, target)
    target_fs.mkdirs(destination.getParent())
    if fs.getUri().equals(target_fs.getUri()):
        moved = fs.rename(path, destination)
    else:
        conf = spark.sparkContext._jsc.hadoopConfiguration()
        moved = java_class(spark, "org.apache.hadoop.fs.FileUtil").copy(fs, path, target_fs, destination, True, conf)
    if not moved:
        raise OSError(f"could not rename {source} to {target}")


def move_files(spark: SparkSession, moves: list[tuple[str, str]]) -> None:
    """Move many files (source, target), replacing a target that exists; each target's parent is created.

    The same as `rename` per file, with each file system and folder looked up once: a backfill
    moves a file per hour of its range (720 for 30 days), and each py4j call costs a round trip.
    """
    if not moves:
        return
    path_class = java_class(spark, "org.apache.hadoop.fs.Path")
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    fs = path_class(moves[0][0]).getFileSystem(conf)
    target_fs = path_class(moves[0][1]).getFileSystem(conf)
    same = bool(fs.getUri().equals(target_fs.getUri()))
    file_util = java_class(spark, "org.apache.hadoop.fs.FileUtil")
    made: set[str] = set()
    for source, target in moves:
        parent = target.rpartition("/")[0]
        if parent not in made:
            target_fs.mkdirs(path_class(parent))
            made.add(parent)
        path, destination = path_class(source), path_class(target)
        if same:
            # Hadoop's rename does not replace an existing target on every file system.
            moved = fs.rename(path, destination) or (fs.delete(destination, False) and fs.rename(path, destination))
        else:
            moved = file_util.copy(fs, path, target_fs, destination, True, True, conf)
        if not moved:
            raise OSError(f"could not rename {source} to {target}")


def list_files(spark: SparkSession, uri: str) -> list[str]:
    """Every file under `uri`, recursively, as full paths; [] when it does not exist."""
    fs, path = filesystem(spark, uri)
    if not fs.exists(path):
        return []
    found = []
    files = fs.listFiles(path, True)
    while files.hasNext():
        found.append(str(files.next().getPath().toString()))
    return sorted(found)


def mkdirs(spark: SparkSession, uri: str) -> None:
    fs, path = filesystem(spark, uri)
    fs.mkdirs(path)
