"""Shared helpers of the Feature Store conformance suite (clients, record builders)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
from botocore.config import Config

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
# Lets malformed requests reach the server, to test its own validation.
UNVALIDATED = NO_RETRIES.merge(Config(parameter_validation=False))

DEFAULT_FEATURES = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "ts", "FeatureType": "String"},
    {"FeatureName": "n", "FeatureType": "Integral"},
    {"FeatureName": "x", "FeatureType": "Fractional"},
    {"FeatureName": "s", "FeatureType": "String"},
]


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def sagemaker_client(url: str, config: Config = NO_RETRIES) -> Any:
    return boto3.client("sagemaker", endpoint_url=url, region_name=region(), config=config)


def runtime_client(url: str, config: Config = NO_RETRIES) -> Any:
    return boto3.client(
        "sagemaker-featurestore-runtime", endpoint_url=url, region_name=region(), config=config
    )


def record(**values: Any) -> list[dict[str, str]]:
    """{"id": "a", "n": 1} -> [{"FeatureName": "id", "ValueAsString": "a"}, ...]."""
    return [{"FeatureName": k, "ValueAsString": str(v)} for k, v in values.items()]


def as_dict(rec: list[dict[str, Any]]) -> dict[str, Any]:
    return {f["FeatureName"]: f.get("ValueAsString", f.get("ValueAsStringList")) for f in rec}


def unique_name(prefix: str = "fg") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"



def offline_files(root: Path, describe: dict[str, Any]) -> list[Path]:
    """The visible Parquet files of one group under a local offline directory."""
    uri = describe["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    base = root / uri.removeprefix("s3://")
    return sorted(p for p in base.rglob("*.parquet") if not p.name.startswith("."))


def offline_rows(root: Path, describe: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in offline_files(root, describe):
        rows.extend(pq.ParquetFile(path).read().to_pylist())
    return rows


def raw_http(url: str, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes on a fresh connection; everything the server answers until it closes.

    For requests no HTTP client would send (broken framing, huge declared lengths).
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(payload)
        chunks: list[bytes] = []
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def http_status(response: bytes) -> int | None:
    """The status code of the first response in `response`, None if there is none."""
    line = response.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[0].startswith(b"HTTP/1.") and line[1].isdigit() else None


def proc_status(pid: int) -> dict[str, int]:
    """Threads and resident memory (kB) of a process, from /proc."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Threads", "VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out
