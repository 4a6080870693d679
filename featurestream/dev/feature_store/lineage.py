"""SageMaker ML Lineage Tracking: artifacts, actions, contexts and their associations.

The operations our jobs call (CreateArtifact/Action/Context, AddAssociation, Describe*, List* with
their filters, sort and paging), with the shapes and limits of botocore's `sagemaker` model
(2017-07-24). State is a SQLite file beside the online store, so it survives a restart.

AWS behaviour kept here: an artifact is named by a generated id in its ARN (its name is optional,
and several artifacts may share a SourceUri: finding one again is the caller's job, with
ListArtifacts by SourceUri); actions and contexts are named, the name is unique per account
(case-insensitive) and lower-cased in the ARN; a second CreateAction/CreateContext with a taken
name, or a second AddAssociation of the same pair, is a ValidationException saying it already
exists; an association to an entity that does not exist is ResourceNotFound.

QueryLineage walks the associations from its start ARN (at most one, as the model says): up them
(`Ascendants`), down them (`Descendants`) or both ways (`Both`, the default here as in the
SageMaker Python SDK: the ascendants and the descendants of the start, not every entity joined to
them by a zig-zag path), up to `MaxDepth` associations away (default and maximum 10). The start
itself is not a vertex of the answer. `Filters` choose which vertices are returned (an entity's
type, its lineage type, its creation and modification times, its properties), not which ones the
walk goes through. Vertices come nearest first (by depth, then ARN), `MaxResults` (default 10,
at most 50) a page; with `IncludeEdges`, a page also holds the associations by which its
vertices were reached (each association once over the pages).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from featurestream.dev.feature_store.errors import InvalidInput, NotFound
from featurestream.dev.feature_store.types import request_timestamp

Body = dict[str, Any]

_ENTITY_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}")
_CONTEXT_NAME = re.compile(r"[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,119}")
_ASSOCIATION_ARN = re.compile(
    r"arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:(experiment|experiment-trial-component|artifact|action|context)/.*")
EDGE_TYPES = ("ContributedTo", "AssociatedWith", "DerivedFrom", "Produced", "SameAs")
ACTION_STATUSES = ("Unknown", "InProgress", "Completed", "Failed", "Stopping", "Stopped")
SOURCE_ID_TYPES = ("MD5Hash", "S3ETag", "S3Version", "Custom")
MAX_PROPERTIES = 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (
    arn TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, name_key TEXT, type TEXT NOT NULL,
    source_uri TEXT NOT NULL, created REAL NOT NULL, body TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS entities_name ON entities (kind, name_key) WHERE name_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS associations (
    source_arn TEXT NOT NULL, destination_arn TEXT NOT NULL, type TEXT, created REAL NOT NULL,
    PRIMARY KEY (source_arn, destination_arn));
"""


class LineageStore:
    """Entities and edges in one SQLite file; one connection behind a lock (the calls are rare)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def insert_entity(self, arn: str, kind: str, name: str | None, type_: str, source_uri: str,
                      created: float, body: Body) -> None:
        key = name.lower() if name is not None and kind != "artifact" else None
        with self._lock:
            try:
                self._conn.execute("INSERT INTO entities VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                   (arn, kind, name, key, type_, source_uri, created, json.dumps(body)))
            except sqlite3.IntegrityError:
                raise InvalidInput(f"{kind.capitalize()} '{name}' already exists.") from None

    def entity(self, arn: str) -> Body | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM entities WHERE arn = ?", (arn,)).fetchone()
        return json.loads(row[0]) if row else None

    def entities(self, kind: str) -> list[Body]:
        with self._lock:
            rows = self._conn.execute("SELECT body FROM entities WHERE kind = ?", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def insert_association(self, source: str, destination: str, type_: str | None, created: float) -> None:
        with self._lock:
            try:
                self._conn.execute("INSERT INTO associations VALUES (?, ?, ?, ?)",
                                   (source, destination, type_, created))
            except sqlite3.IntegrityError:
                raise InvalidInput(f"Association between '{source}' and '{destination}' already exists.") from None

    def associations(self) -> list[tuple[str, str, str | None, float]]:
        with self._lock:
            return list(self._conn.execute("SELECT source_arn, destination_arn, type, created FROM associations"))


class LineageApi:
    """The lineage operations, dispatched by the control plane like the feature-group ones."""

    def __init__(self, store: LineageStore, region: str, account: str) -> None:
        self.store = store
        self.prefix = f"arn:aws:sagemaker:{region}:{account}"
        self.operations: dict[str, Callable[[Body], Body]] = {
            "CreateArtifact": self.create_artifact, "CreateAction": self.create_action,
            "CreateContext": self.create_context, "AddAssociation": self.add_association,
            "DescribeArtifact": self.describe_artifact, "DescribeAction": self.describe_action,
            "DescribeContext": self.describe_context, "ListArtifacts": self.list_artifacts,
            "ListActions": self.list_actions, "ListContexts": self.list_contexts,
            "ListAssociations": self.list_associations, "QueryLineage": self.query_lineage,
        }

    # -- create ---------------------------------------------------------------------------------

    def create_artifact(self, body: Body) -> Body:
        name = body.get("ArtifactName")
        if name is not None:
            _name(name, "ArtifactName", _ENTITY_NAME)
        source = _source(body.get("Source"), artifact=True)
        type_ = _string(body.get("ArtifactType"), "ArtifactType", 256, required=True)
        arn = f"{self.prefix}:artifact/{uuid.uuid4().hex}"
        entity = {"ArtifactArn": arn, "Source": source, "ArtifactType": type_,
                  "Properties": _properties(body.get("Properties"), 4096),
                  **_common(body), **({"ArtifactName": name} if name is not None else {})}
        self.store.insert_entity(arn, "artifact", name, type_, source["SourceUri"], entity["CreationTime"], entity)
        return {"ArtifactArn": arn}

    def create_action(self, body: Body) -> Body:
        name = _name(body.get("ActionName"), "ActionName", _ENTITY_NAME)
        status = body.get("Status", "Unknown")
        if status not in ACTION_STATUSES:
            raise InvalidInput(f"Status '{status}' is not one of {', '.join(ACTION_STATUSES)}.")
        entity = self._named("action", name, body, "ActionType", {"Status": status})
        return {"ActionArn": entity["ActionArn"]}

    def create_context(self, body: Body) -> Body:
        name = _name(body.get("ContextName"), "ContextName", _CONTEXT_NAME)
        entity = self._named("context", name, body, "ContextType", {})
        return {"ContextArn": entity["ContextArn"]}

    def _named(self, kind: str, name: str, body: Body, type_field: str, extra: Body) -> Body:
        title = kind.capitalize()
        source = _source(body.get("Source"), artifact=False)
        type_ = _string(body.get(type_field), type_field, 256, required=True)
        description = _string(body.get("Description"), "Description", 3072)
        arn = f"{self.prefix}:{kind}/{name.lower()}"
        entity = {f"{title}Name": name, f"{title}Arn": arn, "Source": source, type_field: type_,
                  "Properties": _properties(body.get("Properties"), 2500), **extra, **_common(body)}
        if kind == "context":
            entity.pop("MetadataProperties", None)
        if description is not None:
            entity["Description"] = description
        self.store.insert_entity(arn, kind, name, type_, source["SourceUri"], entity["CreationTime"], entity)
        return entity

    def add_association(self, body: Body) -> Body:
        arns = []
        for field in ("SourceArn", "DestinationArn"):
            arn = body.get(field)
            if not isinstance(arn, str) or len(arn) > 256 or not _ASSOCIATION_ARN.fullmatch(arn):
                raise InvalidInput(f"{field} '{arn}' is not a valid lineage entity ARN.")
            if self.store.entity(arn) is None:
                raise NotFound(f"Entity '{arn}' does not exist.")
            arns.append(arn)
        source, destination = arns
        edge = body.get("AssociationType")
        if edge is not None and edge not in EDGE_TYPES:
            raise InvalidInput(f"AssociationType '{edge}' is not one of {', '.join(EDGE_TYPES)}.")
        self.store.insert_association(source, destination, edge, time.time())
        return {"SourceArn": source, "DestinationArn": destination}

    # -- describe -------------------------------------------------------------------------------

    def describe_artifact(self, body: Body) -> Body:
        arn = body.get("ArtifactArn")
        if not isinstance(arn, str) or not arn.startswith(f"{self.prefix}:artifact/"):
            raise InvalidInput(f"ArtifactArn '{arn}' is not a valid artifact ARN.")
        return self._found(arn, "Artifact")

    def describe_action(self, body: Body) -> Body:
        return self._found(self._arn("action", body.get("ActionName"), "ActionName"), "Action")

    def describe_context(self, body: Body) -> Body:
        return self._found(self._arn("context", body.get("ContextName"), "ContextName"), "Context")

    def _arn(self, kind: str, name_or_arn: Any, field: str) -> str:
        if not isinstance(name_or_arn, str) or not name_or_arn:
            raise InvalidInput(f"{field} is required.")
        if name_or_arn.startswith("arn:"):
            return name_or_arn
        return f"{self.prefix}:{kind}/{name_or_arn.lower()}"

    def _found(self, arn: str, title: str) -> Body:
        entity = self.store.entity(arn)
        if entity is None or f"{title}Arn" not in entity:
            raise NotFound(f"{title} '{arn}' does not exist.")
        return entity

    # -- list -----------------------------------------------------------------------------------

    def list_artifacts(self, body: Body) -> Body:
        return self._list("artifact", "Artifact", "ArtifactType", body, ("CreationTime",),
                          ("ArtifactArn", "ArtifactName", "Source", "ArtifactType"))

    def list_actions(self, body: Body) -> Body:
        return self._list("action", "Action", "ActionType", body, ("Name", "CreationTime"),
                          ("ActionArn", "ActionName", "Source", "ActionType", "Status"))

    def list_contexts(self, body: Body) -> Body:
        return self._list("context", "Context", "ContextType", body, ("Name", "CreationTime"),
                          ("ContextArn", "ContextName", "Source", "ContextType"))

    def _list(self, kind: str, title: str, type_field: str, body: Body, sort_keys: tuple[str, ...],
              fields: tuple[str, ...]) -> Body:
        items = self.store.entities(kind)
        uri = body.get("SourceUri")
        if uri is not None:
            items = [e for e in items if e["Source"]["SourceUri"] == uri]
        if body.get(type_field) is not None:
            items = [e for e in items if e[type_field] == body[type_field]]
        items = _created_between(items, body)
        sort_by = _sort(body, sort_keys)
        key: Callable[[Body], Any] = ((lambda e: (e.get(f"{title}Name", ""), e["CreationTime"]))
                                      if sort_by == "Name" else (lambda e: e["CreationTime"]))
        items.sort(key=key, reverse=body.get("SortOrder", "Descending") == "Descending")
        summaries = [{f: e[f] for f in (*fields, "CreationTime", "LastModifiedTime") if f in e} for e in items]
        return _page(summaries, body, f"{title}Summaries")

    def list_associations(self, body: Body) -> Body:
        summaries = []
        for source, destination, edge, created in self.store.associations():
            source_entity, destination_entity = self.store.entity(source), self.store.entity(destination)
            summary: Body = {"SourceArn": source, "DestinationArn": destination, "CreationTime": created}
            for side, entity in (("Source", source_entity), ("Destination", destination_entity)):
                if entity is not None:
                    summary[f"{side}Type"] = _entity_type(entity)
                    name = _entity_name(entity)
                    if name:
                        summary[f"{side}Name"] = name
            if edge is not None:
                summary["AssociationType"] = edge
            summaries.append(summary)
        for field in ("SourceArn", "DestinationArn", "SourceType", "DestinationType", "AssociationType"):
            if body.get(field) is not None:
                summaries = [s for s in summaries if s.get(field) == body[field]]
        if body.get("AssociationType") is not None and body["AssociationType"] not in EDGE_TYPES:
            raise InvalidInput(f"AssociationType '{body['AssociationType']}' is not one of {', '.join(EDGE_TYPES)}.")
        summaries = _created_between(summaries, body)
        sort_by = _sort(body, ("SourceArn", "DestinationArn", "SourceType", "DestinationType", "CreationTime"))
        summaries.sort(key=lambda s: (s.get(sort_by) or "", s["CreationTime"]) if sort_by != "CreationTime"
                       else s["CreationTime"], reverse=body.get("SortOrder", "Descending") == "Descending")
        return _page(summaries, body, "AssociationSummaries")

    # -- query ----------------------------------------------------------------------------------

    def query_lineage(self, body: Body) -> Body:
        starts = body.get("StartArns") or []
        if not isinstance(starts, list) or len(starts) > 1 or not all(
                isinstance(a, str) and _ASSOCIATION_ARN.fullmatch(a) for a in starts):
            raise InvalidInput("StartArns holds at most 1 lineage entity ARN.")
        direction = body.get("Direction", "Both")
        if direction not in ("Both", "Ascendants", "Descendants"):
            raise InvalidInput(f"Direction '{direction}' is not one of Both, Ascendants, Descendants.")
        depth = body.get("MaxDepth", QUERY_MAX_DEPTH)
        if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth <= QUERY_MAX_DEPTH:
            raise InvalidInput(f"MaxDepth must be between 0 and {QUERY_MAX_DEPTH}.")
        matches = _query_filter(body.get("Filters"))
        for start in starts:
            if self.store.entity(start) is None:
                raise NotFound(f"Entity '{start}' does not exist.")
        edges = self.store.associations()
        reached: dict[str, tuple[int, list[Body]]] = {}  # ARN -> (depth, the edges that reached it)
        ways = {"Both": (True, True), "Ascendants": (True, False), "Descendants": (False, True)}[direction]
        for start in starts:
            for upward, wanted in zip((True, False), ways, strict=True):
                if wanted:
                    _walk(start, upward, depth, edges, reached)
        vertices: list[Body] = []
        for arn, (_depth, via) in sorted(reached.items(), key=lambda item: (item[1][0], item[0])):
            entity = self.store.entity(arn)
            if entity is not None and matches(entity):
                vertices.append({"Arn": arn, "Type": _entity_type(entity), "LineageType": _lineage_type(entity),
                                 "via": via})
        limit = body.get("MaxResults", 10)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= QUERY_MAX_RESULTS:
            raise InvalidInput(f"MaxResults must be between 1 and {QUERY_MAX_RESULTS}.")
        page = _page(vertices, {"MaxResults": limit, "NextToken": body.get("NextToken")}, "Vertices")
        out: Body = {"Vertices": [{k: v for k, v in vertex.items() if k != "via"} for vertex in page["Vertices"]],
                     "Edges": [edge for vertex in page["Vertices"] for edge in vertex["via"]]
                     if body.get("IncludeEdges") else []}
        if "NextToken" in page:
            out["NextToken"] = page["NextToken"]
        return out


QUERY_MAX_DEPTH = 10
QUERY_MAX_RESULTS = 50


def _walk(start: str, upward: bool, max_depth: int, edges: list[tuple[str, str, str | None, float]],
          reached: dict[str, tuple[int, list[Body]]]) -> None:
    """Breadth first from `start` along the associations (against their direction when `upward`),
    recording each entity's depth and the associations that first reached it."""
    frontier, seen = [start], {start}
    for level in range(1, max_depth + 1):
        found: dict[str, list[Body]] = {}
        for source, destination, edge_type, _ in edges:
            here, there = (destination, source) if upward else (source, destination)
            if here in frontier and there not in seen:
                edge: Body = {"SourceArn": source, "DestinationArn": destination}
                if edge_type is not None:
                    edge["AssociationType"] = edge_type
                found.setdefault(there, []).append(edge)
        for arn, via in found.items():
            seen.add(arn)
            if arn not in reached or reached[arn][0] > level:
                reached[arn] = (level, via)
        frontier = list(found)
        if not frontier:
            return


def _query_filter(filters: Any) -> Callable[[Body], bool]:
    """QueryLineage's Filters as a test on an entity (every given clause must hold)."""
    if filters is None:
        return lambda _entity: True
    if not isinstance(filters, dict):
        raise InvalidInput("Filters must be a structure.")
    types, lineage_types = filters.get("Types"), filters.get("LineageTypes")
    properties = filters.get("Properties") or {}
    if types is not None and (not isinstance(types, list) or len(types) > 5):
        raise InvalidInput("Filters.Types holds at most 5 types.")
    if lineage_types is not None and (not isinstance(lineage_types, list) or not all(
            t in ("TrialComponent", "Artifact", "Context", "Action") for t in lineage_types)):
        raise InvalidInput("Filters.LineageTypes holds TrialComponent, Artifact, Context or Action.")
    if not isinstance(properties, dict) or len(properties) > 5:
        raise InvalidInput("Filters.Properties holds at most 5 entries.")
    created_before, created_after = (request_timestamp(filters.get(n)) for n in ("CreatedBefore", "CreatedAfter"))
    modified_before, modified_after = (request_timestamp(filters.get(n)) for n in ("ModifiedBefore", "ModifiedAfter"))

    def between(moment: float, after: float | None, before: float | None) -> bool:
        return (after is None or moment > after) and (before is None or moment < before)

    def matches(entity: Body) -> bool:
        created = float(entity["CreationTime"])
        modified = float(entity.get("LastModifiedTime") or created)
        return ((types is None or _entity_type(entity) in types)
                and (lineage_types is None or _lineage_type(entity) in lineage_types)
                and all(entity.get("Properties", {}).get(k) == v for k, v in properties.items())
                and between(created, created_after, created_before)
                and between(modified, modified_after, modified_before))

    return matches


def _lineage_type(entity: Body) -> str:
    return "Artifact" if "ArtifactArn" in entity else "Action" if "ActionArn" in entity else "Context"


def _entity_type(entity: Body) -> str:
    return str(entity.get("ArtifactType") or entity.get("ActionType") or entity.get("ContextType"))


def _entity_name(entity: Body) -> str | None:
    return entity.get("ArtifactName") or entity.get("ActionName") or entity.get("ContextName")


def _name(value: Any, field: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInput(f"{field} '{value}' must match {pattern.pattern} (1 to 120 characters).")
    return value


def _string(value: Any, field: str, limit: int, *, required: bool = False) -> Any:
    if value is None:
        if required:
            raise InvalidInput(f"{field} is required.")
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise InvalidInput(f"{field} must be a string of at most {limit} characters.")
    return value


def _source(value: Any, *, artifact: bool) -> Body:
    if not isinstance(value, dict):
        raise InvalidInput("Source is required.")
    uri = value.get("SourceUri")
    if not isinstance(uri, str) or not 1 <= len(uri) <= 2048:
        raise InvalidInput("Source.SourceUri must be 1 to 2048 characters.")
    source: Body = {"SourceUri": uri}
    if artifact:
        types = value.get("SourceTypes")
        if types is not None:
            if not isinstance(types, list) or not all(
                    isinstance(t, dict) and t.get("SourceIdType") in SOURCE_ID_TYPES
                    and isinstance(t.get("Value"), str) and len(t["Value"]) <= 256 for t in types):
                raise InvalidInput(f"Source.SourceTypes: each needs a SourceIdType ({', '.join(SOURCE_ID_TYPES)}) "
                                   "and a Value of at most 256 characters.")
            source["SourceTypes"] = [{"SourceIdType": t["SourceIdType"], "Value": t["Value"]} for t in types]
        return source
    for field in ("SourceType", "SourceId"):
        if value.get(field) is not None:
            source[field] = _string(value[field], f"Source.{field}", 256)
    return source


def _properties(value: Any, value_limit: int) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_PROPERTIES:
        raise InvalidInput(f"Properties must be a map of at most {MAX_PROPERTIES} entries.")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 2500 or len(item) > value_limit:
            raise InvalidInput(f"Property '{str(key)[:80]}' must be a string of at most {value_limit} characters.")
    return dict(value)


def _common(body: Body) -> Body:
    now = time.time()
    common: Body = {"CreationTime": now, "LastModifiedTime": now}
    metadata = body.get("MetadataProperties")
    if metadata is not None:
        if not isinstance(metadata, dict) or any(
                k not in ("CommitId", "Repository", "GeneratedBy", "ProjectId") or not isinstance(v, str)
                or len(v) > 1024 for k, v in metadata.items()):
            raise InvalidInput("MetadataProperties holds CommitId, Repository, GeneratedBy and ProjectId strings.")
        common["MetadataProperties"] = dict(metadata)
    return common


def _sort(body: Body, keys: tuple[str, ...]) -> str:
    sort_by = body.get("SortBy", "CreationTime")
    if sort_by not in keys or body.get("SortOrder", "Descending") not in ("Ascending", "Descending"):
        raise InvalidInput(f"SortBy must be one of {', '.join(keys)}, SortOrder Ascending or Descending.")
    return str(sort_by)


def _created_between(items: list[Body], body: Body) -> list[Body]:
    after, before = request_timestamp(body.get("CreatedAfter")), request_timestamp(body.get("CreatedBefore"))
    return [i for i in items if (after is None or i["CreationTime"] > after)
            and (before is None or i["CreationTime"] < before)]


def _page(items: list[Body], body: Body, key: str) -> Body:
    limit = body.get("MaxResults", 10)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
        raise InvalidInput("MaxResults must be between 1 and 100.")
    token = body.get("NextToken")
    start = 0
    if token not in (None, ""):
        try:
            start = int(json.loads(base64.urlsafe_b64decode(str(token).encode()))["o"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput("NextToken is not valid.") from exc
    out: Body = {key: items[start:start + limit]}
    if start + limit < len(items):
        out["NextToken"] = base64.urlsafe_b64encode(json.dumps({"o": start + limit}).encode()).decode()
    return out
