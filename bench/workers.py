"""Worker processes of a library under test, and what their handlers reported."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from adapters import probe

HERE = Path(__file__).resolve().parent


@dataclass
class Progress:
    distinct: int  # distinct jobs whose handler ran
    runs: int  # handler calls, duplicates included
    first: float  # earliest handler start over all processes (UNIX seconds)
    last: float  # latest handler start over all processes
    first_spread: float = 0.0  # last process's first handler start - the first process's
    #: Per process: its first and last handler start (seconds after ``first``) and its runs.
    processes: list[tuple[float, float, int]] = field(default_factory=list)


class WorkerGroup:
    """K worker processes, each in its own session so it can be stopped with its children."""

    def __init__(self, commands: list[list[str]], url: str, logdir: Path, pidfile: Path | None):
        self.commands = commands
        self.url = url
        self.logdir = logdir
        self.pidfile = pidfile
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, label: str) -> None:
        self.logdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, BENCH_REDIS_URL=self.url, PYTHONPATH=str(HERE))
        for n, command in enumerate(self.commands):
            with open(self.logdir / f"{label}-{n}.log", "wb") as log:
                process = subprocess.Popen(
                    command, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, start_new_session=True,
                )  # fmt: skip
            self.processes.append(process)
            if self.pidfile is not None:
                # The driver kills these groups if this process runs out of time.
                with open(self.pidfile, "a") as pids:
                    pids.write(f"{process.pid}\n")

    def exited(self) -> list[int]:
        return [code for p in self.processes if (code := p.poll()) is not None]

    def stop(self, grace: float = 10.0) -> None:
        for process in self.processes:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        for process in self.processes:
            # Children of a worker (celery, dramatiq, taskiq) share its group: end them too.
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class Probe:
    """Reads what :mod:`adapters.probe` wrote from the handlers."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)

    def distinct(self) -> int:
        return int(self.client.scard(probe.IDS))

    def warm(self) -> int:
        return int(self.client.get(probe.WARM) or 0)

    def progress(self) -> Progress:
        pids = sorted(
            key.removeprefix(probe.FIRST) for key in self.client.scan_iter(f"{probe.FIRST}*")
        )
        firsts = [float(v) for v in self._values(probe.FIRST, pids)]
        lasts = [float(v) for v in self._values(probe.LAST, pids)]
        runs = [int(v) for v in self._values(probe.RUNS_OF, pids)]
        first = min(firsts, default=0.0)
        return Progress(
            distinct=self.distinct(),
            runs=int(self.client.get(probe.RUNS) or 0),
            first=first,
            last=max(lasts, default=0.0),
            first_spread=max(firsts, default=0.0) - first,
            processes=[
                (round(a - first, 4), round(b - first, 4), n)
                for a, b, n in zip(firsts, lasts, runs, strict=True)
            ],
        )

    def _values(self, prefix: str, pids: list[str]) -> list[str]:
        values = self.client.mget([f"{prefix}{pid}" for pid in pids]) if pids else []
        return [v or "0" for v in values]

    def latencies(self) -> dict[int, float]:
        entries = self.client.lrange(probe.LATENCY, 0, -1)
        result: dict[int, float] = {}
        for entry in entries:
            job, _, seconds = entry.partition(":")
            result.setdefault(int(job), float(seconds))  # the first run of a job counts
        return result

    def wait_for(self, count: int, timeout: float, group: WorkerGroup) -> None:
        """Poll until ``count`` distinct jobs ran; a dead worker or the time limit fails."""
        deadline = time.monotonic() + timeout
        while (seen := self.distinct()) < count:
            if group.exited():
                raise RuntimeError(f"a worker exited early (codes {group.exited()}); {seen} done")
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {seen} of {count} jobs ran within {timeout:.0f} s")
            time.sleep(0.02)
