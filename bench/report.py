"""Medians, ratios to the fastest peer, the table, and the check against issue 2's targets."""

from __future__ import annotations

import statistics
from typing import Any

LIBS = ["conveyor", "arq", "saq", "rq", "dramatiq", "celery", "taskiq", "streaq", "bullmq"]
MEASUREMENTS = [
    ("enqueue", "W1 single"),
    ("bulk", "W1 bulk"),
    ("drain1", "W2 1 proc"),
    ("drain2", "W2 2 procs"),
    ("latency", "W3"),
]
#: (measurement, field, higher is better)
FIGURES = [
    ("enqueue", "value", True),
    ("bulk", "value", True),
    ("drain1", "value", True),
    ("drain2", "value", True),
    ("latency", "p50", False),
    ("latency", "p99", False),
]
SUBJECT = "conveyor"


def summarise(doc: dict[str, Any]) -> dict[str, Any]:
    """Per library and figure: median of the successful runs, and what failed."""
    summary: dict[str, Any] = {}
    for lib in doc["settings"]["libs"]:
        figures: dict[str, Any] = {}
        for key, field, _ in FIGURES:
            runs = [r for r in doc["runs"] if r["lib"] == lib and r["measurement"] == key]
            if not runs:
                continue
            good = [r[field] for r in runs if r.get("ok")]
            figures[f"{key}.{field}"] = {
                "median": statistics.median(good) if good else None,
                "runs": good,
                "failed": [r.get("error", "?") for r in runs if not r.get("ok")],
            }
        summary[lib] = figures
    _add_ratios(summary)
    return summary


def _add_ratios(summary: dict[str, Any]) -> None:
    for key, field, higher in FIGURES:
        name = f"{key}.{field}"
        peers = [
            s[name]["median"]
            for lib, s in summary.items()
            if lib != SUBJECT and name in s and s[name]["median"] is not None
        ]
        if not peers:
            continue
        best = max(peers) if higher else min(peers)
        for figures in summary.values():
            if name in figures and figures[name]["median"] is not None:
                figures[name]["best_peer"] = best
                figures[name]["ratio"] = figures[name]["median"] / best


def _cell(figure: dict[str, Any] | None, digits: int) -> str:
    if figure is None:
        return "-"
    if figure["median"] is None:
        return "FAILED"
    value = f"{figure['median']:,.{digits}f}"
    ratio = f" ({figure['ratio']:.2f}x)" if "ratio" in figure else ""
    mark = " †" if figure["failed"] else ""
    return f"{value}{ratio}{mark}"


def table(summary: dict[str, Any]) -> str:
    head = [
        "library", "W1 single jobs/s", "W1 bulk jobs/s", "W2 1 proc jobs/s",
        "W2 2 procs jobs/s", "2 procs / 1", "W3 p50 ms", "W3 p99 ms",
    ]  # fmt: skip
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for lib, figures in summary.items():
        one, two = figures.get("drain1.value"), figures.get("drain2.value")
        scale = "-"
        if one and two and one["median"] and two["median"]:
            scale = f"{two['median'] / one['median']:.2f}x"
        cells = [
            lib,
            _cell(figures.get("enqueue.value"), 0),
            _cell(figures.get("bulk.value"), 0),
            _cell(one, 0),
            _cell(two, 0),
            scale,
            _cell(figures.get("latency.p50"), 2),
            _cell(figures.get("latency.p99"), 2),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def targets(summary: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    """Issue 2's speed targets for Conveyor: (target, met, figures)."""
    mine = summary.get(SUBJECT, {})

    def get(name: str, what: str = "median") -> float | None:
        figure = mine.get(name)
        return None if figure is None else figure.get(what)

    checks: list[tuple[str, bool | None, str]] = []
    one, ratio1 = get("drain1.value"), get("drain1.value", "ratio")
    if one is not None and ratio1 is not None:
        met = one >= 10_000 and ratio1 >= 3
        checks.append(("W2 1 proc ≥ 3x fastest peer and ≥ 10,000 jobs/s", met,
                       f"{one:,.0f} jobs/s, {ratio1:.2f}x fastest peer"))  # fmt: skip
    bulk = get("bulk.value", "ratio")
    if bulk is not None:
        checks.append(("W1 bulk ≥ 3x fastest peer", bulk >= 3, f"{bulk:.2f}x"))
    p50, p99 = get("latency.p50"), get("latency.p99")
    if p50 is not None and p99 is not None:
        checks.append(("W3 p50 ≤ 1 ms and p99 ≤ 2.5 ms", p50 <= 1 and p99 <= 2.5,
                       f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"))  # fmt: skip
    two = get("drain2.value")
    if one and two:
        checks.append(("2 procs ≥ 1.7x 1 proc", two / one >= 1.7, f"{two / one:.2f}x"))
    return checks


def render(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    summary = summarise(doc)
    lines = [table(summary), "", "Ratios are to the fastest peer (latency: to the lowest).",
             "† some runs failed; the median is of the others (see the JSON).", ""]  # fmt: skip
    for lib, info in doc["libraries"].items():
        lines.append(f"- {lib} {info['version']}: bulk = {info['bulk']}; worker = {info['worker']}")
    lines.append("")
    for target, met, figures in targets(summary):
        verdict = "met" if met else "NOT met"
        lines.append(f"target {target}: {verdict} ({figures})")
    return "\n".join(lines), summary
