"""The cluster-wide Prometheus view, read from Redis alone (for the ops server's ``/metrics``).

One scrape shows every queue: jobs by state, dead-letter size, the age of the oldest waiting
job, live workers, seconds since a worker last fetched, and all-time totals from the metric
history (:mod:`conveyor.observability.history`). Needs no prometheus-client: the text format
is written here. When Redis cannot be reached the scrape still answers, with
``conveyor_redis_up 0``, so the "Redis down" alert can fire.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from conveyor.connection import TRANSIENT_ERRORS, Connection
from conveyor.job import JobState
from conveyor.keys import QueueKeys
from conveyor.observability.history import BOUNDS, COUNTERS, totals
from conveyor.registry import live_workers, queue_names

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How many jobs from the head of ``waiting`` are looked at for the oldest waiting age.
HEAD_SAMPLE = 10
#: Histogram bounds exposed (a subset of the history's buckets, so counts are exact).
EXPOSED_BOUNDS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0,
    1000.0, 2500.0,
)  # fmt: skip
_CREATED = re.compile(r'"created":(\d+)(?:,"due":(\d+))?')

#: Every family this module writes, with its type and help text.
FAMILIES: dict[str, tuple[str, str]] = {
    "conveyor_redis_up": ("gauge", "1 when Redis answered this scrape"),
    "conveyor_queue_jobs": ("gauge", "Jobs per queue and state"),
    "conveyor_queue_dead_letters": ("gauge", "Jobs in the dead-letter set"),
    "conveyor_queue_paused": ("gauge", "1 when the queue is paused"),
    "conveyor_queue_oldest_waiting_age_seconds": (
        "gauge",
        f"Age since due of the oldest of the next {HEAD_SAMPLE} waiting jobs (0 when empty)",
    ),
    "conveyor_queue_workers_live": ("gauge", "Live workers (heartbeat not expired) per queue"),
    "conveyor_queue_seconds_since_last_fetch": (
        "gauge",
        "Seconds since any worker last fetched from the queue (+Inf if never)",
    ),
    "conveyor_workers_live": ("gauge", "Live workers"),
    **{
        f"conveyor_queue_jobs_{name}_total": ("counter", f"All-time {name} count (history)")
        for name in COUNTERS
    },
    "conveyor_queue_job_duration_seconds": (
        "histogram",
        "All-time processing time per attempt (history)",
    ),
}


@dataclass(slots=True)
class _Family:
    name: str
    samples: list[str] = field(default_factory=list)

    def add(self, value: float, suffix: str = "", **labels: str) -> None:
        self.samples.append(f"{self.name}{suffix}{_labels(labels)} {_number(value)}")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if isinstance(value, float) else str(value)


def _render(families: Iterable[_Family]) -> bytes:
    lines = []
    for family in families:
        kind, text = FAMILIES[family.name]
        lines += [f"# HELP {family.name} {text}", f"# TYPE {family.name} {kind}"]
        lines += family.samples
    return ("\n".join(lines) + "\n").encode()


async def render_cluster_metrics(connection: Connection) -> bytes:
    """Prometheus text for every queue, read from Redis (``CONTENT_TYPE`` is its type)."""
    up = _Family("conveyor_redis_up")
    try:
        families = await _collect(connection)
    except (RedisError, *TRANSIENT_ERRORS):  # type: ignore[misc]
        up.add(0)
        return _render([up])
    up.add(1)
    return _render([up, *families])


async def _collect(connection: Connection) -> list[_Family]:
    now = time.time()
    names = await queue_names(connection)
    workers = await live_workers(connection)
    sums = await totals(connection, names)
    client = connection.client
    pipe = client.pipeline(transaction=False)
    for name in names:
        keys = QueueKeys(name)
        for state in JobState:
            pipe.zcard(keys.state_set(state.value))
        pipe.hexists(keys.meta, "paused")
        pipe.zrange(keys.waiting, 0, HEAD_SAMPLE - 1)
    replies = await pipe.execute()
    width = len(JobState) + 2
    heads = {name: replies[i * width + width - 1] for i, name in enumerate(names)}
    oldest = await _oldest_waiting(connection, heads, now)
    f = {name: _Family(name) for name in FAMILIES if name != "conveyor_redis_up"}
    for i, name in enumerate(names):
        row = replies[i * width : (i + 1) * width]
        for state, count in zip(JobState, row, strict=False):
            f["conveyor_queue_jobs"].add(int(count), queue=name, state=state.value)
        f["conveyor_queue_dead_letters"].add(
            int(row[list(JobState).index(JobState.DEAD)]), queue=name
        )
        f["conveyor_queue_paused"].add(int(bool(row[len(JobState)])), queue=name)
        f["conveyor_queue_oldest_waiting_age_seconds"].add(oldest.get(name, 0.0), queue=name)
        serving = sum(1 for w in workers if name in w.queues)
        f["conveyor_queue_workers_live"].add(serving, queue=name)
        _add_totals(f, name, sums.get(name, {}), now)
    f["conveyor_workers_live"].add(len(workers))
    return list(f.values())


async def _oldest_waiting(
    connection: Connection, heads: Mapping[str, list[str]], now: float
) -> dict[str, float]:
    pipe = connection.client.pipeline(transaction=False)
    asked = [(name, ids) for name, ids in heads.items() if ids]
    for name, ids in asked:
        pipe.hmget(QueueKeys(name).job_field("spec"), ids)
    replies = await pipe.execute() if asked else []
    ages: dict[str, float] = {}
    for (name, _ids), specs in zip(asked, replies, strict=True):
        due = [_due_ms(spec) for spec in specs if spec]
        if due:
            ages[name] = max(0.0, now - min(due) / 1000)
    return ages


def _due_ms(spec: str) -> int:
    # The payload sits at the end of the spec: read the stamps without decoding it.
    match = _CREATED.search(spec[:4096])
    if match:
        return int(match.group(2) or match.group(1))
    decoded = json.loads(spec)
    return int(decoded.get("due") or decoded["created"])


def _add_totals(f: dict[str, _Family], queue: str, raw: Mapping[str, str], now: float) -> None:
    for name in COUNTERS:
        f[f"conveyor_queue_jobs_{name}_total"].add(int(raw.get(name, 0)), queue=queue)
    last = raw.get("last_fetch_ms")
    since = max(0.0, now - int(last) / 1000) if last else math.inf
    f["conveyor_queue_seconds_since_last_fetch"].add(round(since, 3), queue=queue)
    buckets = {int(k[2:]): int(v) for k, v in raw.items() if k.startswith("p:")}
    family = f["conveyor_queue_job_duration_seconds"]
    for bound in EXPOSED_BOUNDS:
        below = sum(c for i, c in buckets.items() if i < len(BOUNDS) and BOUNDS[i] <= bound)
        family.add(below, "_bucket", queue=queue, le=_number(bound))
    total = sum(buckets.values())
    family.add(total, "_bucket", queue=queue, le="+Inf")
    family.add(int(raw.get("p_sum_ms", 0)) / 1000, "_sum", queue=queue)
    family.add(total, "_count", queue=queue)
