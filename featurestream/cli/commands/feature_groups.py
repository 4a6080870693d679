"""`featurestream feature-groups apply|plan|describe`: provision the SageMaker feature group of a spec.

`plan` prints what `apply` would do (a diff of feature definitions, and the definition's
fingerprint against the one recorded on the group); `apply` prints the same plan, then creates the
group or adds the new features, and refuses incompatible changes (identifier, event time, a
feature's type, removed features, or a change of the definition of existing values: tile,
lateness, windows, transforms, dedupe, an aggregation, which need a new version of the group)
with exit code 1 and the reasons. Running `apply` again changes nothing. `describe` prints the
group as a table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3

from featurestream.config import load_feature_group, load_profile
from featurestream.connectors.provisioning import (
    IncompatibleChangeError,
    apply_plan,
    describe_or_none,
    plan,
    stored_fingerprint,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="fg_command", required=True, metavar="ACTION", help="apply, plan or describe")
    for name, help_text in (("apply", "create the feature group or add new features (shows the plan first)"),
                            ("plan", "show what apply would change, change nothing (exit 1: apply would refuse)"),
                            ("describe", "print the feature group as SageMaker describes it")):
        command = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        command.add_argument("feature_group", metavar="FILE", help="conf/feature_groups/<name>.yaml")
        command.add_argument("--env", default="local", metavar="PROFILE",
                             help="environment profile: a name (local, aws) or a YAML file (default: local); "
                                  "gives the region, and the role and offline store for apply")


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def describe_lines(description: dict[str, Any]) -> list[str]:
    identifier = description.get("RecordIdentifierFeatureName")
    event_time = description.get("EventTimeFeatureName")
    rows: list[tuple[str, ...]] = [("feature", "type", "role")]
    for definition in description.get("FeatureDefinitions", []):
        name = definition["FeatureName"]
        role = "record identifier" if name == identifier else "event time" if name == event_time else ""
        rows.append((name, definition["FeatureType"], role))
    online = description.get("OnlineStoreConfig") or {}
    offline = ((description.get("OfflineStoreConfig") or {}).get("S3StorageConfig") or {}).get("S3Uri", "-")
    ttl = online.get("TtlDuration")
    header = [
        f"{description.get('FeatureGroupName')}  {description.get('FeatureGroupStatus')}",
        f"arn: {description.get('FeatureGroupArn')}",
        f"online store: {'enabled' if online.get('EnableOnlineStore') else 'disabled'}"
        + (f", ttl {ttl['Value']} {ttl['Unit'].lower()}" if ttl else ""),
        f"offline store: {offline}",
        "",
    ]
    return header + _table(rows)


def _checkpoint_definition(checkpoint_root: str, group: str, recorded: str | None) -> dict[str, Any] | None:
    """The definition the group's checkpoint recorded (`featurestream.ops.definitions`), when it is a
    local file and stands for the fingerprint the group has: it lets the plan name what changed."""
    if recorded is None or "://" in checkpoint_root:
        return None
    try:
        data = json.loads((Path(checkpoint_root) / group / "definition.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("fingerprint") != recorded:
        return None
    if not isinstance(data.get("definition"), dict):
        return None
    return dict(data["definition"])


def run(args: argparse.Namespace) -> int:
    spec = load_feature_group(args.feature_group)
    profile = load_profile(args.env)
    client = boto3.client("sagemaker", region_name=profile.feature_store.region)
    name = spec.online_store.feature_group_name
    if args.fg_command == "describe":
        description = describe_or_none(client, name)
        if description is None:
            print(f"feature group {name} does not exist (run: featurestream feature-groups apply {args.feature_group})")
            return 1
        print("\n".join(describe_lines(description)))
        return 0
    existing = describe_or_none(client, name)
    recorded = stored_fingerprint(client, existing) if existing is not None else None
    the_plan = plan(spec, existing, recorded, _checkpoint_definition(profile.checkpoint_root, spec.name, recorded))
    print("\n".join(the_plan.lines()))
    if args.fg_command == "plan":
        return 1 if the_plan.problems else 0
    try:
        description = apply_plan(client, spec, profile, the_plan)
    except IncompatibleChangeError as exc:
        print(f"refused: {exc}")
        return 1
    print(f"{description['FeatureGroupName']}: {description['FeatureGroupStatus']} ({description['FeatureGroupArn']})")
    return 0
