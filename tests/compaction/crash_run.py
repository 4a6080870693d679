"""Run one compaction in this process and SIGKILL it at a named phase (used by test_crash.py).

    python -m tests.compaction.crash_run '<json spec>'

`phase` "write" kills while Spark's write is under way: as soon as the first task output file
appears under `data/_temporary`. Any other phase kills when the run reports that phase.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

from featurestream.compaction import CompactionSettings, FeatureGroupTarget, compact_feature_group
from featurestream.compaction.progress import Progress
from featurestream.compaction.schema import offline_schema
from featurestream.config.profile import SparkSpec
from featurestream.connectors.offline_store import StoreUri, list_files
from featurestream.io.s3a import configure_session, endpoint_from_env
from featurestream.spark import local_session


def die() -> None:
    # The whole process group: the driver JVM is our child and would otherwise finish the job.
    os.killpg(os.getpgid(0), signal.SIGKILL)


def watch_for_task_output(output: StoreUri) -> None:
    temporary = output.join("data", "_temporary")

    def poll() -> None:
        while True:
            try:
                if any(True for _ in list_files(temporary)):
                    die()
            except OSError:
                pass
            threading.Event().wait(0.005)

    threading.Thread(target=poll, daemon=True).start()


def main(spec: dict[str, Any]) -> None:
    output = StoreUri.parse(spec["output"])
    phase = spec["phase"]

    def hook(group: str, name: str, detail: str) -> None:
        if name == phase == "write":
            watch_for_task_output(output)
        elif name == phase:
            die()

    spark = local_session("compaction-crash", SparkSpec(master="local[1]", shuffle_partitions=2))
    if spec.get("bucket"):
        configure_session(spark, endpoint_from_env(), spec["settings"]["region"], [spec["bucket"]])
    target = FeatureGroupTarget(spec["name"], StoreUri.parse(spec["source"]), output, "id", "ts",
                                offline_schema(spec["features"]))
    compact_feature_group(spark, target, CompactionSettings(**spec["settings"]), Progress(hooks=[hook]))
    print("not killed", file=sys.stderr)
    sys.exit(3)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
