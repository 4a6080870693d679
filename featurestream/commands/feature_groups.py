"""`featurestream feature-groups apply|describe`: provision the SageMaker feature group of a spec."""

from __future__ import annotations

import argparse
import json

import boto3

from featurestream.config import load_feature_group, load_profile
from featurestream.provisioning import ensure_feature_group


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fg_command", required=True)
    for name, help_text in (("apply", "create the feature group if it does not exist"),
                            ("describe", "print the feature group as SageMaker describes it")):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("feature_group", metavar="FILE", help="conf/feature_groups/<name>.yaml")
        command.add_argument("--env", default="local", metavar="PROFILE")


def run(args: argparse.Namespace) -> int:
    spec = load_feature_group(args.feature_group)
    profile = load_profile(args.env)
    client = boto3.client("sagemaker", region_name=profile.feature_store.region)
    if args.fg_command == "apply":
        description = ensure_feature_group(client, spec, profile)
        print(f"{description['FeatureGroupName']}: {description['FeatureGroupStatus']} "
              f"({description['FeatureGroupArn']})")
        return 0
    description = client.describe_feature_group(FeatureGroupName=spec.online_store.feature_group_name)
    print(f"{'feature':<32} {'type':<12}")
    for definition in description["FeatureDefinitions"]:
        print(f"{definition['FeatureName']:<32} {definition['FeatureType']:<12}")
    summary = {k: description.get(k) for k in ("FeatureGroupName", "FeatureGroupStatus", "RecordIdentifierFeatureName",
                                               "EventTimeFeatureName")}
    print(json.dumps(summary, indent=2, default=str))
    return 0
