"""Typed, frozen configuration: feature groups and environment profiles, validated before Spark."""

from featurestream.config.feature_group import (
    Aggregation,
    FeatureGroupSpec,
    FeatureSpec,
)
from featurestream.config.loader import load_feature_group, load_profile
from featurestream.config.profile import EnvironmentProfile

__all__ = [
    "Aggregation",
    "EnvironmentProfile",
    "FeatureGroupSpec",
    "FeatureSpec",
    "load_feature_group",
    "load_profile",
]
