"""Shared benchmark plumbing: the results JSON of ARCHITECTURE.md and a short printed table.

`{"name", "machine", "params", "pairs": [{"label", "ours", "baseline", "unit",
"higher_is_better", "ratio"}], "checks"}` goes to bench/results/<name>.json.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Pair:
    """One comparison, both sides measured in the same run."""

    label: str
    ours: float
    baseline: float
    unit: str
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        return self.ours / self.baseline if self.baseline else float("nan")

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ours"] = round(self.ours, 3)
        out["baseline"] = round(self.baseline, 3)
        out["ratio"] = round(self.ratio, 4)
        return out


def machine() -> str:
    """A one-line description of where the numbers were taken."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load avg {os.getloadavg()[0]:.1f} at start"
    return f"{platform.system()} {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}{load}"


def write_results(
    name: str,
    params: Mapping[str, Any],
    pairs: list[Pair],
    checks: Mapping[str, Any],
    *,
    machine_description: str | None = None,
    results_dir: Path = RESULTS_DIR,
) -> Path:
    """Write bench/results/<name>.json atomically and print the table; returns the path."""
    payload = {
        "name": name,
        "machine": machine_description or machine(),
        "params": dict(params),
        "pairs": [p.as_json() for p in pairs],
        "checks": dict(checks),
    }
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    print(format_table(pairs))
    for key, value in checks.items():
        print(f"  {key}: {value}")
    print(f"wrote {path}")
    return path


def format_table(pairs: list[Pair]) -> str:
    rows = [("pair", "ours", "baseline", "unit", "ratio")]
    rows += [(p.label, f"{p.ours:,.1f}", f"{p.baseline:,.1f}", p.unit, f"{p.ratio:.3f}") for p in pairs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
