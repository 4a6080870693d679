"""OpenLineage run events for every job: START when it begins, COMPLETE / FAIL / ABORT at the end.

File transport by default (one JSON event per line, appended), HTTP (Marquez, DataHub, ...) when
the profile says `lineage.transport: http`; OpenLineage's standard variables (`OPENLINEAGE_URL`,
`_ENDPOINT`, `_API_KEY`, `_NAMESPACE`, `_DISABLED`) override the profile (`from_environment`).
Emitting never fails a job: an error is logged and
counted (`featurestream_lineage_errors_total`). Dataset names follow OpenLineage's naming spec:
Kafka `kafka://host:port` + topic, S3 `s3://bucket` + key, local files `file` + absolute path; a
SageMaker feature group is `arn:aws:sagemaker:<region>:<account>` + `feature-group/<name>`.

`LineageRun.reference()` is what other artefacts (a training-set manifest) store to point at the
run that produced them. A run started by a scheduler carries OpenLineage's `parent` run facet
(the task's run, and the root: the DAG run), read by `featurestream.ops.parent_run`.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from featurestream.config.profile import LineageSpec
from featurestream.ops.parent_run import ParentRun

log = logging.getLogger(__name__)

PRODUCER = "https://github.com/featurestream/featurestream"
FACET_SCHEMA = PRODUCER + "/blob/main/docs/operations.md#lineage"
Processing = Literal["STREAMING", "BATCH"]


@dataclass(frozen=True)
class DatasetRef:
    namespace: str
    name: str
    # (column, type) pairs for OpenLineage's schema facet.
    fields: tuple[tuple[str, str], ...] = ()


def kafka_topic(bootstrap_servers: str, topic: str, fields: Sequence[tuple[str, str]] = ()) -> DatasetRef:
    first = bootstrap_servers.split(",")[0].strip()
    return DatasetRef(f"kafka://{first}", topic, tuple(fields))


def path_dataset(uri: str, fields: Sequence[tuple[str, str]] = ()) -> DatasetRef:
    """s3://, s3a://, hdfs://, file:// or a local path."""
    parts = urlsplit(uri)
    if parts.scheme in ("s3", "s3a", "s3n"):
        return DatasetRef(f"s3://{parts.netloc}", parts.path.lstrip("/"), tuple(fields))
    if parts.scheme and parts.scheme != "file":
        return DatasetRef(f"{parts.scheme}://{parts.netloc}", parts.path, tuple(fields))
    local = parts.path if parts.scheme == "file" else uri
    return DatasetRef("file", str(Path(local).resolve()), tuple(fields))


def feature_group(name: str, region: str, account: str | None = None,
                  fields: Sequence[tuple[str, str]] = ()) -> DatasetRef:
    namespace = f"arn:aws:sagemaker:{region}:{account}" if account else f"arn:aws:sagemaker:{region}"
    return DatasetRef(namespace, f"feature-group/{name}", tuple(fields))


_JDBC_SCHEMES = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def jdbc_table(url: str, table: str | None = None, query: str | None = None) -> DatasetRef:
    """A JDBC table (or query) by OpenLineage's naming: `postgres://host:port` + `db.schema.table`,
    `mysql://host:port` + `db.table`. The URL is masked first and its parameters (user, options)
    left out, so no credential can reach a lineage record; a query is named by a hash of its text."""
    import hashlib

    from featurestream.config.credentials import redact

    parts = urlsplit(redact(url).removeprefix("jdbc:"))
    scheme = _JDBC_SCHEMES.get(parts.scheme, parts.scheme)
    host = parts.hostname or "localhost"
    namespace = f"{scheme}://{host}:{parts.port}" if parts.port else f"{scheme}://{host}"
    database = parts.path.strip("/") or "default"
    if table is not None:
        if scheme == "postgres" and "." not in table:
            table = f"public.{table}"
        return DatasetRef(namespace, f"{database}.{table}")
    digest = hashlib.sha256(str(query).encode("utf-8")).hexdigest()[:12]
    return DatasetRef(namespace, f"{database}.query_{digest}")


def account_of(arn: str | None) -> str | None:
    """The account id of an ARN (`arn:aws:iam::123456789012:role/x` → `123456789012`)."""
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


_TRUE = ("1", "true", "yes", "on")


def from_environment(spec: LineageSpec, env: Mapping[str, str] | None = None) -> LineageSpec:
    """The profile's settings with OpenLineage's standard variables on top, as every OpenLineage
    integration reads them: `OPENLINEAGE_DISABLED` (no events), `OPENLINEAGE_URL` (HTTP transport to
    it, with `OPENLINEAGE_ENDPOINT` and `OPENLINEAGE_API_KEY`), `OPENLINEAGE_NAMESPACE` (the jobs'
    namespace). A value the profile would refuse (a URL with a password) is a warning and ignored."""
    environ = os.environ if env is None else env
    if environ.get("OPENLINEAGE_DISABLED", "").strip().lower() in _TRUE:
        return spec.model_copy(update={"transport": "none"})
    update: dict[str, Any] = {}
    if environ.get("OPENLINEAGE_NAMESPACE", "").strip():
        update["namespace"] = environ["OPENLINEAGE_NAMESPACE"].strip()
    if environ.get("OPENLINEAGE_URL", "").strip():
        update.update(transport="http", url=environ["OPENLINEAGE_URL"].strip(),
                      endpoint=environ.get("OPENLINEAGE_ENDPOINT", "").strip() or spec.endpoint)
        if environ.get("OPENLINEAGE_API_KEY"):
            update["api_key_env"] = "OPENLINEAGE_API_KEY"
    if not update:
        return spec
    try:
        return LineageSpec.model_validate({**spec.model_dump(), **update})
    except ValueError as exc:
        from featurestream.config.credentials import redact

        reason = redact(str(exc).strip().splitlines()[-1])[:300]
        log.warning(json.dumps({"event": "lineage_environment_ignored", "error": reason}))
        return spec


def default_file() -> str:
    state = os.environ.get("FEATURESTREAM_STATE_DIR") or ".state"
    return str(Path(state) / "lineage" / "openlineage.jsonl")


def _client(spec: LineageSpec) -> Any:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

    if spec.transport == "file":
        path = Path(spec.file or default_file())
        path.parent.mkdir(parents=True, exist_ok=True)
        return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))
    assert spec.url is not None
    retry = {"total": spec.retries, "read": spec.retries, "connect": spec.retries, "backoff_factor": 0.3,
             "status_forcelist": [500, 502, 503, 504], "allowed_methods": ["HEAD", "POST"]}
    config = HttpConfig(url=spec.url, endpoint=spec.endpoint, timeout=spec.timeout_s, retry=retry)
    if spec.api_key_env:
        from featurestream.ops.secrets import register_secret

        key = os.environ.get(spec.api_key_env, "")
        register_secret(key)
        config.auth = ApiKeyTokenProvider({"apiKey": key})
    return OpenLineageClient(transport=HttpTransport(config))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class LineageRun:
    """One run of one job; emits its events through the profile's transport."""

    def __init__(self, spec: LineageSpec, job: str, processing: Processing, *,
                 properties: dict[str, Any] | None = None, on_error: Callable[[], None] | None = None,
                 parent: ParentRun | None = None) -> None:
        from openlineage.client.uuid import generate_new_uuid

        spec = from_environment(spec)
        self.spec = spec
        self.job = job
        self.processing = processing
        self.run_id = str(generate_new_uuid())
        self.properties = dict(properties or {})
        self.parent = parent
        self._on_error = on_error
        self._client: Any = None
        self._inputs: list[DatasetRef] = []
        self._outputs: list[DatasetRef] = []
        self.ended = False
        if spec.transport != "none":
            try:
                self._client = _client(spec)
            except Exception as exc:
                self._failed("lineage_transport", exc)

    def reference(self) -> dict[str, Any]:
        """Where to find this run's events: for manifests and logs."""
        where: str | None = None
        if self.spec.transport == "file":
            where = str(Path(self.spec.file or default_file()).resolve())
        elif self.spec.url:
            parts = urlsplit(self.spec.url)
            where = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        return {"namespace": self.spec.namespace, "job": self.job, "run_id": self.run_id,
                "transport": self.spec.transport, "location": where,
                "parent": self.parent.describe() if self.parent is not None else None}

    def start(self, inputs: Sequence[DatasetRef], outputs: Sequence[DatasetRef]) -> None:
        self._inputs, self._outputs = list(inputs), list(outputs)
        self._emit("START")

    def complete(self, output_rows: dict[str, int] | None = None) -> None:
        self._emit("COMPLETE", output_rows=output_rows)

    def fail(self, error: BaseException | str) -> None:
        self._emit("FAIL", error=error)

    def abort(self, reason: str) -> None:
        self._emit("ABORT", error=reason)

    def _failed(self, what: str, exc: BaseException) -> None:
        log.warning(json.dumps({"event": what + "_failed", "job": self.job, "error": str(exc)[:300]}))
        if self._on_error is not None:
            self._on_error()

    def _emit(self, state: str, *, error: BaseException | str | None = None,
              output_rows: dict[str, int] | None = None) -> None:
        if state != "START":
            if self.ended:
                return
            self.ended = True
        if self._client is None:
            return
        try:
            self._client.emit(self._event(state, error, output_rows or {}))
        except Exception as exc:
            self._failed("lineage_emit", exc)

    def _event(self, state: str, error: BaseException | str | None, output_rows: dict[str, int]) -> Any:
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
        from openlineage.client.generated.job_type_job import JobTypeJobFacet
        from openlineage.client.generated.output_statistics_output_dataset import OutputStatisticsOutputDatasetFacet
        from openlineage.client.generated.processing_engine_run import ProcessingEngineRunFacet

        run_facets: dict[str, Any] = {
            "processing_engine": ProcessingEngineRunFacet(version=_spark_version(), name="spark",
                                                          openlineageAdapterVersion=_own_version(),
                                                          producer=PRODUCER),
            "featurestream": _properties_facet(self.properties),
        }
        if self.parent is not None:
            run_facets["parent"] = _parent_facet(self.parent)
        if error is not None:
            from featurestream.ops.secrets import redact

            trace = None
            if isinstance(error, BaseException):
                trace = redact("".join(traceback.format_exception(error))[-8000:])
            run_facets["errorMessage"] = ErrorMessageRunFacet(message=redact(str(error)[:2000]),
                                                              programmingLanguage="PYTHON",
                                                              stackTrace=trace, producer=PRODUCER)
        job_facets: dict[str, Any] = {"jobType": JobTypeJobFacet(processingType=self.processing, integration="SPARK",
                                                 jobType="JOB", producer=PRODUCER)}
        inputs = [InputDataset(namespace=d.namespace, name=d.name, facets=_schema_facets(d)) for d in self._inputs]
        outputs = []
        for dataset in self._outputs:
            stats: dict[str, Any] = {}
            if dataset.name in output_rows:
                stats["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=output_rows[dataset.name],
                                                                               producer=PRODUCER)
            outputs.append(OutputDataset(namespace=dataset.namespace, name=dataset.name,
                                         facets=_schema_facets(dataset), outputFacets=stats))
        return RunEvent(eventType=getattr(RunState, state), eventTime=_now(), producer=PRODUCER,
                        run=Run(runId=self.run_id, facets=run_facets),
                        job=Job(namespace=self.spec.namespace, name=self.job, facets=job_facets),
                        inputs=inputs, outputs=outputs)


def _parent_facet(parent: ParentRun) -> Any:
    from openlineage.client.generated.parent_run import Job, ParentRunFacet, Root, RootJob, RootRun
    from openlineage.client.generated.parent_run import Run as ParentRunRef

    parent_job = Job(namespace=parent.parent.namespace, name=parent.parent.name)
    root = Root(run=RootRun(runId=parent.root.run_id),
                job=RootJob(namespace=parent.root.namespace, name=parent.root.name))
    return ParentRunFacet(run=ParentRunRef(runId=parent.parent.run_id), job=parent_job, root=root,
                          producer=PRODUCER)


def _schema_facets(dataset: DatasetRef) -> dict[str, Any]:
    if not dataset.fields:
        return {}
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet, SchemaDatasetFacetFields

    fields = [SchemaDatasetFacetFields(name=name, type=type_name) for name, type_name in dataset.fields]
    return {"schema": SchemaDatasetFacet(fields=fields, producer=PRODUCER)}


def _properties_facet(properties: dict[str, Any]) -> Any:
    """Our own run facet: the job's settings that matter to a reader of the lineage graph."""
    from openlineage.client.generated.base import RunFacet

    from featurestream.ops.secrets import redact

    # Values are the job's settings (files, profile names, options): masked like a log line.
    cleaned = {key: redact(value) if isinstance(value, str) else value for key, value in properties.items()}
    facet = RunFacet(producer=PRODUCER).with_additional_properties(**cleaned)
    facet._schemaURL = FACET_SCHEMA
    return facet


def _spark_version() -> str:
    try:
        import pyspark

        return str(pyspark.__version__)
    except ImportError:
        return "unknown"


def _own_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("featurestream")
    except PackageNotFoundError:
        return "unknown"


@contextmanager
def job_run(spec: LineageSpec, job: str, inputs: Sequence[DatasetRef], outputs: Sequence[DatasetRef], *,
            processing: Processing = "BATCH", properties: dict[str, Any] | None = None,
            parent: ParentRun | None = None) -> Iterator[LineageRun]:
    """START now; COMPLETE when the block ends, FAIL with the error when it raises (for batch jobs)."""
    run = LineageRun(spec, job, processing, properties=properties, parent=parent)
    run.start(inputs, outputs)
    try:
        yield run
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            run.abort("interrupted")
        else:
            run.fail(exc)
        raise
    run.complete()
