"""One boto3 featurestore-runtime client per Python worker, reused by its threads and tasks.

boto3 clients are thread-safe, sessions are not: the session is used once, under a lock, to
build the client. botocore's own retries are off (one attempt) because the writer retries
itself, counting throttles and keeping the batch's time budget. Credentials come from the
default chain of the worker; they are never passed in, pickled or logged.
"""

from __future__ import annotations

import threading
from typing import Any

_clients: dict[tuple[str, str | None, int, float], Any] = {}
_lock = threading.Lock()


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
            )
            client = boto3.session.Session().client(
                "sagemaker-featurestore-runtime", endpoint_url=endpoint_url, config=config
            )
            _clients[key] = client
        return client


def supports_batch_write(client: Any) -> bool:
    """botocore older than 1.44 has no BatchWriteRecord operation at all."""
    return "BatchWriteRecord" in client.meta.service_model.operation_names
