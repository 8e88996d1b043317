"""Redis key names of a queue.

Every key of one queue shares the hash tag ``{name}``, so a queue lives in one Redis
Cluster slot and each Lua script can touch all the keys it is given.
Per-job fields are stored column-wise: one hash per field, keyed by job id, so that a
script never has to build a key name it was not given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PREFIX = "cv"
GLOBAL_QUEUES = f"{PREFIX}:queues"
GLOBAL_WORKERS = f"{PREFIX}:workers"

#: Hash-per-field layout; the order is the order scripts receive them in.
JOB_FIELDS = (
    "spec",  # JSON written once at enqueue: name, data, options, meta, created
    "state",  # waiting | delayed | active | completed | dead | cancelled
    "token",  # fencing token, incremented on every activation
    "attempts",  # failed attempts so far
    "stalls",  # times the lease expired while active
    "worker",  # id of the worker holding (or last holding) the job
    "started",  # ms timestamp of the current/last activation
    "finished",  # ms timestamp of completion / death / cancellation
    "result",  # JSON return value
    "error",  # JSON of the last error
    "history",  # JSON list of attempts
    "progress",  # JSON progress value
    "logs",  # JSON list of log lines (bounded)
    "cancel",  # "1" when an operator asked to cancel a running job
    "ready",  # ms timestamp when a delayed job becomes due
    "priority",  # integer, higher runs first
)


#: Queue-level structures, in script KEYS order.
QUEUE_STRUCTURES = (
    "waiting",  # zset: id -> priority/sequence score
    "delayed",  # zset: id -> due time (ms)
    "active",  # zset: id -> lease expiry (ms)
    "completed",  # zset: id -> finish time (ms)
    "dead",  # zset: id -> death time (ms)
    "cancelled",  # zset: id -> cancel time (ms)
    "meta",  # hash: paused, settings
    "marker",  # zset woken on by idle workers (BZPOPMIN)
    "events",  # stream of state changes
    "seq",  # counter for FIFO order within a priority
)


#: Flow control (conveyor.limiter), after the job fields in script KEYS order; the scripts
#: find them at FC_BASE (see conveyor.scripts), so fields added above do not shift them.
FLOW_STRUCTURES = (
    "fc:config",  # hash: queue-wide and per-key limits
    "fc:lanes",  # zset, lex order: groups with jobs ready to run (round-robin by name)
    "fc:blocked",  # zset: groups held back by a rate limit or throttle -> reopen ms
    "fc:full",  # set: groups at their concurrency limit (back in lanes on release)
    "fc:jobs",  # zset, lex order: "group\0score\0id" for every waiting grouped job
    "fc:inflight",  # hash: group -> active jobs
    "fc:log",  # zset, lex order: "group\0start ms\0id", the sliding rate windows
    "fc:logexp",  # zset: group -> when its whole rate log has expired (ms)
    "fc:expiry",  # zset: id -> start deadline (ms)
    "fc:cursor",  # string: the group served last (the round-robin cursor)
    "fc:job",  # hash: id -> "group\0score\0id", its (last) member in fc:jobs
)


def worker_key(worker_id: str) -> str:
    return f"{PREFIX}:worker:{worker_id}"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """All keys of one queue, named once."""

    queue: str
    base: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", f"{PREFIX}:{{{self.queue}}}")

    def key(self, suffix: str) -> str:
        return f"{self.base}:{suffix}"

    def state_set(self, state: str) -> str:
        """The sorted set listing the jobs in ``state`` (named after the state)."""
        return self.key(state)

    @property
    def waiting(self) -> str:
        return self.key("waiting")

    @property
    def delayed(self) -> str:
        return self.key("delayed")

    @property
    def active(self) -> str:
        return self.key("active")

    @property
    def completed(self) -> str:
        return self.key("completed")

    @property
    def dead(self) -> str:
        return self.key("dead")

    @property
    def cancelled(self) -> str:
        return self.key("cancelled")

    @property
    def meta(self) -> str:
        return self.key("meta")

    @property
    def marker(self) -> str:
        return self.key("marker")

    @property
    def events(self) -> str:
        return self.key("events")

    @property
    def seq(self) -> str:
        return self.key("seq")

    @property
    def layout(self) -> list[str]:
        """The KEYS every script receives, in the order ``scripts/_prelude.lua`` names them."""
        queue_keys = [self.key(name) for name in QUEUE_STRUCTURES]
        flow_keys = [self.key(name) for name in FLOW_STRUCTURES]
        return queue_keys + [self.job_field(name) for name in JOB_FIELDS] + flow_keys

    def job_field(self, name: str) -> str:
        assert name in JOB_FIELDS, name
        return self.key(f"job:{name}")
