"""Turning jobs into script arguments and Redis replies back into :class:`Job` records.

Shared by the async :class:`~conveyor.queue.Queue` and the sync
:class:`~conveyor.sync.SyncQueue`, so both write exactly the same bytes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from conveyor.errors import InvalidJobData, InvalidJobOptions
from conveyor.job import Attempt, Enqueued, Job, JobOptions, JobState
from conveyor.keys import JOB_FIELDS
from conveyor.retry import Backoff
from conveyor.validation import check_job_name, encode_json

NO_OPTIONS = JobOptions()

#: An item of a bulk add: (name, data) or (name, data, options).
BulkItem = tuple[str, Any] | tuple[str, Any, JobOptions]


def new_job_id() -> str:
    return os.urandom(16).hex()  # as unique as uuid4().hex, at a fifth of the cost


@dataclass(frozen=True, slots=True)
class PreparedJob:
    id: str
    args: tuple[str, str, int, int]  # id, spec JSON, priority, delay ms


@dataclass(frozen=True, slots=True)
class SpecTemplate:
    """What one :class:`JobOptions` contributes to a spec, worked out once per options
    object: a bulk add of jobs that share their options merges and encodes them once."""

    merged: JobOptions
    head: str  # "{" and, for flow control, the "fc" member that add.lua reads first
    opts: str  # ',"opts":{...},"meta":{...}'
    delay_ms: int


def spec_template(options: JobOptions, defaults: JobOptions) -> SpecTemplate:
    merged = options.merged(defaults)
    assert merged.backoff is not None and merged.attempts is not None
    delay_ms = int((merged.delay or 0.0) * 1000)
    flow = flow_control(merged, delay_ms)
    # First in the spec: add.lua reads it there without decoding the JSON (_flow.lua).
    head = "{" if flow is None else '{"fc":' + _compact(flow) + ","
    opts = {
        "attempts": merged.attempts,
        "backoff": merged.backoff.to_dict(),
        "timeout": merged.timeout,
    }
    tail = ',"opts":' + _compact(opts) + ',"meta":' + _compact(dict(merged.meta))
    return SpecTemplate(merged, head, tail, delay_ms)


class SpecTemplates:
    """``spec_template`` per options object, remembered by identity while it is in use:
    producers that pass the same options (or none) merge and encode them once."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._known: dict[int, tuple[JobOptions, JobOptions, SpecTemplate]] = {}

    def get(self, options: JobOptions, defaults: JobOptions) -> SpecTemplate:
        known = self._known.get(id(options))
        if known is None or known[0] is not options or known[1] is not defaults:
            if len(self._known) >= self._size:
                self._known.clear()
            template = spec_template(options, defaults)
            known = self._known[id(options)] = (options, defaults, template)
        return known[2]


@lru_cache(maxsize=1024)
def _encoded_name(name: str) -> str:
    return json.dumps(name)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def prepare(
    name: str,
    data: Any,
    options: JobOptions,
    defaults: JobOptions,
    max_bytes: int,
    template: SpecTemplate | None = None,
) -> PreparedJob:
    """Validate one job and encode it for ``add.lua``; raises before anything is written.

    ``template`` is ``spec_template(options, defaults)``, when the caller has it already."""
    check_job_name(name)
    template = template or spec_template(options, defaults)
    # The payload is spliced in as already-validated JSON text, not encoded twice.
    payload = encode_json(data, "data", max_bytes)
    created = int(time.time() * 1000)
    delay_ms = template.delay_ms
    due = f',"due":{created + delay_ms}' if delay_ms else ""  # lets wait times exclude the delay
    spec_json = (
        f'{template.head}"name":{_encoded_name(name)}{template.opts},"created":{created}{due},'
        f'"data":{payload}}}'
    )
    job_id = template.merged.job_id or new_job_id()
    return PreparedJob(job_id, (job_id, spec_json, template.merged.priority or 0, delay_ms))


def flow_control(merged: JobOptions, delay_ms: int) -> dict[str, Any] | None:
    """The job's group and start deadline (ms after enqueue) for the scripts, if any."""
    if merged.group is None and merged.deadline is None:
        return None
    deadline_ms = -1
    if merged.deadline is not None:
        deadline_ms = int(merged.deadline * 1000)
        if deadline_ms <= delay_ms:
            raise InvalidJobOptions(
                "deadline",
                f"must be longer than the delay ({delay_ms / 1000:g}s), or the job expires "
                "before it is due",
            )
    return {"g": merged.group or "", "x": deadline_ms}


def normalise_bulk_item(item: object, index: int) -> tuple[str, Any, JobOptions]:
    if not isinstance(item, tuple | list) or len(item) not in (2, 3):
        raise InvalidJobData(f"jobs[{index}]", "must be (name, data) or (name, data, JobOptions)")
    options = item[2] if len(item) == 3 else NO_OPTIONS
    if not isinstance(options, JobOptions):
        raise InvalidJobData(f"jobs[{index}]", "the third element must be a JobOptions")
    return item[0], item[1], options


#: Lets producer middleware adjust options: (job name, options) -> options.
OptionsHook = Callable[[str, JobOptions], JobOptions]


def prepare_bulk(
    items: Iterable[BulkItem], defaults: JobOptions, max_bytes: int, hook: OptionsHook | None = None
) -> list[PreparedJob]:
    """Validate every job of a bulk add first, so a bad one fails the call with nothing written."""
    prepared = []
    templates = SpecTemplates()
    for index, item in enumerate(items):
        name, data, options = normalise_bulk_item(item, index)
        if hook is not None:
            options = hook(name, options)
        try:
            template = templates.get(options, defaults)
            prepared.append(prepare(name, data, options, defaults, max_bytes, template))
        except InvalidJobData as exc:
            raise type(exc)(f"jobs[{index}].{exc.field}", exc.message) from None
    return prepared


def pipeline_groups(
    prepared: Sequence[PreparedJob], chunk_size: int, chunks_per_group: int
) -> Iterator[list[Sequence[PreparedJob]]]:
    """A bulk add's chunks (one ``add.lua`` call each), ``chunks_per_group`` to a pipeline."""
    step = chunk_size * chunks_per_group
    for start in range(0, len(prepared), step):
        end = min(start + step, len(prepared))
        yield [prepared[i : i + chunk_size] for i in range(start, end, chunk_size)]


def enqueued(chunks: Sequence[Sequence[PreparedJob]], replies: Sequence[Any]) -> list[Enqueued]:
    """Pair each job of the chunks with its code in ``add.lua``'s replies."""
    return [
        Enqueued(job.id, bool(code))
        for chunk, codes in zip(chunks, replies, strict=True)
        for job, code in zip(chunk, codes, strict=True)
    ]


def add_args(events_maxlen: int, jobs: Sequence[PreparedJob]) -> list[Any]:
    args: list[Any] = [events_maxlen]
    for job in jobs:
        args.extend(job.args)
    return args


def _loads(raw: str | None) -> Any:
    return json.loads(raw) if raw else None


def _seconds(raw: str | None) -> float | None:
    return int(raw) / 1000 if raw else None


def decode_job(queue: str, job_id: str, values: Sequence[str | None]) -> Job | None:
    """Build a :class:`Job` from one value per :data:`JOB_FIELDS` hash (None = missing)."""
    raw = dict(zip(JOB_FIELDS, values, strict=True))
    if raw["spec"] is None or raw["state"] is None:
        return None
    spec = json.loads(raw["spec"])
    flow = spec.get("fc") or {"g": "", "x": -1}
    return Job(
        id=job_id,
        queue=queue,
        name=spec["name"],
        data=spec.get("data"),
        state=JobState(raw["state"]),
        options=spec["opts"],
        meta=spec.get("meta", {}),
        created_at=spec["created"] / 1000,
        attempts_made=int(raw["attempts"] or 0),
        stalls=int(raw["stalls"] or 0),
        priority=int(raw["priority"] or 0),
        worker=raw["worker"],
        started_at=_seconds(raw["started"]),
        finished_at=_seconds(raw["finished"]),
        ready_at=_seconds(raw["ready"]),
        progress=_loads(raw["progress"]),
        result=_loads(raw["result"]),
        error=_loads(raw["error"]),
        history=[Attempt.from_record(a) for a in _loads(raw["history"]) or []],
        logs=_loads(raw["logs"]) or [],
        cancel_requested=raw["cancel"] is not None,
        group=flow["g"] or None,
        deadline=flow["x"] / 1000 if flow["x"] >= 0 else None,
    )


def backoff_of(options: Mapping[str, Any]) -> Backoff:
    return Backoff.from_dict(options["backoff"])
