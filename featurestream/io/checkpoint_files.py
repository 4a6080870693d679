"""How Spark writes a streaming checkpoint's small files when the checkpoint is on the local disk.

Every micro-batch writes its offset log entry, its commit log entry and one state changelog file
per state partition, each as a temporary file renamed into place. Spark's default writer for
that (`FileContextBasedCheckpointFileManager`) goes through Hadoop's `FileContext`, which on the
local file system, without Hadoop's native library (pyspark ships none), sets each new file's
permissions by running `chmod` and checks each rename's source and target by running `readlink`:
about 80 short-lived processes per micro-batch of a one-group job on two state partitions
(measured with JFR's process-start events), on the batch's critical path.

`FileSystemBasedCheckpointFileManager` (Spark's own, for file systems without `FileContext`)
writes the same temporary files and renames them with `FileSystem.rename`, which on the local
file system is one rename(2): atomic, and a batch whose entry exists already is refused as
before (it checks first, as `FileContext` does). Spark's setting names one class for every
checkpoint of the session, so it is chosen only when the checkpoint root is on the local file
system (as Hadoop resolves it: a path without a scheme is local only when the default file
system is), and never over a class the session was given. HDFS and S3 checkpoints
keep Spark's default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurestream.io.hadoop_fs import filesystem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MANAGER_KEY = "spark.sql.streaming.checkpointFileManagerClass"
RENAME_MANAGER = "org.apache.spark.sql.execution.streaming.FileSystemBasedCheckpointFileManager"


def use_rename_on_local_disk(spark: SparkSession, checkpoint_root: str) -> bool:
    """Write the checkpoints under `checkpoint_root` with plain renames when it is local.

    Returns whether the setting is in force. A class the session already names (the profile's
    `spark.conf`, spark-submit's `--conf`) is left alone. Call it before the session's queries
    start (Spark reads it per query). A session reused for a checkpoint elsewhere (a test's, a
    notebook's) gets Spark's default back.
    """
    chosen = spark.conf.get(MANAGER_KEY, None)
    if chosen not in (None, RENAME_MANAGER):
        return False
    fs, _ = filesystem(spark, checkpoint_root)
    if str(fs.getScheme()) != "file":
        if chosen == RENAME_MANAGER:
            spark.conf.unset(MANAGER_KEY)
        return False
    spark.conf.set(MANAGER_KEY, RENAME_MANAGER)
    return True
