"""The HTML report of a consistency run: one self-contained page (inline CSS, SVG and one small
script; nothing loaded from the network), for a person rather than a parser.

Figures (each a `<figure>` with an `<svg>`, ids `match-rate`, `differences`, `offline-outcomes`,
`offline-lag`): the match rate per feature (equal / explained / different, stacked), the
distribution of absolute differences per feature (log10 bins), the offline outcome per entity and
the histogram of the offline store's event-time lag. Then the thresholds and examples as tables.
The script only records each figure's rendered size on it (`data-rendered="WxH"`), which the
headless-browser test reads back (tests/consistency/test_report_browser.py).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from html import escape
from typing import Any

from featurestream.consistency.job import OUTCOMES, ConsistencyResult
from featurestream.consistency.summary import offline_lags

MEASURE = """
addEventListener("load", () => {
  for (const fig of document.querySelectorAll("figure")) {
    const box = fig.querySelector("svg").getBoundingClientRect();
    fig.dataset.rendered = Math.round(box.width) + "x" + Math.round(box.height);
  }
});
"""
EXAMPLE_HEADER = ["feature", "entity", "EventTime", "online", "definition", "abs diff", "cause"]
GREEN, AMBER, RED, GREY, INK = "#2e7d32", "#f9a825", "#c62828", "#9e9e9e", "#263238"
CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;color:#263238}
h1{font-size:1.5rem;margin-bottom:.2rem} h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32} .bad{background:#c62828} .meta{color:#546e7a;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
th{background:#f5f5f5} figure{margin:1rem 0} figcaption{font-size:.85rem;color:#546e7a}
svg text{font-size:11px;fill:#263238}
"""


def _bar_rows(result: ConsistencyResult) -> str:
    tallies = sorted(result.tallies.values(), key=lambda t: t.name)
    label_w, bar_w, row_h = 190, 600, 20
    height = row_h * len(tallies) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" height="{height}" '
             'role="img" aria-label="match rate per feature">']
    for i, t in enumerate(tallies):
        y = 10 + i * row_h
        judged = max(t.compared, 1)
        explained = sum(t.explained.values())
        x = float(label_w)
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{escape(t.name)}</text>')
        for count, colour, what in ((t.equal, GREEN, "equal"), (explained, AMBER, "explained"),
                                    (t.different, RED, "different")):
            width = bar_w * count / judged
            if width > 0:
                parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{row_h - 4}" fill="{colour}">'
                             f'<title>{escape(t.name)}: {count} {what}</title></rect>')
            x += width
        if t.compared == 0:
            parts.append(f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="{row_h - 4}" fill="{GREY}"/>')
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 13}">{100 * t.match_rate:.2f}%</text>')
    axis_y = 10 + row_h * len(tallies) + 4
    for frac in (0, 0.5, 1):
        x = label_w + bar_w * frac
        parts.append(f'<text x="{x:.0f}" y="{axis_y + 12}" text-anchor="middle">{int(frac * 100)}%</text>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram(values: list[float], bins: list[tuple[float, float, str]], colour: str, label: str) -> str:
    counts = [sum(lo <= v < hi for v in values) for lo, hi, _ in bins]
    width, height, pad = 640, 180, 30
    top = max(counts, default=0) or 1
    step = (width - 2 * pad) / max(len(bins), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" role="img" '
             f'aria-label="{escape(label)}">',
             f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" stroke="{INK}"/>']
    for i, ((_, _, name), count) in enumerate(zip(bins, counts, strict=True)):
        h = (height - 20) * count / top
        x = pad + i * step
        parts.append(f'<rect x="{x + 2:.1f}" y="{height - h:.1f}" width="{step - 4:.1f}" height="{h:.1f}" '
                     f'fill="{colour}">'
                     f'<title>{escape(name)}: {count}</title></rect>')
        parts.append(f'<text x="{x + step / 2:.1f}" y="{height + 14}" text-anchor="middle">{escape(name)}</text>')
        if count:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - h - 3:.1f}" text-anchor="middle">{count}</text>')
    if not values:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">none</text>')
    parts.append("</svg>")
    return "".join(parts)


def _log_bins() -> list[tuple[float, float, str]]:
    edges = list(range(-12, 7, 2))
    bins = [(-math.inf, 10.0 ** edges[0], f"<1e{edges[0]}")]
    bins += [(10.0 ** a, 10.0 ** b, f"1e{a}…") for a, b in itertools.pairwise(edges)]
    return [*bins, (10.0 ** edges[-1], math.inf, f"≥1e{edges[-1]}")]


def _lag_bins() -> list[tuple[float, float, str]]:
    edges = [0, 1, 10, 60, 300, 900, 3600, 21600, 86400]
    names = ["<1 s", "1-10 s", "10 s-1 m", "1-5 m", "5-15 m", "15 m-1 h", "1-6 h", "6-24 h"]
    return [*[(a, b, n) for a, b, n in zip(edges, edges[1:], names, strict=False)], (86400, math.inf, "≥1 d")]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape('' if c is None else str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(result: ConsistencyResult, summary: dict[str, Any]) -> str:
    request = result.request
    ok = not result.exceeded
    different = {t.name: t.abs_diffs for t in result.tallies.values() if t.abs_diffs}
    diff_figs = "".join(f"<h3>{escape(n)}</h3>" + _histogram(v, _log_bins(), RED, f"absolute differences of {n}")
                        for n, v in sorted(different.items())) or _histogram([], _log_bins(), RED, "no differences")
    outcomes = Counter(o.outcome for o in result.offline)
    outcome_bins = [(float(i), float(i + 1), name) for i, name in enumerate(OUTCOMES)]
    outcome_values = [float(OUTCOMES.index(o.outcome)) for o in result.offline]
    event_lags, _ = offline_lags(result)
    examples = [[t.name, e["entity"], e["event_time"], e["online"], e["definition"], e["abs_diff"], e["cause"]]
                for t in sorted(result.tallies.values(), key=lambda t: t.name) for e in t.examples]
    offline_rows = [[o.entity, o.outcome, o.online_ms, o.offline_ms,
                     None if o.offline_ms is None else (o.online_ms - o.offline_ms) / 1000,
                     None if o.wall_lag_s is None else round(o.wall_lag_s, 1), ", ".join(o.features)]
                    for o in result.offline if o.outcome != "equal"]
    sample = summary["sample"]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Consistency of {escape(request.spec.name)}</title>
<style>{CSS}</style><script>{MEASURE}</script></head><body>
<h1>Consistency of {escape(request.spec.name)}</h1>
<p class="meta">online group {escape(request.spec.online_store.feature_group_name)}
 · source {escape(request.source.describe())}
 · events {escape(result.start.isoformat())} → {escape(result.end.isoformat())} · {len(result.sample)} entities sampled
 ({sample['hot']} hot, {sample['cold']} cold), {sample['online_records']} online records
 · tolerance {request.tolerance:g}</p>
<p><span class="verdict {'ok' if ok else 'bad'}">{'within thresholds' if ok else 'thresholds exceeded'}</span></p>
{_table(["threshold exceeded"], [[p] for p in result.exceeded]) if result.exceeded else ""}
<h2>Online store vs definition</h2>
<figure id="match-rate">{_bar_rows(result)}<figcaption>Match rate per feature: equal (green), explained by a
documented cause (amber: late events, events in flight), different (red).</figcaption></figure>
<figure id="differences">{diff_figs}<figcaption>Absolute differences of the values that differ with no
documented cause, per feature (log10 bins).</figcaption></figure>
<h3>Examples</h3>
{_table(EXAMPLE_HEADER, examples) if examples else "<p>none</p>"}
<h2>Online store vs offline store</h2>
<figure id="offline-outcomes">{_histogram(outcome_values, outcome_bins, "#1565c0", "offline outcome per entity")}
<figcaption>Entities by outcome of their newest offline row against the online record
({', '.join(f"{k} {outcomes.get(k, 0)}" for k in OUTCOMES)}).</figcaption></figure>
<figure id="offline-lag">{_histogram(event_lags, _lag_bins(), "#6a1b9a", "offline event-time lag")}
<figcaption>Event-time lag of the offline store behind the online record, entities that are behind.
</figcaption></figure>
{_table(["entity", "outcome", "online EventTime ms", "offline EventTime ms", "event lag s", "wall lag s",
         "features differing"], offline_rows) if offline_rows else "<p>every offline row equals its online record</p>"}
</body></html>
"""
