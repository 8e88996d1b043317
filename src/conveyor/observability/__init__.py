"""Observability: metrics, metric history, structured logs, correlation ids and traces.

Everything plugs into the worker and the queues as :class:`conveyor.Middleware`.
:func:`standard_middleware` builds the usual stack in the right order; the modules that
need optional packages (``metrics``: prometheus-client, ``tracing``: opentelemetry-api) are
imported only when asked for.
"""

from __future__ import annotations

from conveyor.connection import Connection
from conveyor.middleware import Middleware
from conveyor.observability.cluster import render_cluster_metrics
from conveyor.observability.correlation import CorrelationMiddleware
from conveyor.observability.history import HistoryRecorder
from conveyor.observability.logging import LoggingMiddleware

__all__ = [
    "CorrelationMiddleware",
    "HistoryRecorder",
    "LoggingMiddleware",
    "render_cluster_metrics",
    "standard_middleware",
]


def standard_middleware(
    connection: Connection,
    *,
    metrics: bool = True,
    history: bool = True,
    logs: bool = True,
    tracing: bool = True,
) -> list[Middleware]:
    """Correlation ids, tracing, logs, Prometheus metrics and history, outermost first.

    Use the same list for the worker and for the queues the handlers enqueue with, so child
    jobs carry the correlation id and the trace on. ``metrics`` and ``tracing`` need their
    optional packages (``pip install 'conveyor[metrics,tracing]'``).
    """
    stack: list[Middleware] = [CorrelationMiddleware()]
    if tracing:
        from conveyor.observability.tracing import TracingMiddleware

        stack.append(TracingMiddleware())
    if logs:
        stack.append(LoggingMiddleware())
    if metrics:
        from conveyor.observability.metrics import PrometheusMiddleware

        stack.append(PrometheusMiddleware())
    if history:
        stack.append(HistoryRecorder(connection))
    return stack
