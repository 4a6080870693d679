"""Write one partition's records: chunks → a bounded thread pool → BatchWriteRecord or PutRecord.

Every call passes the worker's token bucket first. Throttles, 5xx, connection errors and
timeouts are retried with full-jitter back-off, within `max_attempts` per call and the batch's
deadline; past either the task fails (and with it the micro-batch). Records the service
rejects for good (ValidationError) become DLQ entries and the partition goes on.
BatchWriteRecord's UnprocessedEntries are retried; an unknown BatchWriteRecord falls back to
PutRecord for the rest of the worker's life (write_mode auto).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice
from typing import Any

from featurestream.connectors.writer.client import batch_write_body, prepare, runtime_client, supports_batch_write
from featurestream.connectors.writer.dlq import DlqEntry
from featurestream.connectors.writer.errors import BatchWriteUnsupported, RetriesExhausted, WriteFailed
from featurestream.connectors.writer.metrics import PartitionMetrics
from featurestream.connectors.writer.plan import WritePlan
from featurestream.connectors.writer.rate_limit import worker_bucket
from featurestream.connectors.writer.records import Record, encode_string
from featurestream.connectors.writer.retry import (
    Backoff,
    Deadline,
    Outcome,
    classify,
    classify_code,
    error_code,
    error_message,
)

log = logging.getLogger(__name__)

# BatchWriteRecord takes 1 to 25 entries per call; chunks are as large as it allows.
MAX_BATCH_ENTRIES = 25
# The `sink` column of this writer's DLQ rows (the AWS connector's rows say `sagemaker-connector`).
SINK_NAME = "featurestream"

# Endpoints where BatchWriteRecord turned out not to exist (per worker process).
_no_batch_write: set[str | None] = set()
_no_batch_lock = threading.Lock()


class _Stopped(Exception):
    """Another thread of this partition failed; stop submitting work."""


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


class PartitionWriter:
    def __init__(self, plan: WritePlan, client: Any | None = None) -> None:
        self.plan = plan
        target, settings = plan.target, plan.settings
        self.feature_group = target.feature_group_name
        self.identifier, self.event_time = target.record_identifier, target.event_time_feature
        self.mode = settings.write_mode
        self.threads = settings.threads_per_partition
        self.client = client if client is not None else runtime_client(
            target.region, plan.endpoint_url, self.threads, settings.call_timeout_s)
        self.bucket = worker_bucket(self.feature_group, plan.worker_tps)
        self.deadline = Deadline.from_epoch(plan.deadline_epoch)
        self.backoff = Backoff(settings.backoff_base_ms / 1000.0, settings.backoff_cap_ms / 1000.0)
        self.metrics = PartitionMetrics()
        self.dlq: list[DlqEntry] = []
        self._dlq_lock = threading.Lock()
        self._failed = threading.Event()
        self._rng = random.Random()
        available = supports_batch_write(self.client)
        if self.mode == "batch" and not available:
            raise BatchWriteUnsupported("write_mode is 'batch' but this botocore has no BatchWriteRecord")
        self._batch = self.mode != "put" and available
        # Bodies are built here as text (see client.py) unless the client validates parameters.
        self._prepared_bodies = prepare(self.client)
        self._entry_head = '{"FeatureGroupName":' + encode_string(self.feature_group) + ',"Record":'

    # -- driving the pool ---------------------------------------------------------------------
    def write(self, records: Iterable[Record]) -> None:
        """Write every record (or dead-letter it); raise the first failure that ends the task."""
        size = MAX_BATCH_ENTRIES if self._use_batch() else 1
        window = 2 * self.threads
        inflight: set[Future[None]] = set()
        error: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="fs-writer") as pool:
            for chunk in _chunks(self._valid(records), size):
                if len(inflight) >= window:
                    done, inflight = self._settle(inflight, FIRST_COMPLETED)
                    error = error or self._first_error(done)
                if error is not None:
                    break
                inflight.add(pool.submit(self._write_chunk, chunk))
            done, _ = self._settle(inflight, None)
            error = error or self._first_error(done)
        if error is not None:
            raise error

    def _settle(self, futures: set[Future[None]], when: str | None) -> tuple[set[Future[None]], set[Future[None]]]:
        if when is None:
            done, pending = wait(futures)
        else:
            done, pending = wait(futures, return_when=when)
        return set(done), set(pending)

    def _first_error(self, done: set[Future[None]]) -> BaseException | None:
        for future in done:
            exc = future.exception()
            if exc is not None and not isinstance(exc, _Stopped):
                self._failed.set()
                return exc
        return None

    def _valid(self, records: Iterable[Record]) -> Iterator[Record]:
        """Count the records; dead-letter those no service call could accept."""
        seen = 0
        try:
            for record in records:
                seen += 1
                if not record.identifier:
                    self._reject(record, "MissingRecordIdentifier", f"no record identifier ({self.identifier})")
                elif record.event_time is None:
                    self._reject(record, "MissingEventTime", f"no event time ({self.event_time})")
                else:
                    yield record
        finally:
            self.metrics.add(records=seen)

    def _use_batch(self) -> bool:
        if not self._batch:
            return False
        if self.mode == "batch":
            return True  # required: an unsupported service fails the batch instead
        with _no_batch_lock:
            return self.plan.endpoint_url not in _no_batch_write

    # -- one chunk ----------------------------------------------------------------------------
    def _write_chunk(self, chunk: list[Record]) -> None:
        try:
            if self._use_batch():
                self._batch_write(chunk)
            else:
                for record in chunk:
                    self._put(record)
        except _Stopped:
            raise
        except BaseException:
            # Siblings stop at their next call instead of writing on into a failed batch.
            self._failed.set()
            raise

    def _batch_write(self, records: list[Record]) -> None:
        pending = records
        attempt = 0
        while pending:
            self._gate()
            try:
                response = self._send_batch(pending)
            except Exception as exc:
                outcome = classify(exc)
                if outcome is Outcome.UNSUPPORTED:
                    self._fall_back(exc)
                    for record in pending:
                        self._put(record)
                    return
                if outcome is Outcome.REJECTED:
                    # The request as a whole was refused: PutRecord each entry to find the bad one.
                    self.metrics.add(fallbacks=1)
                    for record in pending:
                        self._put(record)
                    return
                if outcome is Outcome.FATAL:
                    raise WriteFailed(f"BatchWriteRecord to {self.feature_group} failed: "
                                      f"{error_code(exc)}: {error_message(exc)}") from exc
                self._before_retry(attempt, outcome, error_code(exc))
                attempt += 1
                continue
            pending = self._settle_response(pending, response)
            if pending:
                self._before_retry(attempt, Outcome.THROTTLED, "UnprocessedEntries")
                attempt += 1

    def _send_batch(self, records: list[Record]) -> Any:
        """One BatchWriteRecord call; the body is a join of the records' JSON texts."""
        if not self._prepared_bodies:
            entries = [{"FeatureGroupName": self.feature_group, "Record": r.values} for r in records]
            return self._timed(self.client.batch_write_record, Entries=entries)
        head = self._entry_head
        body = '{"Entries":[' + ",".join([head + r.record_json + "}" for r in records]) + "]}"
        return self._timed(batch_write_body, self.client, body.encode())

    def _settle_response(self, sent: list[Record], response: dict[str, Any]) -> list[Record]:
        """Account for one BatchWriteRecord response; return the records to send again."""
        by_id = {r.identifier: r for r in sent}
        again: list[Record] = []
        failed = 0
        for error in response.get("Errors") or []:
            failed += 1
            record = self._match(by_id, error.get("Entry"))
            code = str(error.get("ErrorCode") or "Unknown")
            outcome = classify_code(code)
            if outcome is Outcome.REJECTED:
                self._reject(record, code, str(error.get("ErrorMessage") or ""))
            elif outcome in (Outcome.THROTTLED, Outcome.TRANSIENT):
                again.append(record)
            else:
                raise WriteFailed(f"BatchWriteRecord entry for {self.feature_group} failed: "
                                  f"{code}: {error.get('ErrorMessage')}")
        for entry in response.get("UnprocessedEntries") or []:
            failed += 1
            again.append(self._match(by_id, entry))
        self.metrics.add(written=len(sent) - failed)
        return again

    def _match(self, by_id: dict[str | None, Record], entry: Any) -> Record:
        """The record we sent for an echoed entry (matched by its record identifier)."""
        values = (entry or {}).get("Record") or []
        ident = next((v.get("ValueAsString") for v in values if v.get("FeatureName") == self.identifier), None)
        record = by_id.get(ident)
        if record is not None:
            return record
        when = next((v.get("ValueAsString") for v in values if v.get("FeatureName") == self.event_time), None)
        return Record.from_values(ident, when, list(values))

    def _put(self, record: Record) -> None:
        attempt = 0
        while True:
            self._gate()
            try:
                self._timed(self.client.put_record, FeatureGroupName=self.feature_group, Record=record.values)
            except Exception as exc:
                outcome = classify(exc)
                if outcome is Outcome.REJECTED:
                    self._reject(record, error_code(exc), error_message(exc))
                    return
                if outcome in (Outcome.FATAL, Outcome.UNSUPPORTED):
                    raise WriteFailed(f"PutRecord to {self.feature_group} failed: "
                                      f"{error_code(exc)}: {error_message(exc)}") from exc
                self._before_retry(attempt, outcome, error_code(exc))
                attempt += 1
                continue
            self.metrics.add(written=1)
            return

    # -- shared steps -------------------------------------------------------------------------
    def _gate(self) -> None:
        """Before each call: stop if a sibling thread failed, then wait for a token."""
        if self._failed.is_set():
            raise _Stopped()
        if self.deadline.left() <= 0:
            raise RetriesExhausted(f"{self.feature_group}: batch time budget exhausted before the write ended")
        if self.bucket is not None:
            waited = self.bucket.acquire(self.deadline)
            if waited:
                self.metrics.add(rate_wait_s=waited)

    def _timed(self, operation: Any, *args: Any, **kwargs: Any) -> Any:
        """One API call, its round trip recorded as a latency sample."""
        started = time.perf_counter()
        try:
            return operation(*args, **kwargs)
        finally:
            self.metrics.call((time.perf_counter() - started) * 1000.0)

    def _before_retry(self, attempt: int, outcome: Outcome, code: str) -> None:
        """Count the retry, give up past max_attempts, else sleep the jittered back-off."""
        if attempt + 1 >= self.plan.settings.max_attempts:
            raise RetriesExhausted(
                f"{self.feature_group}: {self.plan.settings.max_attempts} attempts failed, last with {code}")
        self.metrics.add(retries=1, throttles=1 if outcome is Outcome.THROTTLED else 0)
        self.deadline.sleep(self.backoff.delay(attempt, self._rng), f"retrying after {code}")

    def _fall_back(self, exc: BaseException) -> None:
        if self.mode == "batch":
            raise BatchWriteUnsupported(
                f"write_mode is 'batch' but the service refused BatchWriteRecord: {error_code(exc)}") from exc
        with _no_batch_lock:
            first = self.plan.endpoint_url not in _no_batch_write
            _no_batch_write.add(self.plan.endpoint_url)
        self.metrics.add(fallbacks=1)
        if first:
            log.warning("BatchWriteRecord is not available (%s); writing with PutRecord from now on",
                        error_code(exc))

    def _reject(self, record: Record, code: str, message: str) -> None:
        entry = DlqEntry.rejected(self.feature_group, record, code, message, SINK_NAME)
        with self._dlq_lock:
            self.dlq.append(entry)
        self.metrics.add(dlq=1)
