"""A private, real ``redis-server`` run as a child process.

Used when no Redis URL is configured, and by the test suite, which needs servers it may
kill, restart and pause. Data lives in an AOF file in ``data_dir``, so a restart keeps
every acknowledged write (``appendfsync always``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import TracebackType

from conveyor.errors import ConfigError, ConveyorError
from conveyor.tls import TlsFiles


class EmbeddedServerError(ConveyorError):
    """The embedded server could not be started or did not answer."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_server_binary() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise ConfigError(
            "redis-server",
            "no redis-server on PATH; install it (apt-get install redis-server) "
            "or set CONVEYOR_REDIS_URL",
        )
    return path


class EmbeddedRedis:
    """Start, stop, kill, pause and restart one private redis-server.

    >>> with EmbeddedRedis(data_dir) as server:
    ...     url = server.url
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        appendonly: bool = True,
        password: str | None = None,
        unix_socket: bool = False,
        tls: bool = False,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.password = password
        self.unix_socket = unix_socket
        self.tls = tls
        self.extra_args = extra_args
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://`` (``rediss://`` with ``tls``; the CA is :attr:`tls_files`' ``ca``)."""
        auth = f":{self.password}@" if self.password else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        return self.data_dir.resolve() / "redis.sock"

    @property
    def unix_url(self) -> str:
        """``unix://`` URL of the socket opened with ``unix_socket=True``."""
        auth = f"&password={self.password}" if self.password else ""
        return f"unix://{self.socket_path}?db=0{auth}"

    @property
    def tls_files(self) -> TlsFiles:
        return TlsFiles(self.data_dir.resolve() / "tls")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _command(self) -> list[str]:
        args = [
            find_server_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--maxmemory-policy", "noeviction",
            "--daemonize", "no",
            "--logfile", "redis.log",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        if self.unix_socket:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.tls:
            files = self.tls_files
            args[args.index("--port") + 1] = "0"  # TLS only: no plain-text port
            args += ["--tls-port", str(self.port), "--tls-cert-file", str(files.cert),
                     "--tls-key-file", str(files.key), "--tls-ca-cert-file", str(files.ca),
                     "--tls-auth-clients", "no"]  # fmt: skip
        return args + list(self.extra_args)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        if self._process is not None and self._process.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.tls:
            self.tls_files.create()
        # A process group of its own: Ctrl-C in a terminal signals the whole foreground
        # group, and the server must outlive its owner's shutdown, which still writes to it.
        self._process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, process_group=0
        )
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                log = self.data_dir / "redis.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise EmbeddedServerError(f"redis-server exited: {err}{tail}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        raise EmbeddedServerError(f"redis-server did not answer on port {self.port}")

    def _answers_ping(self) -> bool:
        hello = (f"AUTH {self.password}\r\n" if self.password else "") + "PING\r\n"
        try:
            with self._connect() as sock:
                sock.sendall(hello.encode())
                reply = b""
                while b"\r\n" not in reply or (self.password and reply.count(b"\r\n") < 2):
                    chunk = sock.recv(256)
                    if not chunk:
                        return False
                    reply += chunk
                return reply.rstrip().endswith(b"+PONG")
        except OSError:
            return False

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
        if not self.tls:
            return sock
        context = ssl.create_default_context(cafile=str(self.tls_files.ca))
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful shutdown: redis-server writes its AOF and exits."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self.resume()
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr:
            process.stderr.close()
        self._process = None

    def kill(self) -> None:
        """SIGKILL: what a crash looks like. Only AOF-synced writes survive."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            if self._process.stderr:
                self._process.stderr.close()
            self._process = None

    def pause(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def restart(self, *, hard: bool = False) -> None:
        """Stop (or kill, with ``hard``) and start again on the same port and data."""
        self.kill() if hard else self.stop()
        self.start()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
