"""Realistic card-payment events, reproducible from a seed, produced to Kafka at a chosen rate.

Card popularity is skewed (a few cards pay often, most rarely), amounts are log-normal, and
event times advance with the configured events per second, so windows fill the way real traffic
fills them. Records are keyed by card, so one card's events stay in order within a partition.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from featurestream.config.feature_group import FeatureGroupSpec
    from featurestream.config.profile import EnvironmentProfile

MERCHANTS = tuple(f"merchant-{i:03d}" for i in range(200))
CURRENCIES = ("EUR", "USD", "GBP")


@dataclass(frozen=True)
class GeneratorSettings:
    entities: int = 100
    seed: int = 0
    # Event-time pace: events are spaced 1/events_per_second apart starting at `start`.
    events_per_second: float = 100.0
    start: datetime | None = None
    # Share of records that are deliberately broken (for the DLQ path).
    malformed_rate: float = 0.0


def recent_start(span_s: float = 0.0) -> datetime:
    """The latest hour boundary from which events spanning `span_s` seconds end before now.

    Online records expire after the group's TTL counted from now, so a fixed calendar date in a
    test or benchmark turns red once it is older than the TTL. An hour boundary keeps tile
    alignment the same whatever minute a run starts, and ending a few minutes before now keeps
    every event in the past (events ahead of their record's timestamp are refused).
    """
    latest = datetime.now(UTC) - timedelta(seconds=span_s + 300)
    return latest.replace(minute=0, second=0, microsecond=0)


def _malformed(index: int) -> bytes:
    kinds = (
        b"{not json",
        json.dumps({"card_id": None, "amount": 1.0, "event_time": "2026-01-01T00:00:00Z"}).encode(),
        json.dumps({"card_id": "card-x", "amount": "lots", "event_time": "2026-01-01T00:00:00Z"}).encode(),
        json.dumps({"card_id": "card-x", "amount": 2.0, "event_time": "yesterday"}).encode(),
    )
    return kinds[index % len(kinds)]


def generate_events(count: int, settings: GeneratorSettings) -> list[dict[str, object]]:
    """`count` valid events as dicts (event_time as an ISO-8601 string with milliseconds)."""
    rng = random.Random(settings.seed)
    start = settings.start or datetime.now(UTC).replace(microsecond=0)
    step = timedelta(seconds=1.0 / settings.events_per_second)
    weights = [1.0 / (rank + 1) ** 0.8 for rank in range(settings.entities)]
    cards = [f"card-{i:05d}" for i in range(settings.entities)]
    chosen = rng.choices(cards, weights=weights, k=count)
    events: list[dict[str, object]] = []
    for index, card in enumerate(chosen):
        moment = start + step * index
        events.append({
            "transaction_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "card_id": card,
            "merchant_id": rng.choice(MERCHANTS),
            "amount": round(rng.lognormvariate(3.0, 1.0), 2),
            "currency": rng.choice(CURRENCIES),
            "event_time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        })
    return events


def encode(events: Iterable[dict[str, object]], settings: GeneratorSettings,
           key: str = "card_id") -> Iterator[tuple[bytes | None, bytes]]:
    """(key, value) pairs for Kafka, keyed by the entity column `key` (none when an event lacks it),
    with malformed records mixed in at the configured rate."""
    rng = random.Random(settings.seed + 1)
    for index, event in enumerate(events):
        if settings.malformed_rate and rng.random() < settings.malformed_rate:
            yield None, _malformed(index)
        entity = event.get(key)
        yield (None if entity is None else str(entity).encode()), json.dumps(event).encode()


def ensure_topic(bootstrap: str, topic: str, partitions: int = 2, configs: dict[str, str] | None = None) -> None:
    """Create the topic if it is missing (auto-creation would give it the broker's default partitions);
    `configs`: topic settings such as `max.message.bytes`."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="featurestream-generator")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1,
                                      topic_configs=configs or {})])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def delete_records_before(bootstrap: str, topic: str, offsets: dict[int, int]) -> None:
    """Delete every record of `topic` below `offsets[partition]`, as retention would (tests, benchmarks)."""
    from kafka import TopicPartition
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="featurestream-generator")
    try:
        admin.delete_records({TopicPartition(topic, partition): offset for partition, offset in offsets.items()})
    finally:
        admin.close()


def produce_kafka(records: Iterable[tuple[bytes | None, bytes]], bootstrap: str, topic: str,
                  rate: float | None = None) -> int:
    """Send records; with `rate` (records/s) the producer paces itself. Returns the count sent."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all", retries=5)
    sent = 0
    started = time.monotonic()
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
            sent += 1
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()
    return sent


def ensure_stream(stream: str, shards: int = 2, region: str | None = None) -> None:
    """Create the Kinesis stream if it is missing and wait until it is ACTIVE."""
    import boto3

    kinesis = boto3.client("kinesis", region_name=region)
    try:
        kinesis.create_stream(StreamName=stream, ShardCount=shards)
    except kinesis.exceptions.ResourceInUseException:
        pass
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def produce_kinesis(records: Iterable[tuple[bytes | None, bytes]], stream: str, region: str | None = None,
                    rate: float | None = None) -> int:
    """PutRecords in chunks of up to 500 from one thread (kinesis-local slows down with concurrent
    producers); failed entries are sent again. A record without a key gets a random partition key."""
    import boto3

    kinesis = boto3.client("kinesis", region_name=region)
    items = [{"Data": value, "PartitionKey": (key or uuid.uuid4().hex.encode()).decode()} for key, value in records]
    started = time.monotonic()
    sent = 0
    chunk = 500 if rate is None else max(1, min(500, int(rate)))
    for start in range(0, len(items), chunk):
        pending = items[start:start + chunk]
        while pending:
            response = kinesis.put_records(StreamName=stream, Records=pending)
            pending = [item for item, result in zip(pending, response["Records"], strict=True)
                       if "ErrorCode" in result]
            if pending:
                time.sleep(0.2)
        sent += len(items[start:start + chunk])
        if rate:
            ahead = sent / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    return sent


Records = Iterable[tuple[bytes | None, bytes]]
Send = Callable[[Records, float | None], int]


def source_producer(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> tuple[Send, str]:
    """Create the group's Kafka topic or Kinesis stream if missing; return `send(records, rate)`
    (the count sent) and a description of where the records go."""
    from featurestream.config.feature_group import KafkaSourceSpec

    source = spec.source
    if isinstance(source, KafkaSourceSpec):
        bootstrap, topic = profile.kafka.bootstrap_servers, source.topic
        ensure_topic(bootstrap, topic)
        return (lambda records, rate: produce_kafka(records, bootstrap, topic, rate)), f"Kafka topic {topic}"
    stream, region = source.stream, profile.feature_store.region
    ensure_stream(stream, region=region)
    return (lambda records, rate: produce_kinesis(records, stream, region, rate)), f"Kinesis stream {stream}"
