"""The worker: leases jobs, runs handlers, renews leases, recovers stalled jobs.

One asyncio loop per worker process. Per queue, a fetch loop leases jobs in batches and
blocks on the queue's marker when idle; an ack loop completes finished jobs in batches and
fetches more in the same script call; a renew loop extends leases and delivers
cancellations. Shared loops recover stalled jobs and publish the heartbeat.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from conveyor.codec import backoff_of
from conveyor.connection import TRANSIENT_ERRORS, Connection, reconnect_delay
from conveyor.context import CURRENT_JOB, JobContext, describe_error, dumps
from conveyor.errors import (
    ConfigError,
    JobCancelled,
    RateLimited,
    RetryLater,
    UnrecoverableError,
)
from conveyor.flows.keys import ancestors_of, tree_complete_call, tree_fail_call
from conveyor.flows.store import children_results, settle
from conveyor.handlers import Handler, as_handlers, invoke
from conveyor.job import KEEP_COMPLETED, KEEP_DEAD, Retention
from conveyor.keys import GLOBAL_WORKERS, QueueKeys, worker_key
from conveyor.middleware import Middleware, overriding, wrap
from conveyor.retry import Decision, RetryPolicy
from conveyor.scheduler.runner import Scheduler
from conveyor.validation import check_queue_name

log = logging.getLogger("conveyor.worker")

HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_TTL = 30


@dataclass(slots=True)
class _Running:
    token: str
    task: asyncio.Task[None] | None = None
    lost: bool = False  # the lease is gone: drop the outcome
    cancel_reason: str | None = None  # an operator cancelled it


@dataclass(slots=True)
class _QueueState:
    name: str
    keys: QueueKeys
    layout: list[str]
    wake: str  # a zset only this worker waits on besides the marker: stop() wakes it
    running: dict[str, _Running] = field(default_factory=dict)
    acks: list[tuple[str, str, str]] = field(default_factory=list)
    #: Flow children: completed with their parents by tree_complete (id, token, result, spec).
    flow_acks: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)
    completing: set[str] = field(default_factory=set)  # acks in flight to Redis
    #: Completed attempts and their durations, told to the middleware as their acks go.
    finished: list[tuple[JobContext, float]] = field(default_factory=list)
    ack_ready: asyncio.Event = field(default_factory=asyncio.Event)
    next_delayed_ms: int = -1
    paused: bool = False


BACKGROUND_STOP_TIMEOUT = 2.0  # seconds a stopping worker waits for its background tasks
#: A stopping worker gives up writing to an unreachable Redis after this many failed calls
#: (each with the client's own retries): what it could not write (results, releases) comes
#: back to the queue when the leases expire, so stopping never hangs on a dead server.
STOPPING_RETRIES = 2


def _throttle_ms(error: BaseException) -> int:
    """How long a RateLimited handler asks to hold its job's whole group back."""
    if isinstance(error, RateLimited) and error.throttle_group:
        return int(error.retry_after * 1000)
    return 0


@dataclass(slots=True)
class WorkerStats:
    completed: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    lease_lost: int = 0


class Worker:
    """Runs handlers for jobs of one or more queues.

    >>> worker = Worker(conn, ["emails"], {"send": send_email}, concurrency=50)
    >>> await worker.run()  # until worker.stop() or SIGTERM
    """

    def __init__(
        self,
        connection: Connection,
        queues: Sequence[str],
        handlers: Mapping[str, Callable[..., Any] | Handler],
        *,
        concurrency: int = 10,
        batch_size: int | None = None,
        lease: float | None = None,
        retry_policy: RetryPolicy | None = None,
        shutdown_grace: float | None = None,
        stall_check_interval: float | None = None,
        max_stalls: int | None = None,
        timeout_grace: float = 5.0,
        idle_block: float = 2.0,
        keep_completed: Retention = KEEP_COMPLETED,
        keep_dead: Retention = KEEP_DEAD,
        worker_id: str | None = None,
        middleware: Sequence[Middleware] = (),
        schedules: bool = False,
    ) -> None:
        if not queues:
            raise ConfigError("queues", "a worker needs at least one queue")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError("concurrency", f"must be an integer >= 1, got {concurrency!r}")
        settings = connection.settings
        self.connection = connection
        self.handlers = as_handlers(handlers)
        self.concurrency = concurrency
        # Half the slots per batch: one batch runs while the other is being completed and
        # refilled, so the worker and Redis work at the same time instead of taking turns.
        self.batch_size = batch_size or max(1, min(concurrency // 2, 200))
        self.lease = lease or settings.lease_seconds
        self.retry_policy = retry_policy or RetryPolicy()
        self.shutdown_grace = settings.shutdown_grace if shutdown_grace is None else shutdown_grace
        self.stall_check_interval = stall_check_interval or settings.stall_check_interval
        self.max_stalls = settings.max_stalls if max_stalls is None else max_stalls
        self.timeout_grace = timeout_grace
        self.idle_block = idle_block
        self.keep_completed = keep_completed
        self.keep_dead = keep_dead
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stats = WorkerStats()
        self.middleware = list(middleware)
        self._around = overriding(self.middleware, "around_job")
        self._started = overriding(self.middleware, "job_started")
        # jobs_completed's default calls job_finished: a layer overriding either is told.
        batched = overriding(self.middleware, "jobs_completed")
        single = overriding(self.middleware, "job_finished")
        self._completed = [m for m in self.middleware if m in batched or m in single]
        #: With ``schedules=True`` the worker also fires its queues' schedules (any number
        #: of workers may: each fire time still becomes exactly one job).
        self.scheduler = Scheduler(connection, list(queues)) if schedules else None
        self._maxlen = settings.events_maxlen
        self._queues = [self._queue_state(name) for name in queues]
        self._free = concurrency
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._drained = False
        self._idle_waits: dict[asyncio.Future[Any], _QueueState] = {}
        self._wakes: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="conveyor")
        self.started = asyncio.Event()

    def _queue_state(self, name: str) -> _QueueState:
        keys = QueueKeys(check_queue_name(name))
        return _QueueState(name, keys, keys.layout, keys.key(f"wake:{self.id}"))

    @property
    def running_jobs(self) -> int:
        return sum(len(q.running) for q in self._queues)

    # -- lifecycle ---------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching at once; running jobs get ``shutdown_grace`` seconds to finish."""
        if not self._stopping.is_set():
            log.info("worker %s stopping", self.id)
            self._stopping.set()
            for waiter, q in self._idle_waits.items():
                # Not cancelled: the fetch behind the wait may have leased jobs already,
                # and a cancelled call would lose the reply that names them.
                wake = asyncio.ensure_future(self._wake(waiter, q))
                self._wakes.add(wake)
                wake.add_done_callback(self._wakes.discard)

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Work until :meth:`stop` (or SIGTERM/SIGINT with ``install_signal_handlers``)."""
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        fetchers = [asyncio.create_task(self._fetch_loop(q)) for q in self._queues]
        ackers = [asyncio.create_task(self._ack_loop(q)) for q in self._queues]
        background = [
            asyncio.create_task(self._renew_loop()),
            asyncio.create_task(self._maintenance_loop()),
            asyncio.create_task(self._heartbeat_loop()),
        ]
        if self.scheduler is not None:
            background.append(asyncio.create_task(self.scheduler.run()))
        await self._notify_lifecycle("worker_started")
        self.started.set()
        try:
            await self._stopping.wait()
            await asyncio.gather(*fetchers, return_exceptions=True)
            await self._drain()
            self._drained = True
            for q in self._queues:
                q.ack_ready.set()
            await asyncio.gather(*ackers, return_exceptions=True)
        finally:
            for task in background + fetchers + ackers:
                task.cancel()
            # Bounded: a Redis call cancelled mid-flight has been seen to leave its task
            # pending (redis-py), and renewals, stall checks and heartbeats hold no job state.
            _, stuck = await asyncio.wait(background, timeout=BACKGROUND_STOP_TIMEOUT)
            if stuck:
                log.warning("worker %s: %d background tasks left running", self.id, len(stuck))
            await self._notify_lifecycle("worker_stopped")
            await self._unregister()
            self._executor.shutdown(wait=False, cancel_futures=True)
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period, then give the rest back."""
        tasks = [r.task for q in self._queues for r in q.running.values() if r.task]
        if tasks:
            await asyncio.wait(tasks, timeout=self.shutdown_grace)
        for q in self._queues:
            leftovers = {i: r for i, r in q.running.items() if r.task and not r.task.done()}
            if not leftovers:
                continue
            for running in leftovers.values():
                running.lost = True
            args: list[Any] = [self._maxlen]
            for job_id, running in leftovers.items():
                args += [job_id, running.token]
            try:
                await self._call_script("release", q, args)
                log.info("released %d unfinished jobs of %s", len(leftovers), q.name)
            except TRANSIENT_ERRORS:
                pass  # logged by _call_script; the leases expire instead
            for running in leftovers.values():
                assert running.task is not None
                running.task.cancel()
            await asyncio.wait([r.task for r in leftovers.values() if r.task], timeout=1.0)

    async def _call_script(
        self, name: str, q: _QueueState, args: list[Any], keys: list[str] | None = None
    ) -> Any:
        """Call a script, retrying transient Redis errors until it goes through."""
        failures = 0
        while True:
            try:
                return await self.connection.scripts(name, keys or q.layout, args)
            except TRANSIENT_ERRORS as exc:
                failures += 1
                if self._stopping.is_set() and failures > STOPPING_RETRIES:
                    log.error(
                        "worker %s is stopping and Redis stays unreachable (%s): %s not "
                        "written; its jobs return to the queue when their leases expire",
                        self.id, exc, name,
                    )  # fmt: skip
                    raise
                log.warning("redis unavailable (%s); retrying %s", exc, name)
                await asyncio.sleep(reconnect_delay(failures))

    # -- slots ------------------------------------------------------------------------

    def _reserve(self, wanted: int) -> int:
        taken = min(self._free, wanted)
        self._free -= taken
        return taken

    def _release_slots(self, count: int) -> None:
        if count:
            self._free += count
            self._slot_freed.set()

    async def _wait_for_slot(self) -> None:
        while self._free <= 0 and not self._stopping.is_set():
            self._slot_freed.clear()
            await self._slot_freed.wait()

    # -- fetching ---------------------------------------------------------------------

    async def _fetch_loop(self, q: _QueueState) -> None:
        failures, idle = 0, False
        while not self._stopping.is_set():
            await self._wait_for_slot()
            if self._stopping.is_set():
                return
            count = self._reserve(self.batch_size)
            args = [self._maxlen, self.id, int(self.lease * 1000), count]
            started: int | None = None  # jobs the wait's reply has started already
            try:
                if idle:
                    reply, started = await self._wait_then_fetch(q, args, count)
                else:
                    reply = await self.connection.scripts("fetch", q.layout, args)
                failures = 0
            except TRANSIENT_ERRORS as exc:
                self._release_slots(count)
                failures += 1
                log.warning("fetch from %s failed (%s); retrying", q.name, exc)
                await asyncio.sleep(reconnect_delay(failures))
                continue
            except asyncio.CancelledError:
                self._release_slots(count)
                if not self._stopping.is_set():
                    raise
                return
            if started is not None:
                fetched = started
            elif self._stopping.is_set():  # fetched as the worker was told to stop
                await self._give_back(q, reply, count)
                return
            else:
                fetched = self._start_jobs(q, reply, count)
            if self.middleware:
                self._notify("jobs_fetched", q.name, fetched)
            idle = fetched == 0
            if fetched:
                await asyncio.sleep(0)  # the jobs start before the next fetch is sent

    async def _wait_then_fetch(
        self, q: _QueueState, args: list[Any], reserved: int
    ) -> tuple[list[Any], int | None]:
        """Block on the queue's marker (and this worker's own wake key) until a job may be
        there or the next delayed one is due, with the fetch queued behind the wait on the
        same connection: Redis runs it as soon as the wait ends, one round trip earlier.
        Returns the fetch's reply and how many jobs it started (None: not started)."""
        started: list[int] = []

        def start_at_once(reply: list[Any]) -> None:
            # Called as the reply is read: the jobs start a turn of the event loop sooner
            # than if this task had to be resumed first (tens of µs on a small machine).
            if not self._stopping.is_set():
                started.append(self._start_jobs(q, reply, reserved))

        timeout = self.idle_block
        if q.next_delayed_ms >= 0 and not q.paused:
            timeout = min(timeout, max(q.next_delayed_ms / 1000 - time.time(), 0.001))
        wait = ["BZPOPMIN", q.keys.marker, q.wake, round(timeout, 3)]
        # stop() wakes the wait, or cancels this task (the fetch loop's) if Redis is gone.
        waiter = asyncio.current_task()
        assert waiter is not None
        self._idle_waits[waiter] = q
        try:
            reply: list[Any] = await self.connection.scripts.after(
                wait, "fetch", q.layout, args, block=timeout, then=start_at_once
            )
            return reply, started[0] if started else None
        finally:
            del self._idle_waits[waiter]

    async def _wake(self, waiter: asyncio.Future[Any], q: _QueueState) -> None:
        """End this worker's wait on ``q`` now (stopping); cancel it if Redis cannot be told."""
        try:
            await self.connection.client.zadd(q.wake, {"stop": 0})
            await self.connection.client.expire(q.wake, 60)  # if no wait takes it: a crash
        except TRANSIENT_ERRORS:
            waiter.cancel()

    async def _give_back(self, q: _QueueState, reply: list[Any], reserved: int) -> None:
        """Return jobs leased by a fetch that ended after :meth:`stop` (no attempt used):
        new work stops at once, even what was already on its way."""
        self._release_slots(reserved)
        args: list[Any] = [self._maxlen]
        for i in range(2, len(reply), 5):
            args += [reply[i], reply[i + 1]]
        if len(args) > 1:
            await self._call_script("release", q, args)

    def _start_jobs(self, q: _QueueState, reply: list[Any], reserved: int) -> int:
        q.paused = reply[0] == 1
        q.next_delayed_ms = int(reply[1])
        started = 0
        for i in range(2, len(reply), 5):
            job_id, token, attempts, _stalls, spec = reply[i : i + 5]
            running = _Running(str(token))
            q.running[job_id] = running
            running.task = asyncio.create_task(
                self._execute(q, job_id, running, int(attempts), json.loads(spec))
            )
            started += 1
        self._release_slots(reserved - started)
        return started

    # -- running ----------------------------------------------------------------------

    async def _execute(
        self, q: _QueueState, job_id: str, running: _Running, attempts: int, spec: dict[str, Any]
    ) -> None:
        options = spec["opts"]
        ctx = JobContext(
            id=job_id, name=spec["name"], queue=q.name, attempt=attempts + 1,
            token=running.token, meta=spec.get("meta", {}), options=options,
            worker_id=self.id, _write=self._writer(q),
            ready_at=spec.get("due", spec.get("created", 0)) / 1000,
        )  # fmt: skip
        CURRENT_JOB.set(ctx)  # this task runs only this job: no reset needed
        if "flow" in spec:
            ctx._children = functools.partial(children_results, self.connection, q.name, job_id)
        started = ctx.started_at = time.time()
        acked = False
        try:
            handler = self.handlers.get(spec["name"])
            if handler is None:
                known = ", ".join(sorted(self.handlers)) or "none"
                raise UnrecoverableError(
                    f"no handler registered for job name {spec['name']!r} (known: {known})"
                )
            result = await self._invoke(handler, ctx, spec.get("data"), options)
            if running.cancel_reason is not None:
                raise JobCancelled(running.cancel_reason)
            try:
                result_json = "null" if result is None else dumps(result)
            except (TypeError, ValueError) as exc:
                raise UnrecoverableError(f"the handler's return value is not JSON: {exc}") from None
            if not running.lost and ancestors_of(spec):
                q.flow_acks.append((job_id, running.token, result_json, spec))
                q.ack_ready.set()
                acked = True
                if self.middleware:
                    q.finished.append((ctx, time.time() - started))
            elif not running.lost:
                q.acks.append((job_id, running.token, result_json))
                q.ack_ready.set()
                acked = True  # the ack loop frees the slot once the completion is written
                if self.middleware:
                    q.finished.append((ctx, time.time() - started))
        except asyncio.CancelledError:
            if running.cancel_reason is not None and not running.lost:
                error = JobCancelled(running.cancel_reason)
                await self._fail(q, ctx, running, spec, error, started)
            # otherwise released on shutdown or lease lost: the outcome belongs to another
        except Exception as exc:
            if not running.lost:
                await self._fail(q, ctx, running, spec, exc, started)
        finally:
            if not acked:
                self._finish(q, job_id)

    async def _invoke(
        self, handler: Handler, ctx: JobContext, data: Any, options: dict[str, Any]
    ) -> Any:
        timeout = options.get("timeout") or handler.timeout

        async def run_handler() -> Any:
            for layer in self._started:
                try:
                    layer.job_started(ctx)
                except Exception:
                    log.exception("middleware %r failed in job_started", layer)
            return await invoke(
                handler, ctx, data, timeout=timeout, grace=self.timeout_grace,
                executor=self._executor,
            )  # fmt: skip

        if not self._around:
            return await run_handler()
        return await wrap(self._around, ctx, data, run_handler)()

    def _notify_finished(
        self, ctx: JobContext, outcome: str, started: float, error: BaseException | None
    ) -> None:
        duration = time.time() - started
        for layer in self.middleware:
            try:
                layer.job_finished(ctx, outcome, duration, error)
            except Exception:
                log.exception("middleware %r failed in job_finished", layer)

    def _notify_completed(self, q: _QueueState) -> None:
        """Tell the middleware about the completions queued so far, once their acks are
        written to the socket: the hooks' work (a log line, counters a job) then overlaps
        Redis running the script instead of delaying it. Still before the reply can be
        read, so a caller on this loop that sees a job completed in Redis sees it in the
        metrics too."""
        if not q.finished:
            return
        batch, q.finished = q.finished, []
        asyncio.get_running_loop().call_soon(self._tell_completed, batch)

    def _tell_completed(self, batch: list[tuple[JobContext, float]]) -> None:
        for layer in self._completed:
            try:
                layer.jobs_completed(batch)
            except Exception:
                log.exception("middleware %r failed in jobs_completed", layer)

    def _notify(self, hook: str, *args: Any) -> None:
        for layer in self.middleware:
            try:
                getattr(layer, hook)(*args)
            except Exception:
                log.exception("middleware %r failed in %s", layer, hook)

    async def _notify_lifecycle(self, hook: str) -> None:
        queues = [q.name for q in self._queues]
        for layer in self.middleware:
            try:
                await getattr(layer, hook)(self.id, queues)
            except Exception:
                log.exception("middleware %r failed in %s", layer, hook)

    def _finish(self, q: _QueueState, job_id: str) -> None:
        if q.running.pop(job_id, None) is not None:
            self._release_slots(1)

    def _writer(self, q: _QueueState) -> Callable[[str, str, str, str], Any]:
        async def write(job_id: str, token: str, progress: str, line: str) -> int:
            args = [self._maxlen, job_id, token, progress, line, 100]
            return int(await self._call_script("progress", q, args))

        return write

    async def _fail(
        self,
        q: _QueueState,
        ctx: JobContext,
        running: _Running,
        spec: dict[str, Any],
        error: BaseException,
        started: float,
    ) -> None:
        job_id, attempts = ctx.id, ctx.attempt - 1
        counted = not isinstance(error, RetryLater | JobCancelled)
        if isinstance(error, JobCancelled):
            decision, outcome = Decision(False, 0.0, str(error)), "cancelled"
        elif isinstance(error, RetryLater):
            decision, outcome = Decision(True, error.delay, error.reason), "retry"
        else:
            decision = self._decide(spec, attempts, error)
            outcome = "retry" if decision.retry else "dead"
        tb = "".join(traceback.format_exception(error)) if outcome != "cancelled" else None
        described = describe_error(error, tb or getattr(error, "traceback_text", None))
        record = {
            "outcome": outcome, "worker": self.id, "started": int(started * 1000),
            "finished": int(time.time() * 1000), "error": described,
        }  # fmt: skip
        keep = self.keep_dead.args()
        args = [
            self._maxlen, *keep, job_id, running.token, dumps(described), dumps(record),
            outcome, int(decision.delay * 1000), 1 if counted else 0, decision.reason,
            _throttle_ms(error),
        ]  # fmt: skip
        script, keys = "fail", q.layout
        if outcome != "retry" and ancestors_of(spec):
            # A flow child's end decides its parent too: both in one script.
            keys, args = tree_fail_call(q.name, job_id, q.layout, spec, args)
            script = "tree_fail"
        done = await self._call_script(script, q, args, keys)
        if not (done[0] if isinstance(done, list) else done):
            self.stats.lease_lost += 1
            log.warning("job %s: lease lost before its failure could be written", job_id)
            self._notify("lease_lost", q.name, job_id)
            return
        self._notify_finished(ctx, outcome, started, error)
        self.stats.failed += outcome != "cancelled"
        self.stats.retried += outcome == "retry"
        self.stats.dead += outcome == "dead"
        self.stats.cancelled += outcome == "cancelled"
        log.info("job %s %s: %s", job_id, outcome, decision.reason)

    def _decide(self, spec: dict[str, Any], attempts: int, error: BaseException) -> Decision:
        handler = self.handlers.get(spec["name"])
        policy = (handler.retry if handler else None) or self.retry_policy
        options = spec["opts"]
        try:
            return policy.decide(error, attempts + 1, options["attempts"], backoff_of(options))
        except UnrecoverableError as exc:
            return Decision(False, 0.0, str(exc))

    # -- acknowledging ----------------------------------------------------------------

    async def _ack_loop(self, q: _QueueState) -> None:
        while True:
            if not q.acks and not q.flow_acks:
                if self._drained:
                    return
                await q.ack_ready.wait()
                q.ack_ready.clear()
                continue
            if q.flow_acks:
                await self._complete_flow_children(q)
            if not q.acks:
                continue
            batch, q.acks = q.acks, []
            wanted = 0 if self._stopping.is_set() else self.batch_size
            count = self._reserve(wanted)
            # The script completes the batch before it fetches, so the fetch may reuse the
            # finished jobs' slots: one round trip per batch instead of complete, then fetch.
            reused = min(len(batch), wanted - count)
            count += reused
            args: list[Any] = [
                self._maxlen, *self.keep_completed.args(), self.id,
                int(self.lease * 1000), count, len(batch),
            ]  # fmt: skip
            for ack in batch:
                args.extend(ack)
            self._notify_completed(q)
            q.completing.update(ack[0] for ack in batch)
            try:
                codes, fetched = await self._call_script("complete", q, args)
            finally:
                q.completing.difference_update(ack[0] for ack in batch)
            for (job_id, _token, _result), code in zip(batch, codes, strict=True):
                if code == 1:
                    self.stats.completed += 1
                else:
                    self.stats.lease_lost += 1
                    log.warning("job %s: lease lost; its result was not written", job_id)
                    self._notify("lease_lost", q.name, job_id)
                q.running.pop(job_id, None)
            self._release_slots(len(batch) - reused)
            if self._stopping.is_set():  # fetched as the worker was told to stop
                await self._give_back(q, fetched, count)
            elif self._start_jobs(q, fetched, count) and self.middleware:
                self._notify("jobs_fetched", q.name, len(fetched) // 5)

    async def _complete_flow_children(self, q: _QueueState) -> None:
        """Flow children complete in batches too, with their parents' bookkeeping in the
        same script (its KEYS span the parents' queues)."""
        batch, q.flow_acks = q.flow_acks, []
        head = [self._maxlen, *self.keep_completed.args()]
        keys, args = tree_complete_call(q.layout, q.name, batch, head)
        self._notify_completed(q)
        q.completing.update(ack[0] for ack in batch)
        try:
            replies = await self._call_script("tree_complete", q, args, keys)
        finally:
            q.completing.difference_update(ack[0] for ack in batch)
        for (job_id, *_), (code, _parent) in zip(batch, replies, strict=True):
            if code == 1:
                self.stats.completed += 1
            else:
                self.stats.lease_lost += 1
                log.warning("job %s: lease lost; its result was not written", job_id)
                self._notify("lease_lost", q.name, job_id)
            self._finish(q, job_id)

    # -- leases, stalls, heartbeat -----------------------------------------------------

    async def _renew_loop(self) -> None:
        interval = min(self.lease / 3, 2.0)
        while True:
            await asyncio.sleep(interval)
            for q in self._queues:
                await self._renew(q)

    async def _renew(self, q: _QueueState) -> None:
        finishing = q.completing.union(ack[0] for ack in q.acks + q.flow_acks)
        held = [(i, r) for i, r in q.running.items() if not r.lost and i not in finishing]
        if not held:
            return
        args: list[Any] = [int(self.lease * 1000)]
        for job_id, running in held:
            args += [job_id, running.token]
        try:
            codes = await self.connection.scripts("extend", q.layout, args)
        except TRANSIENT_ERRORS as exc:
            log.warning("lease renewal for %s failed (%s)", q.name, exc)
            return
        for (job_id, running), code in zip(held, codes, strict=True):
            if code == 0 and q.running.get(job_id) is running and job_id not in q.completing:
                running.lost = True
                self.stats.lease_lost += 1
                log.warning("job %s: lease lost; abandoning it", job_id)
                if running.task:
                    running.task.cancel()
            elif code == 2 and running.cancel_reason is None:
                reason = await self.connection.client.hget(q.keys.job_field("cancel"), job_id)
                running.cancel_reason = reason or "cancelled"
                if running.task:
                    running.task.cancel()

    async def _maintenance_loop(self) -> None:
        while True:
            for q in self._queues:
                await self._recover_stalled(q)
            await asyncio.sleep(self.stall_check_interval)

    async def _recover_stalled(self, q: _QueueState) -> None:
        args = [self._maxlen, self.max_stalls, 1000, *self.keep_dead.args()]
        try:
            requeued, buried = await self.connection.scripts("recover_stalled", q.layout, args)
        except TRANSIENT_ERRORS as exc:
            log.warning("stall check of %s failed (%s)", q.name, exc)
            return
        for job_id in buried:  # a flow child buried here still has to tell its parent
            try:
                await settle(self.connection, q.name, job_id)
            except TRANSIENT_ERRORS as exc:  # Flows.settle() repairs it later
                log.warning("could not tell the flow parent of %s (%s)", job_id, exc)
        if requeued or buried:
            self._notify("stalled", q.name, len(requeued), len(buried))
            log.warning("%s: %d stalled jobs requeued, %d dead", q.name, len(requeued), len(buried))

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                await self._heartbeat()
            except TRANSIENT_ERRORS as exc:
                log.warning("heartbeat failed (%s)", exc)
            await asyncio.sleep(HEARTBEAT_INTERVAL)

    async def _heartbeat(self) -> None:
        info = {
            "id": self.id, "host": socket.gethostname(), "pid": os.getpid(),
            "queues": ",".join(q.name for q in self._queues), "concurrency": self.concurrency,
            "running": self.running_jobs, "completed": self.stats.completed,
            "failed": self.stats.failed, "last_seen": time.time(),
        }  # fmt: skip
        pipe = self.connection.client.pipeline(transaction=False)
        pipe.hset(worker_key(self.id), mapping=info)
        pipe.expire(worker_key(self.id), HEARTBEAT_TTL)
        pipe.zadd(GLOBAL_WORKERS, {self.id: time.time()})
        await pipe.execute()

    async def _unregister(self) -> None:
        try:
            pipe = self.connection.client.pipeline(transaction=False)
            pipe.delete(worker_key(self.id))
            pipe.zrem(GLOBAL_WORKERS, self.id)
            await pipe.execute()
        except TRANSIENT_ERRORS:
            log.warning("could not remove worker %s from the registry", self.id)
