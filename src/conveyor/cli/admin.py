"""``conveyor queues``, ``conveyor jobs …`` and ``conveyor dlq …``: operate queues from a
terminal, straight on Redis, with rich tables."""

from __future__ import annotations

import json

import click

from conveyor.cli.common import audit, console, run, table, url_option, when
from conveyor.connection import Connection
from conveyor.job import JobState
from conveyor.queue import DeadFilter, Queue
from conveyor.registry import live_workers, queue_names

STATES = [state.value for state in JobState]


@click.command()
@url_option
def queues(url: str | None) -> None:
    """List queues with their counts by state, paused flag and live workers."""

    async def action(conn: Connection) -> None:
        workers = await live_workers(conn)
        rows = []
        for name in await queue_names(conn):
            queue = Queue(name, conn)
            counts = await queue.counts()
            served = sum(1 for w in workers if name in w.queues)
            rows.append([name, *(counts[s] for s in STATES), await queue.is_paused(), served])
        table("queues", ["queue", *STATES, "paused", "workers"], rows)

    run(url, action)


@click.group()
def jobs() -> None:
    """List, show, retry, cancel and remove jobs."""


@jobs.command("ls")
@click.argument("queue")
@click.option("--state", type=click.Choice(STATES), default="waiting", show_default=True)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@url_option
def jobs_ls(queue: str, state: str, limit: int, url: str | None) -> None:
    async def action(conn: Connection) -> None:
        listed = await Queue(queue, conn).list_jobs(state, limit=limit)
        rows = [[j.id, j.name, j.state, j.priority, j.attempts_made, when(j.created_at),
                 (j.error or {}).get("type")] for j in listed]  # fmt: skip
        table(
            f"{queue}: {state}", ["id", "name", "state", "prio", "fails", "created", "error"], rows
        )

    run(url, action)


@jobs.command("show")
@click.argument("queue")
@click.argument("job_id")
@url_option
def jobs_show(queue: str, job_id: str, url: str | None) -> None:
    async def action(conn: Connection) -> None:
        job = await Queue(queue, conn).get_job(job_id)
        table(f"job {job.id}", ["field", "value"], [
            ["name", job.name], ["state", job.state], ["priority", job.priority],
            ["created", when(job.created_at)], ["finished", when(job.finished_at)],
            ["attempts", job.attempts_made], ["worker", job.worker],
            ["data", json.dumps(job.data)[:500]], ["result", json.dumps(job.result)[:500]],
            ["error", json.dumps(job.error)[:500] if job.error else None],
        ])  # fmt: skip

    run(url, action)


def _operate(url: str | None, queue: str, job_id: str, verb: str) -> None:
    async def action(conn: Connection) -> str:
        q = Queue(queue, conn)
        outcome = "done"
        if verb == "retry":
            await q.retry(job_id)
        elif verb == "cancel":
            outcome = await q.cancel(job_id, "cancelled from the CLI")
        else:
            await q.remove(job_id)
        await audit(conn, f"{verb}_job", {"queue": queue, "job_id": job_id}, None)
        return outcome

    console.print(f"{verb} {queue}/{job_id}: {run(url, action)}")


@jobs.command("retry")
@click.argument("queue")
@click.argument("job_id")
@url_option
def jobs_retry(queue: str, job_id: str, url: str | None) -> None:
    """Requeue a dead or cancelled job with fresh attempts."""
    _operate(url, queue, job_id, "retry")


@jobs.command("cancel")
@click.argument("queue")
@click.argument("job_id")
@url_option
def jobs_cancel(queue: str, job_id: str, url: str | None) -> None:
    _operate(url, queue, job_id, "cancel")


@jobs.command("rm")
@click.argument("queue")
@click.argument("job_id")
@url_option
def jobs_rm(queue: str, job_id: str, url: str | None) -> None:
    """Delete a job that is not running."""
    _operate(url, queue, job_id, "remove")


@click.group()
def dlq() -> None:
    """Dead letters: list, requeue, purge."""


@dlq.command("ls")
@click.argument("queue", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@url_option
def dlq_ls(queue: str | None, limit: int, url: str | None) -> None:
    async def action(conn: Connection) -> None:
        names = [queue] if queue else await queue_names(conn)
        rows = []
        for name in names:
            for job in await Queue(name, conn).dead_letters(limit=limit):
                error = job.error or {}
                rows.append([name, job.id, job.name, when(job.finished_at), error.get("type"),
                             str(error.get("message", ""))[:60]])  # fmt: skip
        table("dead letters", ["queue", "id", "name", "died", "error", "message"], rows[:limit])

    run(url, action)


def _filter(name: str | None, error_type: str | None) -> DeadFilter:
    return DeadFilter(name=name, error_type=error_type)


@dlq.command("requeue")
@click.argument("queue")
@click.option("--name", default=None, help="only jobs of this name")
@click.option("--error-type", default=None, help="only jobs that died of this error type")
@url_option
def dlq_requeue(queue: str, name: str | None, error_type: str | None, url: str | None) -> None:
    async def action(conn: Connection) -> int:
        count = await Queue(queue, conn).requeue_dead(_filter(name, error_type))
        params = {"name": name, "error_type": error_type}
        await audit(conn, "requeue_dead", {"queue": queue}, params)
        return count

    console.print(f"requeued {run(url, action)} dead jobs of {queue}")


@dlq.command("purge")
@click.argument("queue")
@click.option("--name", default=None)
@click.option("--error-type", default=None)
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
@url_option
def dlq_purge(
    queue: str, name: str | None, error_type: str | None, yes: bool, url: str | None
) -> None:
    """Delete dead jobs for good."""
    if not yes:
        click.confirm(f"delete the dead jobs of {queue}?", abort=True)

    async def action(conn: Connection) -> int:
        count = await Queue(queue, conn).purge_dead(_filter(name, error_type))
        await audit(conn, "purge_dead", {"queue": queue}, {"name": name, "error_type": error_type})
        return count

    console.print(f"purged {run(url, action)} dead jobs of {queue}")
