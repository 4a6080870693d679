"""One boto3 featurestore-runtime client per Python worker, reused by its threads and tasks.

boto3 clients are thread-safe, sessions are not: the session is used once, under a lock, to
build the client. botocore's own retries are off (one attempt) because the writer retries
itself, counting throttles and keeping the batch's time budget. Credentials come from the
default chain of the worker; they are never passed in, pickled or logged.

BatchWriteRecord bodies are serialised by the writer (`records.py` keeps each record as JSON
text): botocore's validator and serialiser walk every FeatureValue in Python, which was about
half of the client's CPU per call (measured: 1.26 ms → 0.62 ms per call of 25 records). The
client still resolves the endpoint, signs (SigV4 over the body), sends and parses the response;
only the body is handed in, through the `before-call` event, for the call made on the same thread.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[tuple[str, str | None, int, float], Any] = {}
_lock = threading.Lock()

_BATCH_WRITE_EVENT = "before-call.sagemaker-featurestore-runtime.BatchWriteRecord"
_HANDLER_ID = "featurestream-prepared-batch-write-body"
# The body for the BatchWriteRecord call this thread is about to make.
_prepared = threading.local()


def runtime_client(region: str, endpoint_url: str | None, threads: int, call_timeout_s: float) -> Any:
    key = (region, endpoint_url, threads, call_timeout_s)
    with _lock:
        client = _clients.get(key)
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                region_name=region,
                # Every writer thread keeps its own connection open: no waiting for the pool.
                max_pool_connections=max(10, threads),
                retries={"mode": "standard", "total_max_attempts": 1},
                connect_timeout=min(5.0, call_timeout_s),
                read_timeout=call_timeout_s,
                tcp_keepalive=True,
                # The writer builds every value as a string of a known shape; botocore's
                # per-value validation would only cost CPU.
                parameter_validation=False,
                user_agent=_user_agent(),
            )
            client = boto3.session.Session().client(
                "sagemaker-featurestore-runtime", endpoint_url=endpoint_url, config=config
            )
            prepare(client)
            _clients[key] = client
        return client


def _user_agent() -> str:
    """The writer's User-Agent, made once per client.

    botocore rebuilds its default one from ~40 sanitised parts twice per call (70-90 µs each on
    this machine under load, ~15% of a BatchWriteRecord call's client CPU); this one names the
    caller and the SDK the same way, without the per-call feature list."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import boto3
    import botocore

    try:
        ours = version("featurestream")
    except PackageNotFoundError:
        ours = "unknown"
    return (f"featurestream/{ours} Boto3/{boto3.__version__} md/Botocore#{botocore.__version__} ua/2.1 "
            f"lang/python#{platform.python_version()}")


def _use_prepared_body(params: dict[str, Any], **_: Any) -> None:
    body = getattr(_prepared, "body", None)
    if body is not None:
        _prepared.body = None
        params["body"] = body


def prepare(client: Any) -> bool:
    """Let `client` take pre-serialised BatchWriteRecord bodies; False if it validates parameters
    (a client made elsewhere), in which case the writer passes entries the usual way."""
    from botocore.validate import ParamValidationDecorator

    # `client.meta.config` does not reflect `parameter_validation`; the serializer does (it is
    # wrapped in a validator unless validation is off).
    if isinstance(getattr(client, "_serializer", None), ParamValidationDecorator):
        return False
    client.meta.events.register(_BATCH_WRITE_EVENT, _use_prepared_body, unique_id=_HANDLER_ID)
    return True


def batch_write_body(client: Any, body: bytes) -> Any:
    """BatchWriteRecord with `body` (`{"Entries":[…]}`, UTF-8) as the request body."""
    _prepared.body = body
    try:
        return client.batch_write_record(Entries=[])
    finally:
        _prepared.body = None


def supports_batch_write(client: Any) -> bool:
    """botocore older than 1.44 has no BatchWriteRecord operation at all."""
    return "BatchWriteRecord" in client.meta.service_model.operation_names
