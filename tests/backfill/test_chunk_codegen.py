"""A chunk's watermark leaves the code Spark generates for the batch pass unchanged.

Spark writes a literal into a stage's generated class, so a value that changes per chunk made
every daily chunk compile new classes and the JVM JIT-compile them again (the write time's share
is checked by test_resume's re-run). The same chunk bounds here: the source's range filter keeps
its literals for the readers' pushdown.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestream.backfill.chunks import Chunk
from featurestream.backfill.job import BackfillRequest, Carried, _read_chunk, _state_frame
from featurestream.backfill.sources import FileSource
from featurestream.config import load_feature_group, load_profile
from featurestream.engine import aggregation

START = datetime(2026, 3, 1, tzinfo=UTC)
# One feature: the generated code is what is compared, and it is compiled (the smaller the faster).
GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source: {type: kafka, topic: codegen, format: json, schema: {card_id: string, amount: double, event_time: timestamp}}
windows: {tile: 1m, allowed_lateness: 2m}
features:
  - {name: total, agg: sum, column: amount, windows: [5m]}
online_store: {feature_group_name: codegen, ttl: 7d}
"""


def _code(frame: Any) -> list[str]:
    """The source of every whole-stage class of the frame's plan (without running it)."""
    stages = frame._jdf.queryExecution().debug().codegenToSeq()
    return [str(stages.apply(i)._2()) for i in range(stages.size())]


def test_the_watermark_does_not_change_generated_code(spark: Any, tmp_path: Path) -> None:
    group = tmp_path / "codegen.yaml"
    group.write_text(GROUP)
    spec = load_feature_group(group)
    events = tmp_path / "events.json"
    events.write_text("".join(json.dumps({"card_id": f"c{i % 3}", "amount": 1.0 + i,
                                          "event_time": (START + timedelta(minutes=i)).isoformat()}) + "\n"
                              for i in range(6)))
    profile = load_profile("local").model_copy(update={"checkpoint_root": str(tmp_path / "checkpoints")})
    request = BackfillRequest(spec, str(group), profile, FileSource(str(events), "json"), START,
                              START + timedelta(days=1), 86_400_000, str(tmp_path / "data"))
    chunk = Chunk(0, START, START + timedelta(days=1))
    codes = []
    for watermark in (1_000, 90_061_000):
        laid_out, _, _ = _read_chunk(spark, request, chunk, watermark)
        output = aggregation.run_history_pass(laid_out, _state_frame(spark, Carried()), spec,
                                              watermark=watermark, watermark_after=watermark + 60_000)
        codes.append(_code(output))
    assert codes[0], "no whole-stage code generated"
    assert codes[0] == codes[1]
