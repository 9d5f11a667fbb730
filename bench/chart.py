#!/usr/bin/env python3
"""Renders bench/out/*.json into bench/out/benchmarks.svg: one horizontal bar per ratio, with its target.

Bars grow from 1x on a log scale (left: smaller than what the row compares against, right: larger). Green bars meet
their target, red ones miss it, grey ones have none; the target is the black line across the bar's lane. Hand-written
SVG, no dependencies: `python3 bench/chart.py [--out docs/benchmarks.svg]`; bench/run calls `render_all()` last.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from html import escape
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
ORDER = ("peers", "mlx")  # reports shown first, in this order; the others follow by name

LABEL_RIGHT = 440  # labels end here
PLOT_LEFT, PLOT_RIGHT = 450, 890
TEXT_LEFT = 900  # value and target text
WIDTH = 1180
ROW, HEADER = 22, 34
LOW, HIGH = 0.01, 100.0  # the log axis
MET, MISSED, NONE, TARGET = "#2e7d32", "#c62828", "#90a4ae", "#111111"
TARGET_RE = re.compile(r"^\s*(<=|>=)\s*([0-9.]+)\s*x\s*$")
SECONDS_TARGET_RE = re.compile(r"^\s*<=\s*([0-9.]+)\s*s\s*$")


def x_of(ratio: float) -> float:
    ratio = min(max(ratio, LOW), HIGH)
    share = (math.log10(ratio) - math.log10(LOW)) / (math.log10(HIGH) - math.log10(LOW))
    return PLOT_LEFT + share * (PLOT_RIGHT - PLOT_LEFT)


def parse_target(target: str) -> tuple[str, float] | None:
    """`<= 1.3x` -> ("<=", 1.3); targets that are not ratios (`<= 2 s`, `0 lower`) -> None."""
    match = TARGET_RE.match(target or "")
    return (match.group(1), float(match.group(2))) if match else None


def meets(ratio: float, target: tuple[str, float]) -> bool:
    """Whether `ratio`, at the two decimals every table shows, meets `target` (0.1004x is 0.10x: met)."""
    shown = round(ratio, 2)
    return shown <= target[1] if target[0] == "<=" else shown >= target[1]


def verdict(ratio: float | None, target_text: str, seconds: float | None = None) -> str:
    """The verdict on a row: `met`, `MISSED by 1.42x` (how far from its target), or "" without a target. A ratio
    target (`<= 1.3x`) judges the ratio, a time target (`<= 1 s`) the seconds."""
    limit = SECONDS_TARGET_RE.match(target_text or "")
    if limit and seconds is not None:
        allowed = float(limit.group(1))
        return "met" if round(seconds, 2) <= allowed else f"MISSED by {seconds / allowed:.2f}x"
    target = parse_target(target_text)
    if target is None or ratio is None:
        return ""
    if meets(ratio, target):
        return "met"
    return f"MISSED by {ratio / target[1]:.2f}x" if target[0] == "<=" else "MISSED"


def load_reports(out: Path = OUT) -> list[dict[str, Any]]:
    """The reports in out/*.json that have at least one ratio, peers first."""
    files = sorted(out.glob("*.json"), key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    reports = []
    for path in files:
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(report, dict) and any(r.get("ratio") is not None for r in report.get("rows", [])):
            reports.append(report)
    return reports


def _text(x: float, y: float, text: str, anchor: str = "start", size: int = 12, weight: str = "normal") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" font-weight="{weight}">'
        f"{escape(text)}</text>"
    )


def _axis(y0: float, y1: float) -> list[str]:
    parts = []
    for exponent in range(round(math.log10(LOW)), round(math.log10(HIGH)) + 1):
        value = 10.0**exponent
        x = x_of(value)
        colour, width = ("#444444", 1.5) if exponent == 0 else ("#dddddd", 1)
        parts.append(
            f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}" stroke="{colour}" stroke-width="{width}"/>'
        )
        parts.append(_text(x, y0 - 4, f"{value:g}x", "middle", 10))
    return parts


def _row(row: dict[str, Any], y: float) -> list[str]:
    ratio = float(row["ratio"])
    target = parse_target(row.get("target", ""))
    colour = NONE if target is None else (MET if meets(ratio, target) else MISSED)
    left, right = sorted((x_of(1.0), x_of(ratio)))
    width = max(right - left, 1.5)
    parts = [
        _text(LABEL_RIGHT, y + 15, row["name"], "end"),
        f'<rect x="{left:.1f}" y="{y + 4:.1f}" width="{width:.1f}" height="{ROW - 8}" fill="{colour}"/>',
    ]
    summary = ""
    if target is not None:
        tx = x_of(target[1])
        parts.append(
            f'<line x1="{tx:.1f}" y1="{y + 1:.1f}" x2="{tx:.1f}" y2="{y + ROW - 1:.1f}" stroke="{TARGET}" '
            'stroke-width="2.5"/>'
        )
        summary = f"   target {target[0].replace('<=', '≤').replace('>=', '≥')} {target[1]:g}x: " + (
            "met" if meets(ratio, target) else "MISSED"
        )
    parts.append(_text(TEXT_LEFT, y + 15, f"{ratio:.2f}x{summary}", weight="bold" if "MISSED" in summary else "normal"))
    return parts


def render(reports: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    y = 56.0
    first_facts = reports[0].get("facts", {}) if reports else {}
    subtitle = ", ".join(str(first_facts[k]) for k in ("date", "machine", "bazel") if k in first_facts)
    if "load average at start" in first_facts:
        subtitle += f"; load average {first_facts['load average at start']} (a busy machine makes numbers noisy)"
    legend = [
        (MET, "meets its target"),
        (MISSED, "misses its target"),
        (NONE, "no target"),
        (TARGET, "target"),
    ]
    for report in reports:
        rows = [r for r in report["rows"] if r.get("ratio") is not None]
        y += HEADER
        parts.append(_text(20, y - 8, report["title"], size=14, weight="bold"))
        top = y + 6
        parts.extend(_axis(top, top + 6 + ROW * len(rows)))
        y = top + 6
        for row in rows:
            parts.extend(_row(row, y))
            y += ROW
        y += 8
    height = y + 40
    header = [
        _text(20, 24, "rules_venvstacks benchmarks: ratios (log scale, bars grow from 1x)", size=16, weight="bold"),
        _text(20, 42, subtitle, size=11),
    ]
    lx = 20.0
    for colour, label in legend:
        header.append(f'<rect x="{lx:.1f}" y="{height - 26:.1f}" width="12" height="12" fill="{colour}"/>')
        header.append(_text(lx + 16, height - 16, label, size=11))
        lx += 30 + 7 * len(label)
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
            f'<rect width="{WIDTH}" height="{height:.0f}" fill="white"/>',
            *header,
            *parts,
            "</svg>",
            "",
        ]
    )


def markdown(report: dict[str, Any]) -> str:
    """A report as a Markdown table (for docs/benchmarks.md and the README)."""
    lines = ["| measurement | time | ratio | target | verdict | note |", "| --- | ---: | ---: | --- | --- | --- |"]
    for row in report["rows"]:
        seconds = "" if row.get("seconds") is None else f"{row['seconds']:.2f} s"
        ratio = "" if row.get("ratio") is None else f"{row['ratio']:.2f}x"
        judged = verdict(row.get("ratio"), row.get("target", ""), row.get("seconds"))
        ratio, judged = (f"**{ratio}**", f"**{judged}**") if judged.startswith("MISSED") else (ratio, judged)
        cells = [row["name"], seconds, ratio, row.get("target", ""), judged, row.get("note", "")]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def render_all(out: Path = OUT, svg: Path | None = None) -> Path:
    """Writes the chart of the reports in `out` (to out/benchmarks.svg unless `svg` says where); returns its path."""
    svg = svg or out / "benchmarks.svg"
    svg.write_text(render(load_reports(out)))
    return svg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="where to write the SVG (default: bench/out/benchmarks.svg)")
    parser.add_argument("--markdown", metavar="NAME", help="print bench/out/NAME.json as a Markdown table instead")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads((OUT / f"{args.markdown}.json").read_text())), end="")
        return 0
    if not load_reports():
        print(f"no benchmark results with ratios in {OUT}; run bench/run first", file=sys.stderr)
        return 1
    print(f"wrote {render_all(OUT, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
