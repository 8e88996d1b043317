"""``/metrics``: Prometheus text rendered by ``conveyor.observability`` when installed."""

from __future__ import annotations

import importlib

from fastapi import APIRouter, Response

from conveyor.server.deps import Ctx, Viewer
from conveyor.server.errors import ApiError

router = APIRouter(tags=["metrics"])


@router.get("/metrics", name="metrics", response_class=Response)
async def metrics(ctx: Ctx, who: Viewer) -> Response:
    try:
        module = importlib.import_module("conveyor.observability.cluster")
    except ImportError:
        raise ApiError(
            404, "metrics_unavailable", "conveyor.observability is not installed", None
        ) from None
    body: bytes = await module.render_cluster_metrics(ctx.connection)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
