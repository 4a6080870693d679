"""Which failures are retried, and how long to wait: full-jitter exponential back-off."""

from __future__ import annotations

import enum
import random
import time
from dataclasses import dataclass

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import HTTPError as Urllib3Error

from featurestream.connectors.writer.errors import RetriesExhausted


class Outcome(enum.Enum):
    THROTTLED = "throttled"  # retry after back-off; counted as a throttle
    TRANSIENT = "transient"  # 5xx, connection error, timeout: retry after back-off
    REJECTED = "rejected"  # the record itself is invalid: dead-letter it
    UNSUPPORTED = "unsupported"  # the operation does not exist here: fall back
    FATAL = "fatal"  # no retry helps (missing group, access denied): fail the batch


THROTTLE_CODES = frozenset({
    "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException", "SlowDown",
})
TRANSIENT_CODES = frozenset({
    "ServiceUnavailable", "InternalFailure", "InternalServerError", "InternalError",
    "RequestTimeout", "RequestTimeoutException", "ServiceException",
})
REJECT_CODES = frozenset({"ValidationError", "ValidationException", "SerializationException"})
UNSUPPORTED_CODES = frozenset({"UnknownOperationException", "UnknownOperation", "InvalidAction", "NotImplemented"})


def classify_code(code: str | None, status: int | None = None) -> Outcome:
    """An AWS error code (and HTTP status when known) → what the writer does about it."""
    if code in THROTTLE_CODES:
        return Outcome.THROTTLED
    if code in TRANSIENT_CODES:
        return Outcome.TRANSIENT
    if code in REJECT_CODES:
        return Outcome.REJECTED
    if code in UNSUPPORTED_CODES:
        return Outcome.UNSUPPORTED
    if status is not None and (status >= 500 or status == 429):
        return Outcome.TRANSIENT if status != 429 else Outcome.THROTTLED
    return Outcome.FATAL


def classify(exc: BaseException) -> Outcome:
    """A boto3 call's exception → outcome. Connection trouble and timeouts are transient."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return classify_code(error.get("Code"), status)
    if isinstance(exc, (BotoConnectionError, EndpointConnectionError, ConnectionClosedError,
                        ReadTimeoutError, ConnectTimeoutError, Urllib3Error, ConnectionError, TimeoutError)):
        return Outcome.TRANSIENT
    return Outcome.FATAL


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def error_message(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message") or exc)
    return str(exc)


@dataclass(frozen=True)
class Backoff:
    """Full jitter (AWS Architecture Blog, "Exponential Backoff and Jitter"): spreads retries of
    many threads so they do not hit the service again in lockstep."""

    base_s: float
    cap_s: float

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to sleep before retry number `attempt` (0 for the first retry)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * (2.0 ** min(attempt, 30))))


class Deadline:
    """The end of the micro-batch's time budget, on this process's monotonic clock."""

    def __init__(self, seconds_left: float) -> None:
        self.at = time.monotonic() + seconds_left

    @classmethod
    def from_epoch(cls, epoch_s: float) -> Deadline:
        """The driver sends wall-clock time; convert once to monotonic on the executor."""
        return cls(epoch_s - time.time())

    def left(self) -> float:
        return self.at - time.monotonic()

    def sleep(self, seconds: float, what: str) -> None:
        """Sleep, or raise RetriesExhausted if the sleep would end past the deadline."""
        if seconds > self.left():
            raise RetriesExhausted(f"batch time budget exhausted while {what}")
        if seconds > 0:
            time.sleep(seconds)
