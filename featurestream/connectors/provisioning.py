"""Feature group definitions derived from a spec, a plan against what SageMaker has, and applying it.

`plan` compares the spec with DescribeFeatureGroup: nothing to do, create, add features
(UpdateFeatureGroup FeatureAdditions, the only change SageMaker allows in place), or refuse
(record identifier, event time, a feature's type, or removed features: those need a new group).
`apply_plan` carries out the first three; running it twice changes nothing the second time.

The group also carries its definition's fingerprint (`featurestream.config.fingerprint`): in the
`featurestream:definition` tag (set at create and after every apply) and, at create, at the end of
its Description. `plan` compares it with the spec's: the same, or only new features (compatible in
place: the new columns start empty, a backfill gives them history, and the stream needs a new
checkpoint), or any other change, which needs a new version of the group (refused).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from featurestream.config.feature_group import Aggregation, FeatureGroupSpec, is_integral, is_numeric
from featurestream.config.fingerprint import changes, fingerprint, fingerprint_of, without_features
from featurestream.config.fingerprint import definition as value_definition
from featurestream.config.profile import EnvironmentProfile
from featurestream.durations import format_duration, parse_duration_ms
from featurestream.errors import FeatureStreamError

_AGG_TYPE = {
    Aggregation.COUNT: "Integral", Aggregation.APPROX_COUNT_DISTINCT: "Integral",
    Aggregation.SUM: "Fractional", Aggregation.MEAN: "Fractional", Aggregation.MIN: "Fractional",
    Aggregation.MAX: "Fractional", Aggregation.STDDEV_POP: "Fractional", Aggregation.STDDEV_SAMP: "Fractional",
    Aggregation.APPROX_PERCENTILE: "Fractional",
}


DEFINITION_TAG = "featurestream:definition"
_DESCRIPTION_MAX = 128
_FINGERPRINT_IN_TEXT = re.compile(r"\[definition (sha256:[0-9a-f]{16})\]")


class IncompatibleChangeError(FeatureStreamError):
    """The spec changes what SageMaker cannot change in place (identifier, event time, a type)."""


def _last_type(spec: FeatureGroupSpec, column: str) -> str:
    """`last` keeps its column's kind: integers and booleans are Integral, other numbers Fractional."""
    spark_type = spec.columns_after_transforms().get(column) or "string"
    if is_integral(spark_type) or spark_type == "boolean":
        return "Integral"
    if is_numeric(spark_type):
        return "Fractional"
    return "String"


def _output_type(spec: FeatureGroupSpec, agg: Aggregation, column: str | None, part: dict[str, Any]) -> str:
    """A top_k value is a String and its share Fractional: scalar types, served by every online store
    tier (SageMaker's List collection type is for InMemory stores only)."""
    if agg is Aggregation.LAST:
        return _last_type(spec, column or "")
    if agg is Aggregation.TOP_K:
        return "Fractional" if part.get("share") else "String"
    return _AGG_TYPE[agg]


def feature_definitions(spec: FeatureGroupSpec) -> list[dict[str, str]]:
    key_type = "String" if spec.entity.type == "string" else "Integral"
    definitions = [
        {"FeatureName": spec.entity.key, "FeatureType": key_type},
        # EventTime is the time the values are "as of" (see featurestream.engine.aggregation), ISO-8601.
        {"FeatureName": spec.event_time.field, "FeatureType": "String"},
    ]
    for feature in spec.features:
        for name, _, part in feature.outputs():
            kind = _output_type(spec, feature.agg, feature.column, part)
            definitions.append({"FeatureName": name, "FeatureType": kind})
    return definitions


def _ttl(spec: FeatureGroupSpec) -> dict[str, Any] | None:
    if spec.online_store.ttl is None:
        return None
    seconds = parse_duration_ms(spec.online_store.ttl) // 1000
    for unit, size in (("Weeks", 604_800), ("Days", 86_400), ("Hours", 3_600), ("Minutes", 60)):
        if seconds % size == 0:
            return {"Unit": unit, "Value": seconds // size}
    return {"Unit": "Seconds", "Value": seconds}


def description(spec: FeatureGroupSpec) -> str:
    """The group's Description (at most 128 characters), ending with its definition's fingerprint."""
    suffix = f" [definition {fingerprint(spec)}]"
    text = spec.description or f"featurestream feature group {spec.name}"
    return text[:_DESCRIPTION_MAX - len(suffix)] + suffix


def stored_fingerprint(client: Any, description: dict[str, Any]) -> str | None:
    """The fingerprint recorded on an existing group: its tag, else its Description; None if neither."""
    try:
        tags = client.list_tags(ResourceArn=description["FeatureGroupArn"]).get("Tags", [])
    except Exception:  # a caller without ListTags permission (or an endpoint without it): the Description
        tags = []
    for tag in tags:
        if tag.get("Key") == DEFINITION_TAG:
            return str(tag.get("Value"))
    match = _FINGERPRINT_IN_TEXT.search(str(description.get("Description", "")))
    return match.group(1) if match else None


def create_request(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> dict[str, Any]:
    online: dict[str, Any] = {"EnableOnlineStore": True}
    ttl = _ttl(spec)
    if ttl:
        online["TtlDuration"] = ttl
    request: dict[str, Any] = {
        "FeatureGroupName": spec.online_store.feature_group_name,
        "RecordIdentifierFeatureName": spec.entity.key,
        "EventTimeFeatureName": spec.event_time.field,
        "FeatureDefinitions": feature_definitions(spec),
        "OnlineStoreConfig": online,
        "Description": description(spec),
        "Tags": [{"Key": DEFINITION_TAG, "Value": fingerprint(spec)}],
    }
    store = profile.feature_store
    if store.offline_store_s3_uri:
        request["OfflineStoreConfig"] = {
            "S3StorageConfig": {"S3Uri": store.offline_store_s3_uri},
            "DisableGlueTableCreation": profile.kind == "local",
            "TableFormat": "Glue",
        }
        if store.role_arn:
            request["RoleArn"] = store.role_arn
    return request


@dataclass(frozen=True)
class Plan:
    """What `apply` would do. `action` is create, update or none; `problems` block any action."""

    feature_group_name: str
    action: str
    additions: list[dict[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # The definition: its fingerprint now, what the group has recorded, and notes (`~` lines).
    fingerprint: str = ""
    recorded: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def records_fingerprint(self) -> bool:
        return self.recorded != self.fingerprint

    def lines(self) -> list[str]:
        """The plan as a diff, one line per feature: `+` add, `=` keep, `!` refused; `~` definition notes."""
        out = [f"feature group {self.feature_group_name}: {self.action if not self.problems else 'refused'}"]
        out += [f"  + {d['FeatureName']:<32} {d['FeatureType']}" for d in self.additions]
        out += [f"  = {name}" for name in self.unchanged]
        out += [f"  ~ {note}" for note in self.notes]
        out += [f"  ! {problem}" for problem in self.problems]
        return out


def _added_features(spec: FeatureGroupSpec, added_columns: set[str]) -> list[tuple[str, int]]:
    """(feature, longest window in ms; 0 = whole history) of the spec's features whose columns are all new."""
    found = []
    for feature in spec.features:
        outputs = feature.output_names()
        if all(out in added_columns for out, _ in outputs):
            found.append((feature.name, max(w for _, w in outputs)))
    return found


def definition_notes(spec: FeatureGroupSpec, recorded: str | None, added_columns: set[str],
                     previous: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(notes, problems) about the definition: unchanged, only features added, or a change that needs
    a new version. `previous` is the recorded definition when known (a checkpoint's definition file),
    to name what changed."""
    current = fingerprint(spec)
    name = spec.online_store.feature_group_name
    if recorded is None:
        return [f"definition {current}: not recorded on the group yet (created before fingerprints); "
                "apply records it"], []
    if recorded == current:
        return [f"definition {current}: unchanged"], []
    added = _added_features(spec, added_columns)
    reduced = fingerprint_of(without_features(value_definition(spec, defaults=False), {n for n, _ in added}))
    if added and reduced == recorded:
        notes = [f"definition {recorded} -> {current}: only new features, compatible in place"]
        for feature, longest in added:
            complete = "at once (no window)" if longest == 0 else \
                f"{format_duration(longest)} after the first event it sees"
            notes.append(f"features.{feature}: added: its values start empty and are complete {complete}; "
                         "`featurestream backfill` gives it history; the stream needs a new checkpoint "
                         "(the old state holds no input for it)")
        return notes, []
    detail = ""
    if previous is not None:
        lines = [c.line() for c in changes(previous, value_definition(spec))]
        detail = " (" + "; ".join(lines) + ")" if lines else ""
    return [], [f"definition {recorded} -> {current}{detail}: values of existing features would change; "
                f"needs a new version: a new online_store.feature_group_name (e.g. {_next_version(name)}), "
                "backfilled, then switched to"]


def _next_version(name: str) -> str:
    match = re.fullmatch(r"(.*-v)(\d+)", name)
    return f"{match.group(1)}{int(match.group(2)) + 1}" if match else f"{name}-v2"


def plan(spec: FeatureGroupSpec, existing: dict[str, Any] | None, recorded: str | None = None,
         previous: dict[str, Any] | None = None) -> Plan:
    """`recorded`: the fingerprint on the existing group (`stored_fingerprint`); `previous`: the
    definition it stands for, when known, to name what changed."""
    name = spec.online_store.feature_group_name
    wanted = feature_definitions(spec)
    now = fingerprint(spec)
    if existing is None:
        return Plan(name, "create", additions=wanted, fingerprint=now, recorded=None,
                    notes=[f"definition {now}: recorded on the group"])
    problems: list[str] = []
    if existing.get("RecordIdentifierFeatureName") != spec.entity.key:
        problems.append(f"record identifier is {existing.get('RecordIdentifierFeatureName')!r}, the spec says "
                        f"{spec.entity.key!r}: identifiers cannot change, create a new feature group")
    if existing.get("EventTimeFeatureName") != spec.event_time.field:
        problems.append(f"event time feature is {existing.get('EventTimeFeatureName')!r}, the spec says "
                        f"{spec.event_time.field!r}: it cannot change, create a new feature group")
    have = {d["FeatureName"]: d["FeatureType"] for d in existing.get("FeatureDefinitions", [])}
    additions, unchanged = [], []
    for definition in wanted:
        current = have.get(definition["FeatureName"])
        if current is None:
            additions.append(definition)
        elif current != definition["FeatureType"]:
            problems.append(f"{definition['FeatureName']}: type {current} → {definition['FeatureType']}: "
                            "a feature's type cannot change, use a new feature name or group")
        else:
            unchanged.append(definition["FeatureName"])
    wanted_names = {d["FeatureName"] for d in wanted}
    for removed in sorted(set(have) - wanted_names):
        problems.append(f"{removed}: in the feature group but not in the spec: SageMaker cannot remove features")
    notes, definition_problems = definition_notes(spec, recorded, {d["FeatureName"] for d in additions}, previous)
    return Plan(name, "update" if additions else "none", additions=additions,
                problems=problems + definition_problems, unchanged=unchanged, fingerprint=now,
                recorded=recorded, notes=notes)


def describe_or_none(client: Any, name: str) -> dict[str, Any] | None:
    try:
        description: dict[str, Any] = client.describe_feature_group(FeatureGroupName=name)
    except client.exceptions.ResourceNotFound:
        return None
    return description


def _creating(description: dict[str, Any]) -> bool:
    return bool(description.get("FeatureGroupStatus") == "Creating")


def _updating(description: dict[str, Any]) -> bool:
    return bool((description.get("LastUpdateStatus") or {}).get("Status") == "InProgress")


def _wait(client: Any, name: str, busy: Callable[[dict[str, Any]], bool], what: str,
          timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    description: dict[str, Any] = client.describe_feature_group(FeatureGroupName=name)
    while busy(description):
        if time.monotonic() > deadline:
            raise FeatureStreamError(f"feature group {name} still {what} after {timeout_s:.0f}s")
        time.sleep(1.0)
        description = client.describe_feature_group(FeatureGroupName=name)
    return description


def apply_plan(client: Any, spec: FeatureGroupSpec, profile: EnvironmentProfile, the_plan: Plan,
               timeout_s: float = 300.0) -> dict[str, Any]:
    """Carry out a plan without problems; return the group's description once it is ready."""
    name = the_plan.feature_group_name
    if the_plan.problems:
        raise IncompatibleChangeError(f"feature group {name}: " + "; ".join(the_plan.problems))
    if the_plan.action == "create":
        client.create_feature_group(**create_request(spec, profile))
    elif the_plan.action == "update":
        client.update_feature_group(FeatureGroupName=name, FeatureAdditions=the_plan.additions)
    description = _wait(client, name, _creating, "creating", timeout_s)
    if description.get("FeatureGroupStatus") != "Created":
        raise FeatureStreamError(
            f"feature group {name} is {description.get('FeatureGroupStatus')}: {description.get('FailureReason', '')}"
        )
    if the_plan.action == "update":
        description = _wait(client, name, _updating, "updating", timeout_s)
    if the_plan.action != "create" and the_plan.records_fingerprint:
        client.add_tags(ResourceArn=description["FeatureGroupArn"],
                        Tags=[{"Key": DEFINITION_TAG, "Value": the_plan.fingerprint}])
    return description


def ensure_feature_group(client: Any, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                         timeout_s: float = 300.0) -> dict[str, Any]:
    """Create the group or add the spec's new features, refusing incompatible changes; idempotent."""
    existing = describe_or_none(client, spec.online_store.feature_group_name)
    recorded = stored_fingerprint(client, existing) if existing is not None else None
    return apply_plan(client, spec, profile, plan(spec, existing, recorded), timeout_s)
