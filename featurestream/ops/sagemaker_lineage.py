"""SageMaker ML Lineage Tracking for our jobs: artifacts, actions and associations, idempotently.

The graph (what Studio's lineage view and ListAssociations show):

    RDS source ─┐ ContributedTo                         Produced
    feature    ─┼──────────────► action (training-set) ─────────► training set artifact
    groups     ─┘                                                  (output URI, manifest)
    raw archive ── ContributedTo ─► action (stream/backfill) ── Produced ─► feature group
    feature group ── ContributedTo ─► action (compaction) ── Produced ─► compacted offline data

Identity, so that a re-run finds and reuses its entities instead of adding new ones:
- an artifact by (SourceUri, ArtifactType) and, when given, a `Custom` source id (the definition
  fingerprint of a feature group, the config hash of a training set): ListArtifacts by SourceUri
  finds it; a changed definition is a new artifact beside the old one, as it should be;
- an action by its name, `featurestream-<job>-<subject>-<12 hex of what identifies the run's
  definition>` (DescribeAction finds it);
- an association by its (source, destination) pair (ListAssociations before AddAssociation; an
  "already exists" answer from a concurrent run counts as done).

Failure policy (docs/operations.md#lineage): the lineage API failing is a **warning** by default:
the job's data is right, so it finishes; the failure is one JSON log line
(`sagemaker_lineage_failed`, with the call and AWS's error code and message), counted, and written
where the run reports (the training-set manifest, the JSON summary line). With
`lineage.sagemaker.required: true` it is an **error** instead: the job fails with one line
(exit 1) and no traceback. Either way nothing reaches the user as a traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from featurestream.config.credentials import redact
from featurestream.errors import FeatureStreamError

log = logging.getLogger(__name__)

FEATURE_GROUP = "FeatureGroup"
DATA_SOURCE = "DataSource"
RAW_ARCHIVE = "RawEventArchive"
TRAINING_SET = "TrainingSet"
OFFLINE_DATA = "DataSet"

CONTRIBUTED_TO = "ContributedTo"
PRODUCED = "Produced"

# botocore's model: a property value is at most 2,500 characters (4,096 for artifacts), 30 at most.
_MAX_VALUE = 2500
_MAX_PROPERTIES = 30


class LineageError(FeatureStreamError):
    """The lineage API refused or failed a call and `lineage.sagemaker.required` is set."""


@dataclass(frozen=True)
class Artifact:
    """One artifact to find or create. `source_id`: the version that tells apart artifacts of one URI."""

    uri: str
    type: str
    name: str | None = None
    source_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    job: str
    subject: str
    # What identifies the run's definition (a fingerprint, a config hash): part of the action's name.
    identity: str
    uri: str
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        digest = hashlib.sha256(f"{self.job}\0{self.subject}\0{self.identity}".encode()).hexdigest()[:12]
        # ExperimentEntityName: letters, digits and single hyphens, at most 120 characters.
        subject = "-".join(p for p in "".join(c if c.isalnum() else "-" for c in self.subject).split("-") if p)
        return f"featurestream-{self.job}-{subject[:60].strip('-')}-{digest}"


@dataclass
class Recorded:
    """What a run recorded: the ARNs by role, and the failure when there was one."""

    artifacts: dict[str, str] = field(default_factory=dict)
    action_arn: str | None = None
    associations: int = 0
    error: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"artifacts": dict(self.artifacts), "action_arn": self.action_arn,
                "associations": self.associations, "error": self.error}


class SageMakerLineage:
    """Find-or-create over one `sagemaker` client; every call's failure goes through `_failed`."""

    def __init__(self, client: Any, *, required: bool = False,
                 on_error: Callable[[], None] | None = None) -> None:
        self.client = client
        self.required = required
        self.on_error = on_error

    def record(self, action: Action, inputs: dict[str, Artifact], outputs: dict[str, Artifact]) -> Recorded:
        """Inputs ContributedTo the action, which Produced the outputs; keys name each role."""
        recorded = Recorded()
        try:
            for role, artifact in {**inputs, **outputs}.items():
                recorded.artifacts[role] = self.artifact(artifact)
            recorded.action_arn = self.action(action)
            for role in inputs:
                recorded.associations += self.associate(recorded.artifacts[role], recorded.action_arn, CONTRIBUTED_TO)
            for role in outputs:
                recorded.associations += self.associate(recorded.action_arn, recorded.artifacts[role], PRODUCED)
        except Exception as exc:
            recorded.error = self.failure(f"{action.job} {action.subject}", exc)
        return recorded

    def artifact(self, artifact: Artifact) -> str:
        for summary in self._pages("list_artifacts", "ArtifactSummaries", SourceUri=artifact.uri,
                                   ArtifactType=artifact.type):
            ids = {t.get("Value") for t in summary.get("Source", {}).get("SourceTypes", [])}
            if artifact.source_id is None or artifact.source_id in ids:
                return str(summary["ArtifactArn"])
        source: dict[str, Any] = {"SourceUri": artifact.uri}
        if artifact.source_id is not None:
            source["SourceTypes"] = [{"SourceIdType": "Custom", "Value": artifact.source_id}]
        request: dict[str, Any] = {"ArtifactType": artifact.type, "Source": source,
                                   "Properties": _properties(artifact.properties)}
        if artifact.name:
            request["ArtifactName"] = artifact.name
        arn = str(self.client.create_artifact(**request)["ArtifactArn"])
        log.info(json.dumps({"event": "sagemaker_lineage_artifact_created", "type": artifact.type,
                             "uri": artifact.uri, "arn": arn}))
        return arn

    def action(self, action: Action) -> str:
        try:
            return str(self.client.describe_action(ActionName=action.name)["ActionArn"])
        except Exception as exc:
            if _code(exc) != "ResourceNotFound":
                raise
        try:
            arn = str(self.client.create_action(
                ActionName=action.name, ActionType=f"featurestream-{action.job}", Status="Completed",
                Source={"SourceUri": action.uri, "SourceType": "featurestream"},
                Properties=_properties({"subject": action.subject, **action.properties}))["ActionArn"])
        except Exception as exc:
            if not _already_exists(exc):
                raise
            return str(self.client.describe_action(ActionName=action.name)["ActionArn"])  # a concurrent run's
        log.info(json.dumps({"event": "sagemaker_lineage_action_created", "name": action.name, "arn": arn}))
        return arn

    def associate(self, source: str, destination: str, edge: str) -> int:
        """1 when a new association was added, 0 when it was there already."""
        if self.client.list_associations(SourceArn=source, DestinationArn=destination)["AssociationSummaries"]:
            return 0
        try:
            self.client.add_association(SourceArn=source, DestinationArn=destination, AssociationType=edge)
        except Exception as exc:
            if not _already_exists(exc):
                raise
            return 0
        return 1

    def _pages(self, method: str, key: str, **request: Any) -> Iterator[dict[str, Any]]:
        token = None
        while True:
            page = getattr(self.client, method)(MaxResults=100, **request, **({"NextToken": token} if token else {}))
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return

    def failure(self, what: str, exc: Exception) -> str:
        """Report a failed call per the policy: the reason (a warning), or LineageError (required)."""
        if isinstance(exc, LineageError):
            raise exc
        code = _code(exc)
        text = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)[:300]
        reason = f"{code}: {text}" if code and code not in text else text
        log.warning(json.dumps({"event": "sagemaker_lineage_failed", "run": what, "error": reason,
                                "policy": "error" if self.required else "warning"}))
        if self.on_error is not None:
            self.on_error()
        if self.required:
            raise LineageError(f"SageMaker lineage for {what}: {reason}") from exc
        return reason


def feature_group_artifact(client: Any, name: str, fingerprint: str | None = None) -> Artifact:
    """A feature group's artifact: its ARN (DescribeFeatureGroup) and definition fingerprint (given by
    the job that has the definition, else the `featurestream:definition` tag the group carries)."""
    from featurestream.connectors.provisioning import stored_fingerprint

    description = client.describe_feature_group(FeatureGroupName=name)
    found = fingerprint or stored_fingerprint(client, description)
    group = str(description["FeatureGroupName"])
    return Artifact(uri=str(description["FeatureGroupArn"]), type=FEATURE_GROUP, name=entity_name(group),
                    source_id=found, properties={"feature_group_name": group,
                                                 "definition_fingerprint": found or "(none recorded)"})


def path_artifact(path: str, type_: str = OFFLINE_DATA, **properties: str) -> Artifact:
    """Files by URI: s3a:// as s3://, a local path as file:///absolute/path."""
    from featurestream.ops.lineage import path_dataset

    dataset = path_dataset(path)
    uri = "file://" + dataset.name if dataset.namespace == "file" else f"{dataset.namespace}/{dataset.name}"
    return Artifact(uri=uri, type=type_, properties=dict(properties))


def dataset_artifact(namespace: str, name: str, type_: str, **properties: str) -> Artifact:
    """An OpenLineage dataset (`postgres://host:port` + `db.schema.table`, `kafka://host:port` + topic)
    as one URI: the same name in both lineage systems."""
    return Artifact(uri=f"{namespace}/{name}", type=type_, properties=dict(properties))


def entity_name(text: str) -> str:
    """An ExperimentEntityName: letters and digits joined by hyphens, at most 120 characters."""
    parts = "".join(c if c.isalnum() else "-" for c in text).split("-")
    return "-".join(p for p in parts if p)[:120].strip("-") or "featurestream"


Artifacts = Callable[[], dict[str, Artifact]]


def record_run(lineage: SageMakerLineage | None, action: Action, inputs: Artifacts,
               outputs: Artifacts) -> Recorded | None:
    """Record one run when lineage is on; building the artifacts (DescribeFeatureGroup) is under the
    same failure policy as the lineage calls."""
    if lineage is None:
        return None
    try:
        found_inputs, found_outputs = inputs(), outputs()
    except LineageError:
        raise
    except Exception as exc:
        return Recorded(error=lineage.failure(f"{action.job} {action.subject}", exc))
    return lineage.record(action, found_inputs, found_outputs)


def _properties(values: dict[str, str]) -> dict[str, str]:
    items = list(values.items())[:_MAX_PROPERTIES]
    return {str(k)[:_MAX_VALUE]: redact(str(v))[:_MAX_VALUE] for k, v in items if v is not None}


def _code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or "") or None
    return None


def _already_exists(exc: Exception) -> bool:
    return _code(exc) == "ValidationException" and "already exists" in str(exc)


def client_for(region: str) -> Any:
    """The `sagemaker` client (AWS_ENDPOINT_URL_SAGEMAKER points it at the emulator locally)."""
    import boto3
    from botocore.config import Config

    return boto3.client("sagemaker", region_name=region,
                        config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5,
                                      read_timeout=20))
