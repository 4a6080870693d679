"""The consistency gauges go out with the run's batch metrics, per group (`target`) and feature
(the textfile form here; the Pushgateway form shares `registry_of`)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from featurestream.config.profile import BatchMetricsSpec
from featurestream.consistency.summary import gauges
from featurestream.ops.batch_metrics import published_run
from tests.consistency.test_report_browser import result_with_differences


def test_consistency_gauges_are_published_per_group_and_feature(tmp_path: Path) -> None:
    result = result_with_differences(tmp_path)
    with published_run(BatchMetricsSpec(pushgateway=None, textfile_dir=str(tmp_path / "prom")),
                       "consistency", "cards") as run:
        run.gauges = gauges(result)
    text = next((tmp_path / "prom").glob("*.prom")).read_text()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"batch_job": "consistency", "target": "cards", **labels}.items())))]

    tally = result.tallies["total_5m"]
    assert value("featurestream_consistency_match_rate", feature="total_5m") == tally.match_rate < 1.0
    assert value("featurestream_consistency_match_rate", feature="n_5m") == 1.0
    assert value("featurestream_consistency_different", feature="total_5m") == tally.different == 3
    assert value("featurestream_consistency_explained", feature="total_5m", cause="in_flight") == 1
    assert value("featurestream_consistency_offline_entities", outcome="behind") == 3
    assert value("featurestream_consistency_thresholds_exceeded") == len(result.exceeded) > 0
    assert value("featurestream_batch_last_run_success") == 1.0
