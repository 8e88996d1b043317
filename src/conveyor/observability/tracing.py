"""OpenTelemetry traces through the queue, with the API package only (the SDK is yours).

A producer span (``create <queue>``) is started for each enqueued job and its W3C
``traceparent`` is stored in the job's meta. Each attempt runs in a consumer span
(``process <queue>``) whose parent is that context, with a link to it as the messaging
semantic conventions recommend, so child jobs enqueued by the handler continue the trace.
Without ``opentelemetry-api`` installed this module cannot be imported; nothing else in
Conveyor imports it, so tracing costs nothing when it is not used.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from conveyor import __version__
from conveyor.context import JobContext
from conveyor.job import JobOptions
from conveyor.middleware import CallNext, Middleware

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import (
        INVALID_SPAN_CONTEXT,
        Link,
        NonRecordingSpan,
        SpanContext,
        SpanKind,
        TraceFlags,
        TracerProvider,
    )
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "conveyor.observability.tracing needs opentelemetry-api: pip install 'conveyor[tracing]'"
    ) from exc


def _flags_unsampled(traceparent: str) -> bool:
    """Whether a version-00 ``traceparent``'s sampled flag is off: a quick look at its
    flags only (a malformed one is left to the propagator)."""
    if len(traceparent) != 55 or not traceparent.startswith("00-"):
        return False
    try:
        return not int(traceparent[53:], 16) & 1
    except ValueError:
        return False


_HEX = frozenset("0123456789abcdef")  # W3C trace context: lower-case hex only


def _unsampled(traceparent: str | None) -> SpanContext | None:
    """The remote span context of a well-formed version-00 ``traceparent`` whose sampled
    flag is off, else None (sampled, absent, or left to the propagator to judge)."""
    if traceparent is None or not _flags_unsampled(traceparent):
        return None
    trace_id, span_id, flags_hex = traceparent[3:35], traceparent[36:52], traceparent[53:]
    if traceparent[35] + traceparent[52] != "--" or not _HEX.issuperset(
        trace_id + span_id + flags_hex
    ):
        return None
    context = SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=True,
        trace_flags=TraceFlags(int(flags_hex, 16)),
    )  # fmt: skip
    return context if context.is_valid else None


class _UnsampledParent(NonRecordingSpan):
    """The remote parent of a job whose trace is not sampled, read from its ``traceparent``
    only when something asks for it (a child job, an instrumented HTTP call, a log line).

    Nearly every job of a sampled-down trace carries one and most handlers never look:
    parsing it up front, and the objects that made, cost about as much as the job itself.
    """

    def __init__(self, traceparent: str) -> None:  # the base's context is made on demand
        self._traceparent = traceparent
        self._resolved: SpanContext | None = None

    def get_span_context(self) -> SpanContext:
        if self._resolved is None:
            self._resolved = _unsampled(self._traceparent) or INVALID_SPAN_CONTEXT
        return self._resolved

    def __repr__(self) -> str:
        return f"NonRecordingSpan({self.get_span_context()!r})"


SYSTEM = "conveyor"
CARRIER_KEYS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


class TracingMiddleware(Middleware):
    """Producer and consumer spans linked through the job's ``traceparent``.

    Put it before :class:`~conveyor.observability.logging.LoggingMiddleware` so log lines
    carry the consumer span's ids.
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, follow_sampling: bool = True
    ) -> None:
        self.tracer = trace.get_tracer("conveyor", __version__, tracer_provider=tracer_provider)
        self.follow_sampling = follow_sampling
        self._sdk = tracer_provider is not None
        self._until_check = 0

    def _recording(self) -> bool:
        """False while no SDK is configured: then spans would be no-ops, so none are made.

        Looking the provider up reads the environment, so it is done every 1000 calls; a
        provider set later is seen within 1000 jobs, and one set once is kept for good.
        """
        if self._sdk:
            return True
        self._until_check -= 1
        if self._until_check < 0:
            self._until_check = 1000
            self._sdk = not isinstance(trace.get_tracer_provider(), _NO_SDK)
        return self._sdk

    def before_enqueue(self, queue: str, name: str, options: JobOptions) -> JobOptions:
        if not self._recording() and not trace.get_current_span().get_span_context().is_valid:
            return options
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "create",
            "messaging.operation.name": "add",
            "messaging.destination.name": queue,
            "conveyor.job.name": name,
        }
        if options.job_id is not None:
            attributes["messaging.message.id"] = options.job_id
        span = self.tracer.start_span(
            f"create {queue}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        try:
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
        finally:
            span.end()
        if not carrier:  # a non-recording tracer (no SDK configured): leave the job as it is
            return options
        meta = {k: v for k, v in options.meta.items() if k not in CARRIER_KEYS}
        return replace(options, meta={**meta, **carrier})

    def wraps(self, ctx: JobContext) -> bool:
        """A span (and so a coroutine) only for a job that may be recorded: one whose
        incoming trace is sampled, or one with none while an SDK is configured."""
        traceparent = ctx.meta.get("traceparent")
        if traceparent is None:
            return self._recording()
        return not (self.follow_sampling and _flags_unsampled(traceparent))

    def job_started(self, ctx: JobContext) -> None:
        """A job of an unsampled trace gets no span: a parent-based sampler (the SDK's
        default) would drop it anyway, and an SDK span costs tens of µs even unrecorded.
        It still runs in that trace, so child jobs carry it on (unsampled) and log lines
        name it. Attached for good: the context dies with the job's own task."""
        if not self.follow_sampling:
            return
        traceparent = ctx.meta.get("traceparent")
        if traceparent is not None and _flags_unsampled(traceparent):
            otel_context.attach(trace.set_span_in_context(_UnsampledParent(traceparent)))

    async def around_job(self, ctx: JobContext, data: Any, call_next: CallNext) -> Any:
        parent = _PROPAGATOR.extract(ctx.meta) if "traceparent" in ctx.meta else None
        creation = trace.get_current_span(parent).get_span_context() if parent else None
        links = [Link(creation)] if creation is not None and creation.is_valid else []
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": ctx.queue,
            "messaging.message.id": ctx.id,
            "messaging.consumer.group.name": ctx.queue,
            "conveyor.job.name": ctx.name,
            "conveyor.job.attempt": ctx.attempt,
            "conveyor.worker.id": ctx.worker_id,
        }
        with self.tracer.start_as_current_span(
            f"process {ctx.queue}", context=parent, kind=SpanKind.CONSUMER,
            links=links, attributes=attributes,
        ) as span:  # fmt: skip
            ids = span.get_span_context()
            if ids.is_valid:  # for the job's log lines, which are written after the span
                ctx.trace_ids = {
                    "trace_id": f"{ids.trace_id:032x}",
                    "span_id": f"{ids.span_id:016x}",
                }
            return await call_next()
