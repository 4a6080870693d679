"""The HTML report in a real headless browser (Debian's Chromium): it loads with no console line,
needs no network, and every figure renders with a size. A page with a script error is caught (the
check can fail)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from featurestream.backfill.sources import FileSource
from featurestream.config import load_feature_group, load_profile
from featurestream.consistency.compare import IN_FLIGHT, FeatureTally
from featurestream.consistency.job import ConsistencyRequest, ConsistencyResult, OfflineEntity, exceeded
from featurestream.consistency.report import render
from featurestream.consistency.sample import SampledEntity
from featurestream.consistency.summary import summary
from tests.consistency.browser import load
from tests.engine.harness import GROUP_YAML

FIGURES = ("match-rate", "differences", "offline-outcomes", "offline-lag")


def result_with_differences(tmp_path: Path) -> ConsistencyResult:
    spec_file = tmp_path / "cards.yaml"
    spec_file.write_text(GROUP_YAML.replace("TOPIC", "t").replace("FGNAME", "cards-report"))
    spec = load_feature_group(spec_file)
    request = ConsistencyRequest(spec, str(spec_file), load_profile("local"), FileSource("events.jsonl", "json"),
                                 None, "offline/data", None, "work", sample_size=40)
    tallies = {"n_5m": FeatureTally("n_5m", "Integral"), "total_5m": FeatureTally("total_5m", "Fractional"),
               "last_merchant_5m": FeatureTally("last_merchant_5m", "String")}
    for i in range(40):
        entity, stamp = f"card-{i}", "2026-12-01T10:00:00.000Z"
        tallies["n_5m"].add(entity, stamp, i % 7, i % 7, 1e-9, None)
        tallies["total_5m"].add(entity, stamp, 10.0 + (0.5 * i if i % 9 == 0 else 0), 10.0, 1e-9,
                                IN_FLIGHT if i == 9 else None)
        tallies["last_merchant_5m"].add(entity, stamp, "m-1", "m-1" if i % 13 else "m-2", 1e-9, None)
    online_ms = 1_764_583_200_000
    offline = [OfflineEntity(f"card-{i}", outcome, online_ms, None if outcome == "missing" else online_ms - lag,
                             None if outcome == "missing" else lag / 1000 + 5)
               for i, (outcome, lag) in enumerate([("equal", 0)] * 30 + [("behind", 4_000), ("behind", 700_000),
                                                                         ("behind", 90_000), ("missing", 0)])]
    sample = [SampledEntity(f"card-{i}", i < 4, 100 - i) for i in range(40)]
    result = ConsistencyResult(request, datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC), sample,
                               [], tallies, offline, {"uncompacted_files": 3, "compacted": 0}, 12.5)
    result.exceeded = exceeded(result)
    return result


def _figures(dom: str) -> dict[str, str]:
    """Figure id → its rendered size as the page's script recorded it in the browser."""
    found = {}
    for match in re.finditer(r"<figure([^>]*)>", dom):
        attributes = dict(re.findall(r'([\w-]+)="([^"]*)"', match.group(1)))
        found[attributes.get("id", "")] = attributes.get("data-rendered", "")
    return found


def test_the_report_loads_in_chromium_without_console_errors_and_every_figure_renders(tmp_path: Path) -> None:
    result = result_with_differences(tmp_path)
    page = tmp_path / "report.html"
    html = render(result, summary(result))
    page.write_text(html, encoding="utf-8")
    # Self-contained: nothing the browser would fetch.
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    dom, console = load(page, tmp_path / "profile")
    assert console == []
    sizes = _figures(dom)
    assert set(FIGURES) <= set(sizes), sizes
    for figure in FIGURES:
        width, _, height = sizes[figure].partition("x")
        assert int(width) > 100 and int(height) > 50, (figure, sizes[figure])
    assert dom.count("<rect") >= 3 + 3 + 5  # bars of the three features, difference bins, outcomes
    assert "thresholds exceeded" in dom and "total_5m" in dom


def test_the_browser_check_catches_a_script_error(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text('<html><body><figure id="x"><svg></svg></figure><script>undefinedThing();</script></body></html>')
    _, console = load(page, tmp_path / "profile")
    assert any("undefinedThing" in line for line in console)


