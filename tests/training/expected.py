"""The oracle queries that match `Loaded.spec()` (tests/training/conftest.py)."""

from __future__ import annotations

from tests.training.oracle import GroupQuery

LABEL_COLUMNS = ["label_id", "card_id", "merchant", "label_time", "is_fraud", "amount"]

CARD_ACTIVITY = GroupQuery(
    "card_activity", {"card_id": "card_id"},
    {"txn_count_5m": "txn_count_5m", "amount_sum_5m": "amount_sum_5m"},
    "card_activity_event_time", ttl_seconds=2 * 3600,
)
CARD_PROFILE = GroupQuery(
    "card_profile", {"card_id": "card_id"},
    {"segment": "profile_segment", "limit": "profile_credit_limit"},
    "profile_event_time", event_time_is_string=True,
)
MERCHANT_RISK = GroupQuery(
    "merchant_risk", {"merchant": "merchant_id"}, {"risk_score": "risk_score"}, "merchant_risk_event_time",
)
ALL_GROUPS = [CARD_ACTIVITY, CARD_PROFILE, MERCHANT_RISK]


def output_columns(groups: list[GroupQuery]) -> list[str]:
    columns = list(LABEL_COLUMNS)
    for group in groups:
        columns.append(group.event_time_output)
        columns.extend(group.features.values())
    return columns
