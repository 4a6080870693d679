"""The five local services, in start order (a service's `uses` come before it)."""

from __future__ import annotations

from local_stack.config import StackConfig
from local_stack.services.base import Service, ServiceStatus
from local_stack.services.feature_store import FeatureStoreService
from local_stack.services.kafka import KafkaService
from local_stack.services.kinesis import KinesisService
from local_stack.services.postgres import PostgresService
from local_stack.services.s3 import S3Service

SERVICE_TYPES: tuple[type[Service], ...] = (
    KafkaService,
    KinesisService,
    S3Service,
    PostgresService,
    FeatureStoreService,
)
SERVICE_NAMES: tuple[str, ...] = tuple(t.name for t in SERVICE_TYPES)


def build(config: StackConfig) -> dict[str, Service]:
    """One instance of every service for `config`, keyed by name, in start order."""
    return {t.name: t(config) for t in SERVICE_TYPES}


__all__ = ["SERVICE_NAMES", "SERVICE_TYPES", "Service", "ServiceStatus", "build"]
