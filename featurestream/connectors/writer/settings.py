"""How the online-store writer behaves: one frozen, picklable value shipped to the executors.

`FeatureStoreSpec` (the profile's `feature_store:` section) is the one model of these knobs: it
holds their defaults, bounds and meaning. `WriterSettings` is what the sinks read, made from it by
one conversion (`from_spec`) that copies the fields of the same name, so a new knob is a field of
the spec, a field here and the code that uses it; no default is written twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Literal

from featurestream.config.profile import FeatureStoreSpec

WriteMode = Literal["auto", "batch", "put"]
SinkKind = Literal["featurestream", "sagemaker-connector"]


@dataclass(frozen=True)
class WriterSettings:
    """The writer's view of `FeatureStoreSpec`; see it for what each knob means and its default."""

    sink: SinkKind
    write_mode: WriteMode
    threads_per_partition: int
    max_attempts: int
    account_tps: float | None
    executors: int | None
    backoff_base_ms: int
    backoff_cap_ms: int
    batch_timeout_s: float
    call_timeout_s: float
    # The profile's own `dlq_path`, else the caller's default for this feature group.
    dlq_path: str | None
    dlq_max_records_per_batch: int
    runtime_endpoint_url: str | None
    driver_write_max_records: int

    @classmethod
    def from_spec(cls, store: FeatureStoreSpec, dlq_path: str | None, *, local_master: bool = False) -> WriterSettings:
        """The one conversion: every field from the spec's field of the same name.

        `dlq_path` is used when the profile names none; `local_master`: Spark runs in local mode
        (the default of `driver_write_max_records` depends on it).
        """
        values = {f.name: getattr(store, f.name) for f in fields(cls)}
        values["dlq_path"] = store.dlq_path or dlq_path
        values["driver_write_max_records"] = store.driver_write_limit(local_master)
        return cls(**values)


def runtime_endpoint(settings: WriterSettings) -> str | None:
    """The endpoint the executors use, resolved on the driver.

    Python workers inherit the environment of the JVM at its launch, not the driver's current
    one, so an AWS_ENDPOINT_URL_* override is read here and shipped with the plan.
    """
    return (
        settings.runtime_endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def worker_tps(account_tps: float | None, executors: int, slots_per_executor: int) -> float | None:
    """Calls per second one Python worker may make.

    Each executor's budget is `account_tps / executors`; it runs one Python worker per task slot,
    each with its own token bucket, so a worker gets the executor's budget over its slots. At most
    every slot writes at once, so the sum never exceeds the account budget (with fewer partitions
    than slots some of it goes unused, which is the safe side).
    """
    if account_tps is None:
        return None
    return account_tps / max(1, executors) / max(1, slots_per_executor)
