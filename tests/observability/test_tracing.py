"""OpenTelemetry: producer and consumer spans linked through the job's traceparent."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, StatusCode

import conveyor
from conveyor import JobContext, JobOptions, Queue, Worker
from conveyor.observability.logging import LoggingMiddleware, configure
from conveyor.observability.tracing import TracingMiddleware, _unsampled, _UnsampledParent
from tests.conftest import running, wait_for_state


async def test_producer_and_consumer_spans_linked_and_child_continues(
    conn: conveyor.Connection, queue_name: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    stack = [TracingMiddleware(provider), LoggingMiddleware()]
    queue = Queue(queue_name, conn, middleware=stack)
    done = asyncio.Event()

    async def parent(ctx: JobContext, data: Any) -> None:
        await queue.add("child")

    async def child(ctx: JobContext, data: Any) -> None:
        done.set()
        raise ValueError("child fails once")

    stream = io.StringIO()
    handler = configure("INFO", stream=stream)
    try:
        first = await queue.add("parent")
        worker = Worker(conn, [queue_name], {"parent": parent, "child": child}, middleware=stack)
        async with running(worker):
            await asyncio.wait_for(done.wait(), 10)
            await wait_for_state(queue, first.id, "completed")
    finally:
        logging.getLogger("conveyor").removeHandler(handler)
        handler.close()
    provider.shutdown()
    spans = exporter.get_finished_spans()
    producers = [s for s in spans if s.kind == SpanKind.PRODUCER]
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert [s.name for s in producers] == [f"create {queue_name}"] * 2
    assert {s.name for s in consumers} == {f"process {queue_name}"}
    parent_create, child_create = producers
    parent_run = next(s for s in consumers if s.attributes["conveyor.job.name"] == "parent")
    child_run = next(s for s in consumers if s.attributes["conveyor.job.name"] == "child")
    # One trace from the first enqueue to the child's attempt.
    assert {s.context.trace_id for s in spans} == {parent_create.context.trace_id}
    assert parent_run.parent is not None
    assert parent_run.parent.span_id == parent_create.context.span_id
    assert [link.context.span_id for link in parent_run.links] == [parent_create.context.span_id]
    assert child_create.parent is not None
    assert child_create.parent.span_id == parent_run.context.span_id
    assert child_run.parent is not None
    assert child_run.parent.span_id == child_create.context.span_id
    assert child_run.status.status_code == StatusCode.ERROR
    attributes = parent_run.attributes
    assert attributes["messaging.system"] == "conveyor"
    assert attributes["messaging.operation.type"] == "process"
    assert attributes["messaging.destination.name"] == queue_name
    assert attributes["messaging.message.id"] == first.id
    assert parent_create.attributes["messaging.operation.type"] == "create"
    # Log lines carry the consumer span's ids.
    started = [json.loads(line) for line in stream.getvalue().splitlines()]
    line = next(e for e in started if e["event"] == "job.completed" and e["name"] == "parent")
    assert line["trace_id"] == f"{parent_run.context.trace_id:032x}"
    assert line["span_id"] == f"{parent_run.context.span_id:016x}"


def test_without_an_sdk_jobs_are_left_alone() -> None:
    options = TracingMiddleware().before_enqueue("q", "n", JobOptions(meta={"tenant": "t"}))
    assert options.meta == {"tenant": "t"}


def test_spans_only_for_jobs_that_carry_a_trace_or_when_an_sdk_records() -> None:
    ctx = JobContext(
        id="j", name="n", queue="q", attempt=1, token="1", meta={}, options={},
        worker_id="w", _write=None,  # type: ignore[arg-type]
    )  # fmt: skip
    assert TracingMiddleware(TracerProvider()).wraps(ctx)
    ctx.meta["traceparent"] = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    assert TracingMiddleware().wraps(ctx)  # an incoming trace is continued, SDK or not


def current_ids() -> dict[str, str]:
    span = trace.get_current_span().get_span_context()
    return {"trace_id": f"{span.trace_id:032x}", "span_id": f"{span.span_id:016x}"}


async def test_a_job_of_an_unsampled_trace_gets_no_span_but_stays_in_the_trace(
    conn: conveyor.Connection, queue_name: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))  # every new trace unsampled
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    stack = [TracingMiddleware(provider)]
    queue = Queue(queue_name, conn, middleware=stack)
    seen: dict[str, tuple[str | None, dict[str, str] | None]] = {}
    child_ran = asyncio.Event()

    async def parent(ctx: JobContext, data: Any) -> None:
        child = await queue.add("child")
        seen["parent"] = (None, current_ids())
        seen["child-enqueued"] = ((await queue.get_job(child.id)).meta.get("traceparent"), None)

    async def child(ctx: JobContext, data: Any) -> None:
        seen["child"] = (ctx.meta.get("traceparent"), current_ids())
        child_ran.set()

    first = await queue.add("parent")
    traceparent = (await queue.get_job(first.id)).meta["traceparent"]
    assert not int(traceparent.split("-")[3], 16) & 1  # the producer's trace: not sampled
    worker = Worker(conn, [queue_name], {"parent": parent, "child": child}, middleware=stack)
    async with running(worker):
        await wait_for_state(queue, first.id, "completed")
        await asyncio.wait_for(child_ran.wait(), 10)
    provider.shutdown()
    assert exporter.get_finished_spans() == ()  # nothing sampled, nothing recorded
    trace_id = traceparent.split("-")[1]
    assert seen["parent"][1] == {"trace_id": trace_id, "span_id": traceparent.split("-")[2]}
    child_traceparent = seen["child-enqueued"][0]
    assert child_traceparent is not None and child_traceparent.split("-")[1] == trace_id
    assert seen["child"][1] is not None and seen["child"][1]["trace_id"] == trace_id


def test_an_unsampled_parent_is_parsed_only_when_asked_for() -> None:
    traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-00"
    parent = _UnsampledParent(traceparent)
    assert parent._resolved is None and not parent.is_recording()
    context = parent.get_span_context()
    assert (context.trace_id, context.span_id) == (int("1" * 32, 16), int("2" * 16, 16))
    assert context.is_remote and not context.trace_flags.sampled
    assert parent._resolved is context and "NonRecordingSpan(" in repr(parent)
    malformed = _UnsampledParent("00-" + "x" * 32 + "-" + "2" * 16 + "-00")
    assert not malformed.get_span_context().is_valid  # as if the job had no parent


def test_unsampled_shortcut_only_for_well_formed_unsampled_parents() -> None:
    ids = "00-" + "1" * 32 + "-" + "2" * 16
    assert _unsampled(ids + "-00") is not None
    assert _unsampled(ids + "-01") is None  # sampled: a real span is made
    other_flags = _unsampled(ids + "-02")
    assert other_flags is not None and other_flags.trace_flags == 2
    for bad in (
        None,
        "",
        ids + "-zz",
        "01" + ids[2:] + "-00",
        "00-" + "0" * 32 + "-" + "2" * 16 + "-00",  # an all-zero trace id is invalid
        "00-" + "1" * 32 + "_" + "2" * 16 + "-00",
        "00-" + "1" * 31 + "G" + "-" + "2" * 16 + "-00",
        "00-" + "0x" + "1" * 30 + "-" + "2" * 16 + "-00",  # int() would take it
        "00-" + "1" * 32 + "-" + "2" * 15 + "A" + "-00",  # upper case is not W3C
        ids + "-+0",
    ):
        assert _unsampled(bad) is None
