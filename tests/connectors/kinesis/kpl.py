"""The KPL aggregated record format, written out independently of any Kinesis library.

Layout: magic F3 89 9A C2, a protobuf `AggregatedRecord`, then the MD5 of the protobuf bytes.
    AggregatedRecord { repeated string partition_key_table = 1;
                       repeated string explicit_hash_key_table = 2;
                       repeated Record records = 3; }
    Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
             required bytes data = 3; }
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

MAGIC = bytes([0xF3, 0x89, 0x9A, 0xC2])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field_bytes(number: int, value: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(value)) + value


def aggregate(records: Sequence[tuple[str, bytes, str | None]]) -> bytes:
    """One Kinesis record's payload holding `records` as (partition key, data, explicit hash key)."""
    keys: list[str] = []
    hash_keys: list[str] = []
    body = bytearray()
    for key, data, hash_key in records:
        if key not in keys:
            keys.append(key)
        inner = _field_varint(1, keys.index(key))
        if hash_key is not None:
            if hash_key not in hash_keys:
                hash_keys.append(hash_key)
            inner += _field_varint(2, hash_keys.index(hash_key))
        inner += _field_bytes(3, data)
        body += _field_bytes(3, inner)
    message = b"".join(_field_bytes(1, k.encode()) for k in keys)
    message += b"".join(_field_bytes(2, h.encode()) for h in hash_keys)
    message += bytes(body)
    return MAGIC + message + hashlib.md5(message, usedforsecurity=False).digest()  # the format's checksum, not security
