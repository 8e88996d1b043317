"""Run one workload of one library against a Redis the driver started; print one JSON line.

    python measure.py LIB WORKLOAD --url URL [--jobs N] [--procs K] [--rate R]

Workloads: ``enqueue`` (one call per job), ``bulk``, ``drain`` (K worker processes on N
pre-enqueued jobs), ``latency`` (N jobs at R jobs/s to one worker process). The driver
(:mod:`run`) runs each measurement in a fresh process with a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lib")
    parser.add_argument("workload", choices=["enqueue", "bulk", "drain", "latency"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--procs", type=int, default=1)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for jobs")
    parser.add_argument("--logdir", type=Path, default=HERE / "results" / "logs.tmp")
    parser.add_argument("--pidfile", type=Path, default=None)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    # Set before any adapter is imported: adapter modules read it at import time.
    os.environ["BENCH_REDIS_URL"] = args.url
    if args.workload == "latency":
        os.environ["BENCH_RECORD_LATENCY"] = "1"
    sys.path.insert(0, str(HERE))
    try:
        from workloads import run_workload

        result: dict[str, Any] = asyncio.run(run_workload(args))
    except Exception as exc:
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc()
    result["measured_at"] = time.time()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
