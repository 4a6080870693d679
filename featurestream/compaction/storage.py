"""Small-object storage for the compaction state (lock, ledger segments), on a local disk or S3.

Three operations carry the run's safety and each is atomic on both back ends:

* `create` — write only if absent (S3 `If-None-Match: *`; locally a hard link, which fails if
  the target exists);
* `replace` — compare-and-swap against the version read before (S3 `If-Match: <etag>`; locally
  under an exclusive `flock`, then a rename);
* `put` — a whole-object write that readers see entirely or not at all (one S3 PUT; locally a
  rename of a fully written temporary file).

A version token is the S3 ETag, or the SHA-256 of the bytes locally.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from featurestream.compaction.errors import PreconditionFailed
from featurestream.connectors.offline_store import StoredFile, StoreUri, list_files, s3_client


@dataclass(frozen=True)
class Versioned:
    data: bytes
    token: str


class StateStore(Protocol):
    def read(self, uri: StoreUri) -> Versioned | None: ...

    def create(self, uri: StoreUri, data: bytes) -> str | None:
        """Write `data` only if nothing is at `uri`; the new token, or None when it exists."""

    def replace(self, uri: StoreUri, data: bytes, expected: str) -> str:
        """Overwrite only if the current token is `expected`; raise PreconditionFailed otherwise."""

    def put(self, uri: StoreUri, data: bytes) -> str: ...

    def delete(self, uri: StoreUri, expected: str | None = None) -> bool:
        """Delete (only if the token matches, when given); False when it was already gone."""

    def delete_many(self, uris: Iterable[StoreUri]) -> int: ...

    def list(self, root: StoreUri) -> list[StoredFile]: ...


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LocalStore:
    """State on a local (or POSIX-shared) file system."""

    def read(self, uri: StoreUri) -> Versioned | None:
        try:
            data = uri.path.read_bytes()
        except FileNotFoundError:
            return None
        return Versioned(data, _sha(data))

    def _write_temp(self, target: Path, data: bytes) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Hidden name: Spark, Hive and our listings skip it if a crash leaves it behind.
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return tmp

    def create(self, uri: StoreUri, data: bytes) -> str | None:
        target = uri.path
        tmp = self._write_temp(target, data)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return None
        finally:
            tmp.unlink(missing_ok=True)
        return _sha(data)

    @contextlib.contextmanager
    def _guard(self, target: Path) -> Iterator[None]:
        target.parent.mkdir(parents=True, exist_ok=True)
        guard = target.with_name(f".{target.name}.guard")
        with open(guard, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def replace(self, uri: StoreUri, data: bytes, expected: str) -> str:
        target = uri.path
        with self._guard(target):
            current = self.read(uri)
            if current is None or current.token != expected:
                raise PreconditionFailed(f"{uri} changed since it was read")
            os.replace(self._write_temp(target, data), target)
        return _sha(data)

    def put(self, uri: StoreUri, data: bytes) -> str:
        target = uri.path
        with self._guard(target):
            os.replace(self._write_temp(target, data), target)
        return _sha(data)

    def delete(self, uri: StoreUri, expected: str | None = None) -> bool:
        target = uri.path
        with self._guard(target):
            if expected is not None:
                current = self.read(uri)
                if current is None:
                    return False
                if current.token != expected:
                    raise PreconditionFailed(f"{uri} changed since it was read")
            try:
                target.unlink()
            except FileNotFoundError:
                return False
        return True

    def delete_many(self, uris: Iterable[StoreUri]) -> int:
        count = 0
        for uri in uris:
            path = uri.path
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                count += 1
                continue
            try:
                path.unlink()
                count += 1
            except FileNotFoundError:
                pass
        return count

    def list(self, root: StoreUri) -> list[StoredFile]:
        if not root.path.exists():
            return []
        return list(list_files(root))


class S3Store:
    """State on S3 with conditional writes (S3 and moto support If-Match / If-None-Match)."""

    def __init__(self, client: Any = None, region: str | None = None) -> None:
        self.client = client or s3_client(region)

    @staticmethod
    def _code(exc: ClientError) -> str:
        return str(exc.response.get("Error", {}).get("Code", ""))

    def read(self, uri: StoreUri) -> Versioned | None:
        try:
            response = self.client.get_object(Bucket=uri.bucket, Key=uri.key)
        except ClientError as exc:
            if self._code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        return Versioned(response["Body"].read(), str(response["ETag"]))

    def create(self, uri: StoreUri, data: bytes) -> str | None:
        try:
            response = self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=data, IfNoneMatch="*")
        except ClientError as exc:
            # 409 ConditionalRequestConflict: a concurrent create is in flight; it wins.
            if self._code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return None
            raise
        return str(response["ETag"])

    def replace(self, uri: StoreUri, data: bytes, expected: str) -> str:
        try:
            response = self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=data, IfMatch=expected)
        except ClientError as exc:
            if self._code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409",
                                   "NoSuchKey", "404"):
                raise PreconditionFailed(f"{uri} changed since it was read") from exc
            raise
        return str(response["ETag"])

    def put(self, uri: StoreUri, data: bytes) -> str:
        response = self.client.put_object(Bucket=uri.bucket, Key=uri.key, Body=data)
        return str(response["ETag"])

    def delete(self, uri: StoreUri, expected: str | None = None) -> bool:
        kwargs: dict[str, Any] = {"Bucket": uri.bucket, "Key": uri.key}
        if expected is not None:
            kwargs["IfMatch"] = expected
        try:
            self.client.delete_object(**kwargs)
        except ClientError as exc:
            code = self._code(exc)
            if code in ("NoSuchKey", "404"):
                return False
            if code in ("PreconditionFailed", "412"):
                raise PreconditionFailed(f"{uri} changed since it was read") from exc
            raise
        return True

    def delete_many(self, uris: Iterable[StoreUri]) -> int:
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            by_bucket.setdefault(uri.bucket, []).append(uri.key)
        count = 0
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                chunk = keys[start:start + 1000]
                self.client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk],
                                                                  "Quiet": True})
                count += len(chunk)
        return count

    def list(self, root: StoreUri) -> list[StoredFile]:
        return list(list_files(root, client=self.client))


def open_store(root: StoreUri, region: str | None = None) -> StateStore:
    return S3Store(region=region) if root.is_s3 else LocalStore()
