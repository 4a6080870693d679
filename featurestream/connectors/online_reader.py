"""Reading online records back: BatchGetRecord, up to 100 identifiers a call (AWS's limit).

Identifiers the service could not process (`UnprocessedIdentifiers`) are asked again, with a short
back-off, a bounded number of times; records it reports as errors raise. The result maps each
identifier that has a record to its features as text (what the service returns).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from featurestream.errors import FeatureStreamError

MAX_IDENTIFIERS = 100  # BatchGetRecord's limit per call
RETRIES = 8


class OnlineReadError(FeatureStreamError):
    """BatchGetRecord reported errors or left identifiers unprocessed after every retry."""


def batch_get_records(client: Any, feature_group: str, identifiers: Iterable[str],
                      retries: int = RETRIES) -> dict[str, dict[str, str]]:
    ids = list(dict.fromkeys(identifiers))
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), MAX_IDENTIFIERS):
        pending = ids[start:start + MAX_IDENTIFIERS]
        for attempt in range(retries + 1):
            response = client.batch_get_record(
                Identifiers=[{"FeatureGroupName": feature_group, "RecordIdentifiersValueAsString": pending}])
            errors = response.get("Errors") or []
            if errors:
                first = errors[0]
                raise OnlineReadError(f"BatchGetRecord of {feature_group}: {first.get('ErrorCode')}: "
                                      f"{first.get('ErrorMessage')} ({len(errors)} errors)")
            for record in response.get("Records") or []:
                values = {f["FeatureName"]: f["ValueAsString"] for f in record.get("Record") or []}
                found[str(record["RecordIdentifierValueAsString"])] = values
            pending = [str(i) for u in response.get("UnprocessedIdentifiers") or []
                       for i in u.get("RecordIdentifiersValueAsString") or []]
            if not pending:
                break
            if attempt == retries:
                raise OnlineReadError(f"BatchGetRecord of {feature_group}: {len(pending)} identifiers "
                                      f"still unprocessed after {retries} retries")
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
    return found
