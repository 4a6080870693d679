"""The five local services, in start order (a service's `uses` come before it), and the optional ones."""

from __future__ import annotations

from featurestream.dev.stack.config import StackConfig
from featurestream.dev.stack.services.base import Service, ServiceStatus
from featurestream.dev.stack.services.feature_store import FeatureStoreService
from featurestream.dev.stack.services.kafka import KafkaService
from featurestream.dev.stack.services.kinesis import KinesisService
from featurestream.dev.stack.services.postgres import PostgresService
from featurestream.dev.stack.services.pushgateway import PushgatewayService
from featurestream.dev.stack.services.s3 import S3Service

SERVICE_TYPES: tuple[type[Service], ...] = (
    KafkaService,
    KinesisService,
    S3Service,
    PostgresService,
    FeatureStoreService,
    PushgatewayService,
)
# What `stack up` starts when no service is named; the others (the Pushgateway) only when named.
SERVICE_NAMES: tuple[str, ...] = tuple(t.name for t in SERVICE_TYPES if not t.optional)
OPTIONAL_SERVICE_NAMES: tuple[str, ...] = tuple(t.name for t in SERVICE_TYPES if t.optional)
ALL_SERVICE_NAMES: tuple[str, ...] = tuple(t.name for t in SERVICE_TYPES)


def build(config: StackConfig) -> dict[str, Service]:
    """One instance of every service for `config`, keyed by name, in start order."""
    return {t.name: t(config) for t in SERVICE_TYPES}


__all__ = ["ALL_SERVICE_NAMES", "OPTIONAL_SERVICE_NAMES", "SERVICE_NAMES", "SERVICE_TYPES", "Service",
           "ServiceStatus", "build"]
