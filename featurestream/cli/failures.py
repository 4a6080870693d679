"""Known exception families as one line a user can act on: what went wrong and why.

The entry point prints `featurestream: <what>: <cause>`; this module writes the cause. Modules
are looked up in sys.modules rather than imported: an exception of botocore, py4j or pyspark can
only exist if its module was loaded, and the CLI stays fast and free of optional dependencies.
"""

from __future__ import annotations

import re
import sys
from typing import Any

# ClientError codes that mean "who you are" rather than "what you asked".
AUTH_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "AccessForbidden", "AuthFailure", "ExpiredToken",
    "ExpiredTokenException", "IncompleteSignature", "InvalidAccessKeyId", "InvalidClientTokenId",
    "InvalidSignatureException", "MissingAuthenticationToken", "MissingAuthenticationTokenException",
    "RequestExpired", "SignatureDoesNotMatch", "UnauthorizedOperation", "UnrecognizedClientException",
})
CREDENTIALS_HINT = ("set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run with a role; "
                    "locally: eval \"$(featurestream stack env)\"")
_MAX = 500

# The line naming the innermost Python or Java exception inside a py4j/StreamingQueryException text.
_CAUSE = re.compile(r"^\s*(?:Caused by: )?([\w.$]+(?:Error|Exception)): (.+)$", re.MULTILINE)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"]+)")


# Spark's Kafka source, failOnDataLoss=true: "Cannot fetch offset 100 (GroupId: ..., TopicPartition: t-0)".
_LOST_AT = re.compile(r"offset (\d+) \(GroupId: [^,]*, TopicPartition: ([^)\s]+)\)")


# The Kafka client itself, when Spark lets its exception through: "Fetch position FetchPosition{offset=1054,
# ...} is out of range for partition t-1".
_OUT_OF_RANGE = re.compile(r"OffsetOutOfRangeException: Fetch position FetchPosition\{offset=(\d+).*? is out of "
                           r"range for partition (\S+)")


def kafka_data_loss(text: str) -> str | None:
    """Where a query failed because Kafka records it had not read are gone; None for other errors.

    Spark names the source option in its own message (whatever its wording or error class); some
    paths let the Kafka client's OffsetOutOfRangeException through instead.
    """
    out = _OUT_OF_RANGE.search(text)
    if out:
        return f"offset {out.group(1)} of {out.group(2)}"
    if "failOnDataLoss" not in text:
        return None
    at = _LOST_AT.search(text)
    return f"offset {at.group(1)} of {at.group(2)}" if at else "some offsets"


def summarise_error(text: str) -> str:
    """One line: the innermost `SomeError: message`, not the 200-line trace around it."""
    causes = [m for m in _CAUSE.finditer(text) if "py4j" not in m.group(1) and "Proxy" not in m.group(2)]
    if causes:
        return f"{causes[-1].group(1)}: {causes[-1].group(2)}"[:1000]
    lines = text.strip().splitlines()
    return lines[0][:1000] if lines else ""


def first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:_MAX]


def _is(exc: BaseException, module: str, *names: str) -> bool:
    """isinstance against classes of `module`, only if that module is loaded."""
    loaded = sys.modules.get(module)
    classes = tuple(c for c in (getattr(loaded, n, None) for n in names) if isinstance(c, type))
    return bool(classes) and isinstance(exc, classes)


def _endpoint(exc: Any) -> str:
    kwargs = getattr(exc, "kwargs", {}) or {}
    url = kwargs.get("endpoint_url") or kwargs.get("proxy_url") or "the endpoint"
    why = _ERRNO.search(str(kwargs.get("error", "")))
    return f"{url}" + (f" ({why.group(1).strip().lower()})" if why else "")


def _botocore(exc: BaseException) -> str | None:
    module = "botocore.exceptions"
    if _is(exc, module, "NoCredentialsError"):
        return f"no AWS credentials found ({CREDENTIALS_HINT})"
    if _is(exc, module, "PartialCredentialsError", "CredentialRetrievalError", "TokenRetrievalError", "SSOError"):
        return f"AWS credentials: {first_line(exc)}"
    if _is(exc, module, "ConnectTimeoutError"):
        return f"timed out connecting to {_endpoint(exc)}"
    if _is(exc, module, "ReadTimeoutError"):
        return f"no answer in time from {_endpoint(exc)}"
    if _is(exc, module, "EndpointConnectionError", "ProxyConnectionError", "ConnectionClosedError"):
        return f"cannot reach {_endpoint(exc)}"
    if _is(exc, module, "NoRegionError"):
        return "no AWS region: set AWS_REGION (or the profile's region)"
    if _is(exc, module, "ClientError"):
        error = getattr(exc, "response", {}).get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", "")).strip()
        operation = getattr(exc, "operation_name", "the request")
        if code in AUTH_CODES:
            return f"AWS refused the credentials for {operation} ({code}: {message}); {CREDENTIALS_HINT}"[:_MAX]
        return f"AWS {operation} failed: {code}: {message}"[:_MAX]
    if _is(exc, module, "BotoCoreError"):
        return f"AWS: {first_line(exc)}"
    return None


def _spark(exc: BaseException) -> str | None:
    java = getattr(exc, "java_exception", None)
    if _is(exc, "py4j.protocol", "Py4JJavaError") and java is not None:
        try:
            return f"Spark: {summarise_error(str(java.toString()))}"[:_MAX]
        except Exception:  # the JVM may be gone; the Python text still has the Java message
            return f"Spark: {summarise_error(str(exc))}"[:_MAX]
    if _is(exc, "py4j.protocol", "Py4JNetworkError") or _is(exc, "py4j.protocol", "Py4JError"):
        return f"lost the connection to Spark's JVM: {first_line(exc)}"
    if _is(exc, "pyspark.errors", "PySparkRuntimeError") and "JAVA_GATEWAY_EXITED" in str(exc):
        return "Spark did not start: its Java process exited (is Java 17 installed, JAVA_HOME right?)"
    if _is(exc, "pyspark.errors", "PySparkException"):
        return f"Spark: {summarise_error(str(exc))}"[:_MAX]
    return None


def describe(exc: BaseException) -> str:
    """The cause of `exc` in one line (never a traceback)."""
    known = _botocore(exc) or _spark(exc)
    if known:
        return known
    if _is(exc, "kafka.errors", "NoBrokersAvailable"):
        return "cannot reach Kafka (no broker answered at the bootstrap servers)"
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror.lower()}{where}"
    return f"{type(exc).__name__}: {first_line(exc)} (run with --debug for the traceback)"
