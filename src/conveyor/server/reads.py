"""Lighter reads for list pages: only the job columns a summary shows.

A job's history, logs and result can be large and a list never shows them; skipping
those columns (and three small ones) makes a page of 50 jobs about a third cheaper.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.codec import decode_job
from conveyor.job import Job
from conveyor.keys import JOB_FIELDS
from conveyor.queue import Queue

SUMMARY_FIELDS = (
    "spec", "state", "attempts", "priority", "started", "finished", "ready", "progress",
    "error", "cancel",
)  # fmt: skip


async def job_summaries(queue: Queue, ids: Sequence[str]) -> list[Job | None]:
    """Like :meth:`Queue.get_jobs`, with the columns a summary does not show left empty."""
    if not ids:
        return []
    pipe = queue.connection.client.pipeline(transaction=False)
    for name in SUMMARY_FIELDS:
        pipe.hmget(queue.keys.job_field(name), list(ids))
    columns = dict(zip(SUMMARY_FIELDS, await pipe.execute(), strict=True))
    return [
        decode_job(
            queue.name, job_id, [columns[f][i] if f in columns else None for f in JOB_FIELDS]
        )
        for i, job_id in enumerate(ids)
    ]
