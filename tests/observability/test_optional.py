"""prometheus-client and OpenTelemetry stay optional: nothing imports them unless asked."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("prometheus_client", "opentelemetry"):
            raise ImportError(f"{name} is not installed")
sys.meta_path.insert(0, Block())
"""

CHECK = """
import conveyor
from conveyor.observability import standard_middleware
stack = standard_middleware(None, metrics=False, tracing=False)
print([type(m).__name__ for m in stack])
for module in ("metrics", "tracing"):
    try:
        __import__(f"conveyor.observability.{module}")
    except ImportError as exc:
        print(module, "->", exc)
"""


def run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout


def test_import_conveyor_loads_neither() -> None:
    # redis-py imports opentelemetry itself when it is installed: check our own modules.
    out = run(
        "import sys, conveyor, conveyor.observability; print(sorted(m for m in ("
        "'prometheus_client', 'conveyor.observability.metrics', "
        "'conveyor.observability.tracing') if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_without_the_packages_the_rest_works_and_the_error_says_what_to_install() -> None:
    out = run(BLOCK + CHECK)
    assert "['CorrelationMiddleware', 'LoggingMiddleware', 'HistoryRecorder']" in out
    assert "metrics -> conveyor.observability.metrics needs prometheus-client" in out
    assert "pip install 'conveyor[metrics]'" in out
    assert "tracing -> conveyor.observability.tracing needs opentelemetry-api" in out
