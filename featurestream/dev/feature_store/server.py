"""Request handling: routing for both planes and error rendering, independent of the transport.

One server answers the SageMaker control plane (POST / with `X-Amz-Target: SageMaker.<Op>`,
`application/x-amz-json-1.1`) and the featurestore runtime (REST-JSON routes from botocore's
model), plus `GET /health` and `POST /_emulator/flush` for tests. Signatures are not checked.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from featurestream.dev.feature_store.control_plane import ControlPlane
from featurestream.dev.feature_store.errors import (
    CONTROL_ERRORS,
    MAX_JSON_DEPTH,
    RUNTIME_ERRORS,
    ApiError,
    InternalFailure,
    InvalidInput,
    UnknownOperation,
    check_depth,
    error_code,
)
from featurestream.dev.feature_store.faults import Faults
from featurestream.dev.feature_store.lineage import LineageApi, LineageStore
from featurestream.dev.feature_store.offline import OfflineReplicator
from featurestream.dev.feature_store.runtime import Runtime
from featurestream.dev.feature_store.store import Store

log = logging.getLogger(__name__)

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
JSON_11 = "application/x-amz-json-1.1"
REST_JSON = "application/json"
_FG_ROUTE = re.compile(r"/FeatureGroup/(?P<name>[^?]+?)(?P<op>/ListRecords|/Record)?")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class Emulator:
    """Transport-independent request handling: (method, target, headers, body) -> Response."""

    def __init__(
        self,
        store: Store,
        faults: Faults,
        replicator: OfflineReplicator,
        region: str,
        account: str,
        lineage: LineageStore | None = None,
    ) -> None:
        self.store = store
        self.faults = faults
        self.replicator = replicator
        self.region = region
        self.runtime = Runtime(store, faults)
        self.transport_stats: Callable[[], dict[str, int]] | None = None
        self.control = ControlPlane(
            store, region, account, replicator.sink.check_location, replicator.status, replicator.create_table,
            LineageApi(lineage, region, account) if lineage is not None else None,
        )

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        amz_target = headers.get("x-amz-target")
        if amz_target is not None:
            return self._control(amz_target, body)
        try:
            url = urlsplit(target)
        except ValueError:
            return _error(InvalidInput("The request target is not a valid URL."), RUNTIME_ERRORS, REST_JSON)
        if method == "GET" and url.path == "/health":
            return _json(200, self.health(), REST_JSON)
        if method == "POST" and url.path == "/_emulator/flush":
            return self._flush()
        return self._runtime(method, url.path, url.query, body)

    def _flush(self) -> Response:
        try:
            result = self.replicator.flush()
        except Exception as exc:
            log.exception("offline flush failed")
            return _json(500, {"error": f"{type(exc).__name__}: {exc}"}, REST_JSON)
        body = {"rows": result.rows, "quarantined": result.quarantined, "blocked": result.blocked}
        if result.blocked:
            # The other groups were written; this answer says which ones could not be, and why.
            body["error"] = "; ".join(f"{name}: {reason}" for name, reason in result.blocked.items())
            return _json(503, body, REST_JSON)
        return _json(200, body, REST_JSON)

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "service": "feature-store-emulator",
            "region": self.region,
            "feature_groups": len(self.store.live_groups()),
            "offline_queued_rows": self.store.queued_rows(),
            "offline_rows_written": self.replicator.rows_written,
            "offline_files_written": self.replicator.files_written,
            "offline_last_error": self.replicator.last_error,
            "offline_blocked": self.replicator.blocked_by_name(),
            "offline_quarantined_rows": self.store.quarantined_rows(),
            "offline_quarantine": self.store.quarantine_by_group(),
            "faults_injected": dict(self.faults.counts),
            "sqlite": self.store.commit_stats(),
            "threads": threading.active_count(),
            "http": self.transport_stats() if self.transport_stats is not None else {},
        }

    def _control(self, amz_target: str, body: bytes) -> Response:
        try:
            prefix, _, operation = amz_target.partition(".")
            if prefix != "SageMaker":
                raise UnknownOperation(f"Unknown target {amz_target}.")
            request = _parse_body(body)
            # Specs are stored, copied and rendered: nothing deeper than AWS's shapes gets in.
            check_depth(request, "The request")
            result = self.control.dispatch(operation, request)
        except ApiError as exc:
            return _error(exc, CONTROL_ERRORS, JSON_11)
        except RecursionError:
            return _error(_too_deep(), CONTROL_ERRORS, JSON_11)
        except Exception as exc:
            log.exception("control plane failure")
            return _error(_internal(exc), CONTROL_ERRORS, JSON_11)
        return _json(200, result or {}, JSON_11)

    def _runtime(self, method: str, path: str, query: str, body: bytes) -> Response:
        try:
            self.faults.on_call()
            result = self._route(method, path, query, body)
        except ApiError as exc:
            return _error(exc, RUNTIME_ERRORS, REST_JSON)
        except RecursionError:
            # Only request data is ever deep; our own code does not recurse.
            return _error(_too_deep(), RUNTIME_ERRORS, REST_JSON)
        except Exception as exc:
            log.exception("runtime failure")
            return _error(_internal(exc), RUNTIME_ERRORS, REST_JSON)
        if result is None:
            return Response(200, b"", REST_JSON)
        return _json(200, result, REST_JSON)

    def _route(self, method: str, path: str, query: str, body: bytes) -> dict[str, Any] | None:
        rt = self.runtime
        if path == "/BatchWriteRecord" and method == "POST":
            return rt.batch_write_record(_parse_body(body))
        if path == "/BatchGetRecord" and method == "POST":
            return rt.batch_get_record(_parse_body(body))
        match = _FG_ROUTE.fullmatch(path)
        if match is None:
            raise UnknownOperation(f"No operation at {method} {path}.")
        # The raw path keeps %2F inside an ARN together; decode only the name itself.
        name, op = unquote(match.group("name")), match.group("op")
        if op == "/ListRecords" and method == "POST":
            return rt.list_records(name, _parse_body(body))
        if op == "/Record" and method == "POST":
            return rt.update_record(name, _parse_body(body))
        if op is not None:
            # A name that ends like a sub-route (an ARN whose group is called "Record"...).
            name = unquote(match.group("name") + op)
        if method == "PUT":
            return rt.put_record(name, _parse_body(body))
        if method == "GET":
            return rt.get_record(name, parse_qs(query, keep_blank_values=True))
        if method == "DELETE":
            return rt.delete_record(name, parse_qs(query, keep_blank_values=True))
        raise UnknownOperation(f"No operation at {method} {path}.")


def _parse_body(body: bytes) -> dict[str, Any]:
    """The JSON object of a request, or a ValidationError: never an exception that ends in 500."""
    if not body.strip():
        return {}
    try:
        text = body.decode("utf-8")
        parsed = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise InvalidInput(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise InvalidInput("The request body must be a JSON object.")
    # The walk runs only when the text holds an escaped surrogate (a C-level search).
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(parsed):
        # Not encodable as UTF-8: it would fail later, inside a transaction shared with others.
        raise InvalidInput("The request body contains a lone UTF-16 surrogate (\\uD800-\\uDFFF).")
    return parsed


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _json(status: int, payload: Any, content_type: str) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), content_type)


def _error(exc: ApiError, table: dict[type[ApiError], tuple[str, int]], content_type: str) -> Response:
    code, status = error_code(exc, table)
    body = json.dumps({"__type": code, "Message": exc.message}).encode()
    return Response(status, body, content_type, (("x-amzn-ErrorType", code),))


def _too_deep() -> ApiError:
    return InvalidInput(f"The request is nested more than {MAX_JSON_DEPTH} levels deep.")


def _internal(exc: Exception) -> ApiError:
    return InternalFailure(f"{type(exc).__name__}: {exc}")
