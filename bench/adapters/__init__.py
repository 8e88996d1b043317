"""One module per library, each exposing the same small interface (see :mod:`adapters.base`).

Adapter modules import only their own library, so a worker process of one library never
loads another.
"""

from __future__ import annotations

import importlib

from adapters.base import Adapter

#: Library name -> adapter module (under ``adapters``).
MODULES = {
    "conveyor": "conveyor_",
    "arq": "arq_",
    "saq": "saq_",
    "rq": "rq_",
    "dramatiq": "dramatiq_",
    "celery": "celery_",
    "taskiq": "taskiq_",
    "streaq": "streaq_",
    "bullmq": "bullmq_",
}


def load(name: str) -> Adapter:
    module = importlib.import_module(f"adapters.{MODULES[name]}")
    adapter: Adapter = module.ADAPTER
    return adapter
