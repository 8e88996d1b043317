"""Enqueues that need more than ``add.lua``: dedup, idempotency keys and admission limits.

Shared by :class:`~conveyor.queue.Queue` and :class:`~conveyor.sync.SyncQueue`: this module
builds the KEYS and ARGV of ``add_guarded.lua`` and turns its reply into
:class:`~conveyor.job.Enqueued` records or typed errors. Jobs that use none of these
features never come here, so the plain add path stays as fast as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.codec import BulkItem, OptionsHook, PreparedJob, normalise_bulk_item, prepare
from conveyor.dedup import DedupMode, request_digest
from conveyor.errors import (
    ConfigError,
    IdempotencyConflict,
    InvalidJobData,
    InvalidJobOptions,
    QueueFull,
)
from conveyor.job import Enqueued, JobOptions
from conveyor.keys import QueueKeys

OUTCOMES = {
    1: "created", 0: "exists", 2: "duplicate", 3: "throttled", 4: "debounced", 5: "idempotent",
}  # fmt: skip


def _limit(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(field, f"must be an integer >= 1 or None, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Admission:
    """Capacity limits checked at enqueue: at most ``max_waiting`` jobs waiting or delayed in
    the queue, and at most ``max_waiting_per_key`` per value of the job's ``meta[key]``
    (a tenant, by default). Going over raises :class:`~conveyor.QueueFull`; nothing is written.
    """

    max_waiting: int | None = None
    max_waiting_per_key: int | None = None
    key: str = "tenant"

    def __post_init__(self) -> None:
        _limit(self.max_waiting, "admission.max_waiting")
        _limit(self.max_waiting_per_key, "admission.max_waiting_per_key")
        if not isinstance(self.key, str) or not self.key:
            raise ConfigError("admission.key", "must name a meta field, e.g. 'tenant'")


@dataclass(frozen=True, slots=True)
class GuardedJob:
    """A validated job and the merged options that decide how it is guarded."""

    job: PreparedJob
    name: str
    data: Any
    options: JobOptions


def guard(
    name: str, data: Any, options: JobOptions, defaults: JobOptions, max_bytes: int
) -> GuardedJob:
    """Validate one job (raises before anything is written) and keep what guards it."""
    job = prepare(name, data, options, defaults, max_bytes)
    return GuardedJob(job, name, data, options.merged(defaults))


def guard_bulk(
    items: Iterable[BulkItem],
    defaults: JobOptions,
    max_bytes: int,
    hook: OptionsHook | None,
    admission: Admission | None,
) -> tuple[list[BulkItem], list[GuardedJob] | None]:
    """The bulk items with producer hooks applied, and their guarded form when any of them
    (or the queue's admission limits) needs one; ``None`` keeps them on the plain path."""
    if hook is None and admission is None:
        items = items if isinstance(items, list) else list(items)
        if not any(_guarded_item(item) for item in items):
            return items, None  # the plain path: prepare_bulk checks each item itself
    triples = []
    for index, item in enumerate(items):
        name, data, options = normalise_bulk_item(item, index)
        triples.append((name, data, hook(name, options) if hook else options))
    normalised: list[BulkItem] = list(triples)
    if admission is None and not any(o.dedup or o.idempotency_key for _, _, o in triples):
        return normalised, None
    guarded = []
    for index, (name, data, options) in enumerate(triples):
        try:
            guarded.append(guard(name, data, options, defaults, max_bytes))
        except InvalidJobData as exc:
            raise type(exc)(f"jobs[{index}].{exc.field}", exc.message) from None
    return normalised, guarded


def _guarded_item(item: object) -> bool:
    if not isinstance(item, tuple | list) or len(item) != 3:
        return False
    options = item[2]
    return isinstance(options, JobOptions) and bool(options.dedup or options.idempotency_key)


def needs_guard(options: JobOptions, admission: Admission | None) -> bool:
    return bool(options.dedup or options.idempotency_key or admission)


def _check_distinct(jobs: Sequence[GuardedJob]) -> None:
    """Within one call each dedup and idempotency key may appear once: the script decides
    every job against what is stored, not against its neighbours in the same call."""
    seen: set[tuple[str, str]] = set()
    for index, item in enumerate(jobs):
        opts = item.options
        for kind, key in (("dedup.key", opts.dedup and opts.dedup.key),
                          ("idempotency_key", opts.idempotency_key)):  # fmt: skip
            if not key:
                continue
            if (kind, key) in seen:
                raise InvalidJobOptions(
                    f"jobs[{index}].{kind}", f"{key!r} appears twice in one bulk add"
                )
            seen.add((kind, key))


def _job_args(item: GuardedJob) -> list[Any]:
    opts, dedup = item.options, item.options.dedup
    mode = window = flags = ""
    if dedup is not None:
        mode, window = str(DedupMode(dedup.mode)), str(int(dedup.window * 1000))
        flags = ("d" if dedup.replace_data else "") + ("t" if dedup.push_back else "")
    digest = request_digest(item.name, item.data) if opts.idempotency_key else ""
    ttl = int(opts.idempotency_ttl * 1000)
    return [*item.job.args, mode, window, flags, digest, ttl]


def _admission_key(keys: QueueKeys, item: GuardedJob, admission: Admission | None) -> str:
    if admission is None or admission.max_waiting_per_key is None:
        return keys.key("none")
    value = item.options.meta.get(admission.key)
    if not value:
        return keys.key("none")
    return keys.key(f"admit:{admission.key}:{value}")


def script_call(
    keys: QueueKeys, jobs: Sequence[GuardedJob], admission: Admission | None, maxlen: int
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of ``add_guarded.lua`` for ``jobs``."""
    _check_distinct(jobs)
    layout = keys.layout
    key_list = list(layout)
    limits = admission or Admission()
    args: list[Any] = [
        maxlen,
        -1 if limits.max_waiting is None else limits.max_waiting,
        -1 if limits.max_waiting_per_key is None else limits.max_waiting_per_key,
        len(layout) + 1,
        keys.key("none"),
    ]
    for item in jobs:
        opts = item.options
        key_list.append(keys.key(f"dedup:{opts.dedup.key}") if opts.dedup else keys.key("none"))
        key_list.append(
            keys.key(f"idem:{opts.idempotency_key}") if opts.idempotency_key else keys.key("none")
        )
        key_list.append(_admission_key(keys, item, admission))
        args.extend(_job_args(item))
    return key_list, args


def interpret(
    queue: str, keys: QueueKeys, jobs: Sequence[GuardedJob], reply: list[Any]
) -> list[Enqueued]:
    """The script's reply as one :class:`Enqueued` per job, or the typed refusal."""
    if reply and reply[0] == -1:
        _, field, waiting, limit, key = reply
        prefix = keys.key("admit:")
        tenant = key[len(prefix) :].split(":", 1)[-1] if key else ""
        raise QueueFull(queue, str(field), int(waiting), int(limit), tenant)
    if reply and reply[0] == -2:
        item = jobs[int(reply[1])]
        assert item.options.idempotency_key is not None
        raise IdempotencyConflict(item.options.idempotency_key, str(reply[2]))
    return [
        Enqueued(str(reply[i + 1]), reply[i] == 1, OUTCOMES[int(reply[i])])
        for i in range(0, len(reply), 2)
    ]
