"""The alerting kit: rules and dashboard use only metric names the code really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.observability.cluster import FAMILIES
from conveyor.observability.metrics import HISTOGRAM_NAMES, METRIC_NAMES

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "conveyor.json"
_NAME = re.compile(r"\bconveyor_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_sum", "_count")


def exported() -> set[str]:
    names = set(FAMILIES) | set(METRIC_NAMES)
    histograms = {n for n, (kind, _) in FAMILIES.items() if kind == "histogram"}
    histograms |= set(HISTOGRAM_NAMES)
    return names | {h + s for h in histograms for s in SUFFIXES}


def used(expr: str) -> set[str]:
    return set(_NAME.findall(expr))


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_alert_rules_are_complete_and_use_exported_metrics() -> None:
    names = exported()
    alerts = rules()
    assert {r["alert"] for r in alerts} >= {
        "ConveyorRedisDown", "ConveyorFailureRateHigh", "ConveyorFailureRateCritical",
        "ConveyorDeadLettersGrowing", "ConveyorBacklogHigh", "ConveyorOldestWaitingJobTooOld",
        "ConveyorNoLiveWorker", "ConveyorLeaseLostSpike",
    }  # fmt: skip
    for rule in alerts:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        metrics = used(rule["expr"])
        assert metrics, rule["alert"]
        assert metrics <= names, (rule["alert"], metrics - names)
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_failure_thresholds_match_the_issue() -> None:
    by_name = {r["alert"]: r for r in rules()}
    assert by_name["ConveyorFailureRateHigh"]["expr"].strip().endswith("> 0.10")
    assert by_name["ConveyorFailureRateCritical"]["expr"].strip().endswith("> 0.20")
    assert "> 100" in by_name["ConveyorDeadLettersGrowing"]["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not on PATH")
def test_promtool_accepts_the_rules() -> None:  # pragma: no cover - needs promtool
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True)


def test_dashboard_queries_use_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported()
    panels = dashboard["panels"]
    assert len(panels) >= 10 and len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["title"] and panel["targets"]
        for target in panel["targets"]:
            metrics = used(target["expr"])
            assert metrics and metrics <= names, (panel["title"], metrics - names)
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert variables == {"datasource", "queue"}
