"""Plane-neutral API errors.

Handlers raise these; the server renders each one with the code and HTTP status that the
control plane (SageMaker JSON 1.1) or the runtime (REST-JSON) uses for it, as declared in
botocore's service models, so that every SDK raises its own matching exception class.
"""

from __future__ import annotations

from typing import Any

# No operation's input is more than a handful of levels deep. Deeper JSON is refused before
# anything recurses over it (deepcopy of a spec, the verbatim echo of a batch entry).
MAX_JSON_DEPTH = 32


class ApiError(Exception):
    """An error that is reported to the client instead of crashing the request."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ApiError):
    """Runtime `ValidationError`, control plane `ValidationException` (HTTP 400)."""


class NotFound(ApiError):
    """`ResourceNotFound`: HTTP 404 on the runtime, 400 on the control plane."""


class InUse(ApiError):
    """`ResourceInUse` (control plane, HTTP 400)."""


class LimitExceeded(ApiError):
    """`ResourceLimitExceeded` (control plane, HTTP 400)."""


class Conflict(ApiError):
    """`ConflictException` (runtime UpdateRecord with an older EventTime, HTTP 409)."""


class Throttled(ApiError):
    """`ThrottlingException` (HTTP 400), which every AWS SDK retries with back-off."""


class Unavailable(ApiError):
    """`ServiceUnavailable` (HTTP 503)."""


class InternalFailure(ApiError):
    """`InternalFailure` (HTTP 500)."""


class UnknownOperation(ApiError):
    """`UnknownOperationException`: the route or X-Amz-Target names no supported operation."""


# (code, HTTP status) per plane, from the models in botocore/data/sagemaker*/.
RUNTIME_ERRORS: dict[type[ApiError], tuple[str, int]] = {
    InvalidInput: ("ValidationError", 400),
    NotFound: ("ResourceNotFound", 404),
    Conflict: ("ConflictException", 409),
    Throttled: ("ThrottlingException", 400),
    Unavailable: ("ServiceUnavailable", 503),
    InternalFailure: ("InternalFailure", 500),
    UnknownOperation: ("UnknownOperationException", 404),
    InUse: ("ValidationError", 400),
    LimitExceeded: ("ValidationError", 400),
}

CONTROL_ERRORS: dict[type[ApiError], tuple[str, int]] = {
    InvalidInput: ("ValidationException", 400),
    NotFound: ("ResourceNotFound", 400),
    InUse: ("ResourceInUse", 400),
    LimitExceeded: ("ResourceLimitExceeded", 400),
    Conflict: ("ConflictException", 400),
    Throttled: ("ThrottlingException", 400),
    Unavailable: ("ServiceUnavailable", 503),
    InternalFailure: ("InternalFailure", 500),
    UnknownOperation: ("UnknownOperationException", 400),
}


def error_code(error: ApiError, table: dict[type[ApiError], tuple[str, int]]) -> tuple[str, int]:
    """The wire code and HTTP status for `error` in one plane's table."""
    for cls in type(error).__mro__:
        if cls in table:
            return table[cls]
    return ("InternalFailure", 500)


def check_depth(value: Any, what: str) -> None:
    """InvalidInput when `value` nests deeper than MAX_JSON_DEPTH (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep.")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
