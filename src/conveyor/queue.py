"""The async producer and operator API of one queue."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.codec import (
    NO_OPTIONS,
    BulkItem,
    PreparedJob,
    SpecTemplates,
    add_args,
    decode_job,
    enqueued,
    pipeline_groups,
    prepare,
    prepare_bulk,
)
from conveyor.connection import Connection
from conveyor.errors import InvalidJobOptions, InvalidStateTransition, JobNotFound
from conveyor.flows.store import cancel_parent, settle
from conveyor.guarded import (
    Admission,
    GuardedJob,
    guard,
    guard_bulk,
    interpret,
    needs_guard,
    script_call,
)
from conveyor.job import (
    BUILTIN_DEFAULTS,
    KEEP_COMPLETED,
    KEEP_DEAD,
    MAX_PRIORITY,
    MIN_PRIORITY,
    Enqueued,
    Job,
    JobOptions,
    JobState,
    Retention,
)  # fmt: skip
from conveyor.keys import GLOBAL_QUEUES, JOB_FIELDS, QueueKeys
from conveyor.middleware import Middleware, before_enqueue
from conveyor.scripts import UNREACHABLE, unavailable
from conveyor.validation import check_chunk_size, check_job_id, check_queue_name, encode_json

MAX_PAGE = 1000
BULK_CHUNK = 1000
REMOVE_IN_FLOW = -2  # remove.lua's code for a job of an unfinished flow
IN_FLOW_HINT = (
    "it is part of an unfinished flow (a parent waits for it, or it waits for its "
    "children); cancel it first, so the flow's failure policy applies, then remove it"
)
#: Chunks of a bulk add sent together (one pipeline), bounding the client's buffer.
PIPELINED_CHUNKS = 3


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a queue's event stream."""

    id: str
    job_id: str
    event: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class DeadFilter:
    """Selects dead jobs by name, error type and death time (UNIX seconds, inclusive)."""

    name: str | None = None
    error_type: str | None = None
    since: float | None = None
    until: float | None = None


def _page(offset: int, limit: int) -> None:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidJobOptions("offset", f"must be a non-negative integer, got {offset!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidJobOptions(
            "limit", f"must be an integer within [1, {MAX_PAGE}], got {limit!r}"
        )


class Queue:
    """Enqueue jobs and operate one queue.

    >>> queue = Queue("emails", conn, defaults=JobOptions(attempts=5))
    >>> await queue.add("send", {"to": "a@example.com"}, JobOptions(delay=60))
    """

    def __init__(
        self,
        name: str,
        connection: Connection,
        *,
        defaults: JobOptions | None = None,
        middleware: Sequence[Middleware] = (),
        keep_completed: Retention = KEEP_COMPLETED,
        keep_dead: Retention = KEEP_DEAD,
        admission: Admission | None = None,
    ) -> None:
        self.name = check_queue_name(name)
        self.admission = admission
        self.connection = connection
        self.defaults = (defaults or JobOptions()).merged(BUILTIN_DEFAULTS)
        self._templates = SpecTemplates()
        self.middleware = list(middleware)
        self.keep_completed = keep_completed
        self.keep_dead = keep_dead
        self.keys = QueueKeys(self.name)
        self._layout = self.keys.layout
        self._registered = False
        self._settings = connection.settings

    async def _run(self, script: str, args: list[Any]) -> Any:
        return await self.connection.scripts(script, self._layout, args)

    def _hook(self, name: str, options: JobOptions) -> JobOptions:
        return before_enqueue(self.middleware, self.name, name, options)

    async def _register(self) -> None:
        if not self._registered:
            try:
                await self.connection.client.sadd(GLOBAL_QUEUES, self.name)
            except UNREACHABLE as exc:
                raise unavailable("register the queue", exc) from exc
            self._registered = True

    # -- producing ---------------------------------------------------------------------

    async def add(self, name: str, data: Any = None, options: JobOptions | None = None) -> Enqueued:
        """Enqueue one job. An existing job id returns that job with ``created=False``."""
        options = self._hook(name, options or NO_OPTIONS)
        if needs_guard(options, self.admission):
            item = guard(name, data, options, self.defaults, self._settings.max_payload_bytes)
            (enqueued,) = await self._add_guarded([item])
            return enqueued
        max_bytes = self._settings.max_payload_bytes
        job = prepare(
            name,
            data,
            options,
            self.defaults,
            max_bytes,
            self._templates.get(options, self.defaults),
        )
        await self._register()
        (created,) = await self._run("add", add_args(self._settings.events_maxlen, [job]))
        return Enqueued(job.id, bool(created))

    async def _add_guarded(self, items: Sequence[GuardedJob]) -> list[Enqueued]:
        """Dedup, idempotency and admission in one script call (see ``add_guarded.lua``)."""
        keys, args = script_call(self.keys, items, self.admission, self._settings.events_maxlen)
        await self._register()
        reply = await self.connection.scripts("add_guarded", keys, args)
        return interpret(self.name, self.keys, items, reply)

    async def add_bulk(
        self, jobs: Iterable[BulkItem], *, chunk_size: int = BULK_CHUNK
    ) -> list[Enqueued]:
        """Enqueue many jobs, one script call per ``chunk_size`` jobs; all are validated
        first, so a bad job fails the call with nothing written. Chunks go out three to a
        pipeline, in order, the next pipeline written while Redis runs the one before (a
        connection dropped mid-call is retried per pipeline: the two then in flight may
        land in either order). If
        Redis refuses a chunk, the call raises: the chunks before it are written, and those
        of the one pipeline already sent behind it may be (jobs given their own ids can be
        retried safely)."""
        check_chunk_size(chunk_size)
        hook = self._hook if self.middleware else None
        max_bytes = self._settings.max_payload_bytes
        items, guarded = guard_bulk(jobs, self.defaults, max_bytes, hook, self.admission)
        if guarded is not None:
            done: list[Enqueued] = []
            for start in range(0, len(guarded), chunk_size):
                done.extend(await self._add_guarded(guarded[start : start + chunk_size]))
            return done
        prepared = prepare_bulk(items, self.defaults, max_bytes)
        await self._register()
        return await self._add_prepared(prepared, chunk_size)

    async def _add_prepared(
        self, prepared: Sequence[PreparedJob], chunk_size: int
    ) -> list[Enqueued]:
        """Each pipeline of chunks is packed and written while Redis runs the one before
        (at most two in flight, in order), so Redis does not wait for the packing."""
        maxlen = self._settings.events_maxlen
        results: list[Enqueued] = []
        in_flight: deque[tuple[list[Sequence[PreparedJob]], asyncio.Task[list[Any]]]] = deque()
        try:
            for chunks in pipeline_groups(prepared, chunk_size, PIPELINED_CHUNKS):
                calls = [add_args(maxlen, chunk) for chunk in chunks]
                call = self.connection.scripts.pipelined("add", self._layout, calls)
                in_flight.append((chunks, asyncio.ensure_future(call)))
                await asyncio.sleep(0)  # the new pipeline is packed and written now
                if len(in_flight) > 1:
                    sent, replies = in_flight.popleft()
                    results += enqueued(sent, await replies)
            while in_flight:
                sent, replies = in_flight.popleft()
                results += enqueued(sent, await replies)
        finally:
            # After a failure: the pipeline still out is written or not; its reply is dropped.
            for _, replies in in_flight:
                replies.cancel()
            await asyncio.gather(*(replies for _, replies in in_flight), return_exceptions=True)
        return results

    # -- reading -----------------------------------------------------------------------

    async def get_jobs(self, ids: Sequence[str]) -> list[Job | None]:
        if not ids:
            return []
        pipe = self.connection.client.pipeline(transaction=False)
        for field in JOB_FIELDS:
            pipe.hmget(self.keys.job_field(field), list(ids))
        columns = await pipe.execute()
        return [
            decode_job(self.name, job_id, [column[i] for column in columns])
            for i, job_id in enumerate(ids)
        ]

    async def get_job(self, job_id: str) -> Job:
        check_job_id(job_id)
        (job,) = await self.get_jobs([job_id])
        if job is None:
            raise JobNotFound(self.name, job_id)
        return job

    async def counts(self) -> dict[str, int]:
        pipe = self.connection.client.pipeline(transaction=False)
        for state in JobState:
            pipe.zcard(self.keys.state_set(state.value))
        pipe.zcard(self.keys.key("fc:jobs"))  # grouped jobs wait in their group's line
        *values, grouped = await pipe.execute()
        counts = {state.value: int(n) for state, n in zip(JobState, values, strict=True)}
        counts[JobState.WAITING.value] += int(grouped)
        return counts

    async def list_ids(
        self, state: JobState | str, *, offset: int = 0, limit: int = 100
    ) -> list[str]:
        """Ids in ``state``; finished states newest first, waiting in run order (jobs with a
        flow-control group after the others, group by group)."""
        state = JobState(state)
        _page(offset, limit)
        key = self.keys.state_set(state.value)
        newest_first = state in (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED)
        ids: list[str] = await self.connection.client.zrange(
            key, offset, offset + limit - 1, desc=newest_first
        )
        if state is JobState.WAITING and len(ids) < limit:
            ids += await self._grouped_waiting(offset, limit - len(ids))
        return ids

    async def _grouped_waiting(self, offset: int, limit: int) -> list[str]:
        client = self.connection.client
        skip = max(0, offset - await client.zcard(self.keys.waiting))
        members = await client.zrange(self.keys.key("fc:jobs"), skip, skip + limit - 1)
        return [member.rsplit("\0", 1)[1] for member in members]  # "group\0score\0id"

    async def list_jobs(
        self, state: JobState | str, *, offset: int = 0, limit: int = 100
    ) -> list[Job]:
        ids = await self.list_ids(state, offset=offset, limit=limit)
        return [job for job in await self.get_jobs(ids) if job is not None]

    async def is_paused(self) -> bool:
        return bool(await self.connection.client.hexists(self.keys.meta, "paused"))

    # -- operating ---------------------------------------------------------------------

    async def pause(self) -> bool:
        await self._register()
        return bool(await self._run("set_paused", [self._settings.events_maxlen, "1"]))

    async def resume(self) -> bool:
        return bool(await self._run("set_paused", [self._settings.events_maxlen, "0"]))

    async def cancel(self, job_id: str, reason: str = "cancelled by operator") -> str:
        """Cancel a job: ``"cancelled"`` at once, or ``"requested"`` while it runs."""
        check_job_id(job_id)
        code = await self._run(
            "cancel", [self._settings.events_maxlen, *self.keep_dead.args(), job_id, reason]
        )
        if code == 0:
            raise JobNotFound(self.name, job_id)
        if code == -1:
            head = [self._settings.events_maxlen, *self.keep_dead.args(), job_id, reason]
            if await cancel_parent(self.connection, self.name, job_id, head):
                return "cancelled"  # a flow parent that waited for its children
            raise InvalidStateTransition(job_id, await self._state(job_id), "cancel")
        if code == 1:
            await settle(self.connection, self.name, job_id)  # a flow child tells its parent
        return "cancelled" if code == 1 else "requested"

    async def _state(self, job_id: str) -> str | None:
        state: str | None = await self.connection.client.hget(self.keys.job_field("state"), job_id)
        return state

    async def _per_id(self, script: str, operation: str, ids: Sequence[str], *extra: Any) -> int:
        """Run a per-id script; a single id that does not qualify raises a clear error."""
        for job_id in ids:
            check_job_id(job_id)
        if not ids:
            return 0
        codes = await self._run(script, [self._settings.events_maxlen, *extra, *ids])
        if len(ids) == 1 and codes[0] != 1:
            state = await self._state(ids[0])
            if state is None:
                raise JobNotFound(self.name, ids[0])
            raise InvalidStateTransition(ids[0], state, operation)
        return sum(1 for code in codes if code == 1)

    async def promote(self, job_id: str) -> None:
        """Run a delayed job now."""
        await self._per_id("promote", "promote", [job_id])

    async def promote_all(self, *, batch: int = 500) -> int:
        total = 0
        while ids := await self.connection.client.zrange(self.keys.delayed, 0, batch - 1):
            total += await self._per_id("promote", "promote", ids)
        return total

    async def retry(self, job_id: str, *, data: Any = ...) -> None:
        """Requeue a dead or cancelled job with fresh attempts; optionally with new data."""
        spec = ""
        if data is not ...:
            job = await self.get_job(job_id)
            spec = json.dumps({
                "name": job.name, "opts": job.options, "meta": job.meta,
                "created": int(job.created_at * 1000),
                "data": json.loads(encode_json(data, "data", self._settings.max_payload_bytes)),
            })  # fmt: skip
        await self._per_id("requeue", "retry", [job_id], spec)

    async def remove(self, job_id: str) -> None:
        """Delete a job that is not running nor part of an unfinished flow (cancel that
        first, so the flow's failure policy applies)."""
        check_job_id(job_id)
        (code,) = await self._run("remove", [self._settings.events_maxlen, job_id])
        if code == 1:
            return
        state = await self._state(job_id)
        if state is None:
            raise JobNotFound(self.name, job_id)
        hint = IN_FLOW_HINT if code == REMOVE_IN_FLOW else None
        raise InvalidStateTransition(job_id, state, "remove", hint)

    async def change_priority(self, job_id: str, priority: int) -> None:
        if (
            isinstance(priority, bool)
            or not isinstance(priority, int)
            or not (MIN_PRIORITY <= priority <= MAX_PRIORITY)
        ):
            raise InvalidJobOptions(
                "priority", f"must be an integer within [{MIN_PRIORITY}, {MAX_PRIORITY}]"
            )
        check_job_id(job_id)
        code = await self._run("change_priority", [self._settings.events_maxlen, job_id, priority])
        if code != 1:
            raise InvalidStateTransition(job_id, await self._state(job_id), "change priority of")

    # -- dead letters --------------------------------------------------------------------

    async def dead_letters(self, *, offset: int = 0, limit: int = 100) -> list[Job]:
        """Dead jobs, newest first, with their last error and attempt history."""
        return await self.list_jobs(JobState.DEAD, offset=offset, limit=limit)

    async def _select_dead(
        self, where: DeadFilter, limit: int | None, batch: int = 500
    ) -> list[str]:
        low = "-inf" if where.since is None else int(where.since * 1000)
        high = "+inf" if where.until is None else int(where.until * 1000)
        chosen: list[str] = []
        offset = 0
        while limit is None or len(chosen) < limit:
            ids = await self.connection.client.zrangebyscore(
                self.keys.dead, low, high, offset, batch
            )
            if not ids:
                break
            offset += len(ids)
            if where.name is None and where.error_type is None:
                chosen.extend(ids)
                continue
            for job in await self.get_jobs(ids):
                if job is None or (where.name and job.name != where.name):
                    continue
                if where.error_type and (job.error or {}).get("type") != where.error_type:
                    continue
                chosen.append(job.id)
        return chosen if limit is None else chosen[:limit]

    async def requeue_dead(
        self, where: DeadFilter | None = None, *, limit: int | None = None
    ) -> int:
        """Requeue every dead job matching ``where`` (all when None); returns how many."""
        ids = await self._select_dead(where or DeadFilter(), limit)
        total = 0
        for start in range(0, len(ids), 500):
            total += await self._count_codes("requeue", ["", *ids[start : start + 500]])
        return total

    async def purge_dead(self, where: DeadFilter | None = None, *, limit: int | None = None) -> int:
        """Delete every dead job matching ``where`` (all when None); returns how many."""
        ids = await self._select_dead(where or DeadFilter(), limit)
        total = 0
        for start in range(0, len(ids), 500):
            total += await self._count_codes("remove", ids[start : start + 500])
        return total

    async def _count_codes(self, script: str, args: list[Any]) -> int:
        codes = await self._run(script, [self._settings.events_maxlen, *args])
        return sum(1 for code in codes if code == 1)

    async def clean(self, state: JobState | str, *, older_than: float, limit: int = 10_000) -> int:
        """Delete up to ``limit`` completed, dead or cancelled jobs that finished more than
        ``older_than`` seconds ago, oldest first; returns how many."""
        state = JobState(state)
        if state not in (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED):
            raise InvalidJobOptions("state", "only completed, dead or cancelled jobs are cleaned")
        if isinstance(older_than, bool) or not isinstance(older_than, int | float):
            raise InvalidJobOptions("older_than", "must be a number of seconds")
        if not 0 <= older_than < 10**10:
            raise InvalidJobOptions("older_than", f"must be >= 0 seconds, got {older_than!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidJobOptions("limit", f"must be a positive integer, got {limit!r}")
        cutoff = int((time.time() - older_than) * 1000)
        total = 0
        while total < limit:
            ids = await self.connection.client.zrangebyscore(
                self.keys.state_set(state.value), "-inf", cutoff, 0, min(500, limit - total)
            )
            if not ids:
                break
            removed = await self._count_codes("remove", ids)
            total += removed
            if removed == 0:
                break
        return total

    # -- events --------------------------------------------------------------------------

    async def recent_events(self, *, since: float | None = None, count: int = 1000) -> list[Event]:
        """The latest ``count`` retained events, newest first, none older than ``since``
        (UNIX seconds); a bounded read for rates and health, unlike :meth:`events`."""
        low = "-" if since is None else str(int(since * 1000))
        entries = await self.connection.client.xrevrange(
            self.keys.events, "+", low, count=max(1, min(count, 10_000))
        )
        return [
            Event(entry_id, fields.get("job", ""), fields.get("event", ""), fields)
            for entry_id, fields in entries
        ]

    async def events(self, *, after: str = "$", block_ms: int = 5000) -> AsyncIterator[Event]:
        """Follow the queue's event stream; ``after="0"`` replays what is retained."""
        last = after
        client = self.connection.client
        while True:
            reply = await client.xread({self.keys.events: last}, block=block_ms, count=500)
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    last = entry_id
                    yield Event(entry_id, fields.get("job", ""), fields.get("event", ""), fields)
