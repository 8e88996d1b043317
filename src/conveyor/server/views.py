"""How jobs, workers and keys look in API responses; payloads redacted for viewers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor.job import Job
from conveyor.registry import WorkerInfo
from conveyor.server.auth import Principal
from conveyor.server.redaction import Redactor


def _timeline(job: Job) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"at": job.created_at, "event": "created"}]
    for number, attempt in enumerate(job.history, 1):
        if attempt.started is not None:
            events.append({"at": attempt.started, "event": f"attempt {number} started"})
        if attempt.finished is not None:
            events.append({"at": attempt.finished, "event": f"attempt {number} {attempt.outcome}"})
    if job.started_at is not None and all(a.started != job.started_at for a in job.history):
        events.append({"at": job.started_at, "event": "started"})
    if job.finished_at is not None:
        events.append({"at": job.finished_at, "event": str(job.state)})
    return sorted(events, key=lambda e: e["at"])


def _same(value: Any) -> Any:
    return value


def protector(principal: Principal, redactor: Redactor) -> Callable[[Any], Any]:
    return _same if principal.sees_payloads else redactor.redact


def job_summary(
    job: Job, principal: Principal, redactor: Redactor, protect: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    protect = protect or protector(principal, redactor)
    return {
        "id": job.id, "queue": job.queue, "name": job.name, "state": str(job.state),
        "priority": job.priority, "data": protect(job.data), "meta": job.meta,
        "created_at": job.created_at, "started_at": job.started_at,
        "finished_at": job.finished_at, "ready_at": job.ready_at,
        "attempts_made": job.attempts_made, "progress": protect(job.progress),
        "error": protect(job.error), "cancel_requested": job.cancel_requested,
    }  # fmt: skip


def job_detail(job: Job, principal: Principal, redactor: Redactor) -> dict[str, Any]:
    protect = protector(principal, redactor)
    view = job_summary(job, principal, redactor)
    view.update({
        "options": job.options, "group": job.group, "deadline": job.deadline,
        "stalls": job.stalls, "worker": job.worker,
        "result": protect(job.result), "logs": protect(job.logs),
        "attempts": [
            {"outcome": a.outcome, "worker": a.worker, "started": a.started,
             "finished": a.finished, "error_type": a.error_type,
             "message": protect(a.message), "traceback": protect(a.traceback)}
            for a in job.history
        ],
        "timeline": _timeline(job),
    })  # fmt: skip
    return view


def worker_view(worker: WorkerInfo) -> dict[str, Any]:
    return {
        "id": worker.id, "host": worker.host, "pid": worker.pid, "queues": list(worker.queues),
        "concurrency": worker.concurrency, "running": worker.running,
        "completed": worker.completed, "failed": worker.failed, "last_seen": worker.last_seen,
        "heartbeat_age": round(worker.heartbeat_age, 3),
    }  # fmt: skip
