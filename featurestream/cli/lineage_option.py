"""`--sagemaker-lineage` / `--no-sagemaker-lineage`: turn SageMaker ML Lineage Tracking on or off for
one run; without either, the profile's `lineage.sagemaker.enabled` decides (on in aws and local)."""

from __future__ import annotations

import argparse
from typing import Any

from featurestream.config.profile import LineageSpec


def add_sagemaker_lineage_argument(parser: argparse.ArgumentParser) -> None:
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--sagemaker-lineage", dest="sagemaker_lineage", action="store_true", default=None,
                        help="record this run in SageMaker ML Lineage Tracking (default: the profile's "
                             "lineage.sagemaker.enabled)")
    chosen.add_argument("--no-sagemaker-lineage", dest="sagemaker_lineage", action="store_false",
                        help="do not record this run in SageMaker ML Lineage Tracking")


def sagemaker_lineage(args: argparse.Namespace, spec: LineageSpec, region: str) -> Any:
    """The recorder for this run (`featurestream.ops.sagemaker_lineage.SageMakerLineage`), or None when off."""
    chosen = getattr(args, "sagemaker_lineage", None)
    if not (spec.sagemaker.enabled if chosen is None else chosen):
        return None
    from featurestream.ops.sagemaker_lineage import SageMakerLineage, client_for

    return SageMakerLineage(client_for(region), required=spec.sagemaker.required)
