"""The blocking producer, for Django, Flask and scripts: no event loop per call."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from conveyor.codec import (
    NO_OPTIONS,
    BulkItem,
    SpecTemplates,
    add_args,
    decode_job,
    enqueued,
    pipeline_groups,
    prepare,
    prepare_bulk,
)
from conveyor.config import Settings
from conveyor.connection import SyncConnection, connect_sync
from conveyor.errors import JobNotFound
from conveyor.guarded import (
    Admission,
    GuardedJob,
    guard,
    guard_bulk,
    interpret,
    needs_guard,
    script_call,
)
from conveyor.job import BUILTIN_DEFAULTS, Enqueued, Job, JobOptions, JobState
from conveyor.keys import GLOBAL_QUEUES, JOB_FIELDS, QueueKeys
from conveyor.middleware import Middleware, before_enqueue
from conveyor.queue import BULK_CHUNK, PIPELINED_CHUNKS
from conveyor.scripts import UNREACHABLE, unavailable
from conveyor.validation import check_chunk_size, check_job_id, check_queue_name


class SyncQueue:
    """Enqueue jobs from synchronous code.

    >>> queue = SyncQueue("emails", url="redis://localhost:6379/0")
    >>> queue.add("send", {"to": "a@example.com"})
    """

    def __init__(
        self,
        name: str,
        connection: SyncConnection | None = None,
        *,
        url: str | None = None,
        settings: Settings | None = None,
        defaults: JobOptions | None = None,
        middleware: Sequence[Middleware] = (),
        admission: Admission | None = None,
    ) -> None:
        self.name = check_queue_name(name)
        self.admission = admission
        self.connection = connection or connect_sync(url, settings=settings)
        self.defaults = (defaults or JobOptions()).merged(BUILTIN_DEFAULTS)
        self._templates = SpecTemplates()
        self.middleware = list(middleware)
        self.keys = QueueKeys(self.name)
        self._layout = self.keys.layout
        self._settings = self.connection.settings
        self._registered = False

    def _hook(self, name: str, options: JobOptions) -> JobOptions:
        return before_enqueue(self.middleware, self.name, name, options)

    def _register(self) -> None:
        if not self._registered:
            try:
                self.connection.client.sadd(GLOBAL_QUEUES, self.name)
            except UNREACHABLE as exc:
                raise unavailable("register the queue", exc) from exc
            self._registered = True

    def add(self, name: str, data: Any = None, options: JobOptions | None = None) -> Enqueued:
        """Enqueue one job; see :meth:`conveyor.Queue.add`."""
        options = self._hook(name, options or NO_OPTIONS)
        if needs_guard(options, self.admission):
            item = guard(name, data, options, self.defaults, self._settings.max_payload_bytes)
            return self._add_guarded([item])[0]
        max_bytes = self._settings.max_payload_bytes
        job = prepare(
            name,
            data,
            options,
            self.defaults,
            max_bytes,
            self._templates.get(options, self.defaults),
        )
        self._register()
        (created,) = self.connection.scripts(
            "add", self._layout, add_args(self._settings.events_maxlen, [job])
        )
        return Enqueued(job.id, bool(created))

    def add_bulk(self, jobs: Iterable[BulkItem], *, chunk_size: int = BULK_CHUNK) -> list[Enqueued]:
        """Enqueue many jobs, one script call per ``chunk_size`` jobs; all are validated
        first, so a bad job fails the call with nothing written. Chunks go out ten to a
        pipeline (one round trip), in order."""
        check_chunk_size(chunk_size)
        hook = self._hook if self.middleware else None
        max_bytes = self._settings.max_payload_bytes
        items, guarded = guard_bulk(jobs, self.defaults, max_bytes, hook, self.admission)
        if guarded is not None:
            done: list[Enqueued] = []
            for start in range(0, len(guarded), chunk_size):
                done.extend(self._add_guarded(guarded[start : start + chunk_size]))
            return done
        prepared = prepare_bulk(items, self.defaults, max_bytes)
        self._register()
        maxlen = self._settings.events_maxlen
        results: list[Enqueued] = []
        for chunks in pipeline_groups(prepared, chunk_size, PIPELINED_CHUNKS):
            calls = [add_args(maxlen, chunk) for chunk in chunks]
            results += enqueued(
                chunks, self.connection.scripts.pipelined("add", self._layout, calls)
            )
        return results

    def _add_guarded(self, items: Sequence[GuardedJob]) -> list[Enqueued]:
        """Dedup, idempotency and admission in one script call (see ``add_guarded.lua``)."""
        keys, args = script_call(self.keys, items, self.admission, self._settings.events_maxlen)
        self._register()
        reply = self.connection.scripts("add_guarded", keys, args)
        return interpret(self.name, self.keys, items, reply)

    def get_job(self, job_id: str) -> Job:
        check_job_id(job_id)
        pipe = self.connection.client.pipeline(transaction=False)
        for field in JOB_FIELDS:
            pipe.hget(self.keys.job_field(field), job_id)
        job = decode_job(self.name, job_id, pipe.execute())
        if job is None:
            raise JobNotFound(self.name, job_id)
        return job

    def counts(self) -> dict[str, int]:
        pipe = self.connection.client.pipeline(transaction=False)
        for state in JobState:
            pipe.zcard(self.keys.state_set(state.value))
        pipe.zcard(self.keys.key("fc:jobs"))  # grouped jobs wait in their group's line
        *values, grouped = pipe.execute()
        counts = {s.value: int(n) for s, n in zip(JobState, values, strict=True)}
        counts[JobState.WAITING.value] += int(grouped)
        return counts

    def close(self) -> None:
        self.connection.close()
