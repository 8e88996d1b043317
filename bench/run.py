"""Benchmark Conveyor against peer libraries: W1 enqueue, W2 drain, W3 latency.

    bench/.venv/bin/python bench/run.py [--libs conveyor arq ...] [--runs 3] [--jobs 20000]

Every measurement runs in a fresh process (``measure.py``) against a fresh private
redis-server started with ``conveyor.EmbeddedRedis`` (same configuration for every library:
no persistence), under a time limit; a run that times out or loses jobs is reported as
failed. Each figure is the median of the runs that succeeded. Results go to
``bench/results/<date>.json`` and a table to stdout.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import LIBS, MEASUREMENTS, render

from conveyor import EmbeddedRedis

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libs", nargs="+", choices=LIBS, default=LIBS)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs for W1 and W2")
    parser.add_argument("--latency-jobs", type=int, default=500, help="jobs for W3")
    parser.add_argument("--rate", type=float, default=50.0, help="W3 jobs per second")
    parser.add_argument(
        "--only", nargs="+", choices=[m for m, _ in MEASUREMENTS], help="measurements to run"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds one measurement may take"
    )
    parser.add_argument(
        "--concurrency", nargs="+", default=[], metavar="LIB=N",
        help="jobs per worker process for LIB (default: each adapter's choice)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    parser.add_argument(
        "--report", type=Path, default=None, metavar="JSON",
        help="only print the table of an earlier (or partial .json.tmp) results file",
    )  # fmt: skip
    return parser.parse_args(argv)


def measure(
    args: argparse.Namespace, lib: str, key: str, concurrency: str | None
) -> dict[str, Any]:
    """One measurement in a fresh process against a fresh server, within the time limit."""
    workload, procs = {"enqueue": ("enqueue", 1), "bulk": ("bulk", 1), "drain1": ("drain", 1),
                       "drain2": ("drain", 2), "latency": ("latency", 1)}[key]  # fmt: skip
    jobs = args.latency_jobs if workload == "latency" else args.jobs
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as data_dir:
        server = EmbeddedRedis(data_dir, appendonly=False).start()
        pidfile = Path(data_dir) / "workers.pids"
        command = [
            sys.executable, str(HERE / "measure.py"), lib, workload, "--url", server.url,
            "--jobs", str(jobs), "--procs", str(procs), "--rate", str(args.rate),
            "--timeout", str(args.timeout * 0.8), "--pidfile", str(pidfile),
            "--logdir", str(RESULTS / "logs.tmp"),
        ]  # fmt: skip
        env = dict(os.environ, BENCH_CONCURRENCY=concurrency or "")
        try:
            return _run_child(command, env, args.timeout, pidfile)
        finally:
            server.stop()


def _run_child(
    command: list[str], env: dict[str, str], timeout: float, pidfile: Path
) -> dict[str, Any]:
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=HERE,
        start_new_session=True, text=True,
    )  # fmt: skip
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(child.pid)
        for line in pidfile.read_text().split() if pidfile.exists() else []:
            _kill_group(int(line))
        child.communicate()
        return {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        return {"ok": False, "error": f"no result (exit {child.returncode}): {err[-500:]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    if not result.get("ok"):
        result["stderr"] = err[-2000:]
    return result


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    redis_version = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
        "kernel": platform.release(), "redis": redis_version, "loadavg": os.getloadavg(),
    }  # fmt: skip


def engine_revision() -> dict[str, Any]:
    """The commit measured, and whether src/conveyor had uncommitted changes then."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=HERE, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "../src/conveyor")
    return {"commit": git("rev-parse", "HEAD"), "engine_dirty": bool(dirty)}


def compile_conveyor() -> None:
    """Byte-compile Conveyor's sources, as ``pip install`` did for every peer: Conveyor is
    installed editable here, and where PYTHONDONTWRITEBYTECODE is set (this machine sets
    it) each worker process would otherwise compile all of it again as it starts
    (≈ 0.25 s, in W2's window when two processes start side by side)."""
    spec = importlib.util.find_spec("conveyor")
    assert spec is not None and spec.submodule_search_locations
    (package,) = spec.submodule_search_locations
    compileall.compile_dir(package, quiet=1)


def main() -> None:
    args = parse_args()
    if args.report is not None:
        print(render(json.loads(args.report.read_text()))[0])
        return
    compile_conveyor()
    limits = dict(item.split("=", 1) for item in args.concurrency)
    keys = args.only or [m for m, _ in MEASUREMENTS]
    started = datetime.now(UTC)
    out = args.out or RESULTS / f"{started:%Y-%m-%d-%H%M}.json"
    tmp = out.with_suffix(".json.tmp")
    RESULTS.mkdir(exist_ok=True)
    doc: dict[str, Any] = {
        "started": started.isoformat(), "command": " ".join(sys.argv), "machine": machine(),
        "revision": engine_revision(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"only": keys},
        "libraries": {}, "runs": [],
    }  # fmt: skip
    doc["settings"]["libs"] = args.libs
    for lib in args.libs:
        doc["libraries"][lib] = _describe(lib, limits.get(lib))
    # Run-major order: a load spike from the busy machine hits every library, not one.
    for run in range(1, args.runs + 1):
        for lib in args.libs:
            for key in keys:
                t0 = time.monotonic()
                result = measure(args, lib, key, limits.get(lib))
                result |= {"lib": lib, "measurement": key, "run": run}
                doc["runs"].append(result)
                print(_progress(result, time.monotonic() - t0), file=sys.stderr, flush=True)
                tmp.write_text(json.dumps(doc, indent=1))
    doc["finished"] = datetime.now(UTC).isoformat()
    doc["machine"]["loadavg_end"] = os.getloadavg()
    table, summary = render(doc)
    doc["summary"] = summary
    out.write_text(json.dumps(doc, indent=1))
    tmp.unlink(missing_ok=True)
    print(table)
    print(f"\nwrote {out}")


def _describe(lib: str, concurrency: str | None) -> dict[str, str]:
    """Version and settings of ``lib``, read from its adapter in a clean process."""
    code = (
        "import json, sys, adapters; a = adapters.load(sys.argv[1]); "
        "print(json.dumps({'version': a.version, 'bulk': a.bulk_label, 'worker': a.worker_label}))"
    )
    # Adapters read the URL at import; port 1 is never a server (and never the shared one).
    env = dict(os.environ, BENCH_REDIS_URL="redis://127.0.0.1:1/0")
    env["BENCH_CONCURRENCY"] = concurrency or ""
    done = subprocess.run(
        [sys.executable, "-c", code, lib],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {
            "version": "?",
            "bulk": "?",
            "worker": f"adapter failed to load: {done.stderr[-300:]}",
        }
    described: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return described


def _progress(result: dict[str, Any], seconds: float) -> str:
    head = f"[run {result['run']}] {result['lib']:9} {result['measurement']:8}"
    if not result.get("ok"):
        return f"{head} FAILED ({seconds:.0f} s): {result.get('error')}"
    if result["measurement"] == "latency":
        return f"{head} p50 {result['p50']:.2f} ms  p99 {result['p99']:.2f} ms"
    extra = f", {result['duplicates']} duplicates" if result.get("duplicates") else ""
    return f"{head} {result['value']:>9,.0f} jobs/s ({seconds:.0f} s{extra})"


if __name__ == "__main__":
    main()
