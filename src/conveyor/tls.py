"""Throwaway TLS material for an embedded server: a private CA and a server certificate.

Made with the ``openssl`` command line, so Conveyor needs no crypto dependency; meant for
tests and local development, never for production certificates.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from conveyor.errors import ConfigError

_DAYS = "30"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.folder / "server.crt"

    @property
    def key(self) -> Path:
        return self.folder / "server.key"

    def create(self) -> TlsFiles:
        """Write the CA and a certificate for 127.0.0.1/localhost, unless already there."""
        if self.ca.exists() and self.cert.exists() and self.key.exists():
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        ca_key = self.folder / "ca.key"
        csr = self.folder / "server.csr"
        extensions = self.folder / "server.ext"
        extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            _DAYS,
            "-subj",
            "/CN=Conveyor test CA",
            "-keyout",
            ca_key,
            "-out",
            self.ca,
        )
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            self.key,
            "-out",
            csr,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            self.ca,
            "-CAkey",
            ca_key,
            "-CAcreateserial",
            "-days",
            _DAYS,
            "-extfile",
            extensions,
            "-out",
            self.cert,
        )
        return self


def _openssl(*args: str | Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise ConfigError("tls", "the openssl command is needed to make test certificates")
    result = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError("tls", f"openssl {args[0]} failed: {result.stderr.strip()}")
