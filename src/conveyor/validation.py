"""Checks on names, ids and payloads; each failure is a typed error naming the field."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from conveyor.errors import (
    InvalidJobData,
    InvalidJobId,
    InvalidJobOptions,
    InvalidQueueName,
    PayloadTooLarge,
)

MAX_QUEUE_NAME = 100
MAX_JOB_ID = 200
MAX_JOB_NAME = 200
MAX_DEPTH = 64
MAX_GROUP = 200

_QUEUE_FORBIDDEN = re.compile(r"[:{}*?\[\]\\\s\x00-\x1f\x7f]")
_ID_FORBIDDEN = re.compile(r"[:\x00-\x1f\x7f]")


def check_queue_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidQueueName("queue", f"must be a string, got {type(name).__name__}")
    if not name:
        raise InvalidQueueName("queue", "must not be empty")
    if len(name) > MAX_QUEUE_NAME:
        raise InvalidQueueName("queue", f"is {len(name)} characters; the limit is {MAX_QUEUE_NAME}")
    bad = _QUEUE_FORBIDDEN.search(name)
    if bad:
        raise InvalidQueueName(
            "queue",
            f"{name!r} contains {bad.group()!r}; use letters, digits, '-', '_' or '.' "
            "(no ':', braces, glob characters, whitespace or control characters)",
        )
    return name


def check_job_id(job_id: object) -> str:
    if not isinstance(job_id, str):
        raise InvalidJobId("job_id", f"must be a string, got {type(job_id).__name__}")
    if not job_id:
        raise InvalidJobId("job_id", "must not be empty")
    if len(job_id) > MAX_JOB_ID:
        raise InvalidJobId("job_id", f"is {len(job_id)} characters; the limit is {MAX_JOB_ID}")
    bad = _ID_FORBIDDEN.search(job_id)
    if bad:
        raise InvalidJobId(
            "job_id", f"contains {bad.group()!r}; ':' and control characters are not allowed"
        )
    return job_id


def check_group(group: object, field: str = "group") -> str:
    """A flow-control group: printable ASCII without '"' or '\\', so scripts can read it
    from the front of a job's spec without decoding the JSON."""
    if not isinstance(group, str):
        raise InvalidJobOptions(field, f"must be a string, got {type(group).__name__}")
    if not 1 <= len(group) <= MAX_GROUP:
        raise InvalidJobOptions(field, f"must be 1 to {MAX_GROUP} characters, got {len(group)}")
    bad = next((c for c in group if not " " <= c <= "~" or c in '"\\'), None)
    if bad is not None:
        raise InvalidJobOptions(
            field, f"contains {bad!r}; use printable ASCII without a quote or a backslash"
        )
    return group


def check_chunk_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidJobOptions("chunk_size", f"must be an integer >= 1, got {size!r}")
    return size


def check_job_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_JOB_NAME:
        raise InvalidJobData(
            "name", f"must be a non-empty string of at most {MAX_JOB_NAME} characters"
        )
    if _ID_FORBIDDEN.search(name):
        raise InvalidJobData("name", "must not contain ':' or control characters")
    return name


def _check_keys(mapping: dict[Any, Any], field: str) -> None:
    # json.dumps would turn 1 or 1.5 into "1" / "1.5": the handler would get other data.
    for key in mapping:
        if not isinstance(key, str):
            raise InvalidJobData(
                field,
                f"has a key {key!r} of type {type(key).__name__}; JSON object keys are strings",
            )


_SCALARS = (str, int, bool, type(None))
# A flat object's floats need no walk: the encoder refuses NaN and Infinity, and only then
# does the walk run, to say which value it was.
_FLAT = (*_SCALARS, float)


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encoding(value: Any) -> str:
    return "".join(_c_encode(value, 0))


# JSONEncoder.encode builds a C encoder on every call; one built once halves a small
# object's encoding time. No cycle check (markers=None): the walk bounds nesting first.
_c_make = getattr(json.encoder, "c_make_encoder", None)
if _c_make is not None:
    _c_encode = _c_make(None, _not_json, json.encoder.encode_basestring, None, ":", ",",
                        False, False, False)  # fmt: skip
    _encode: Callable[[Any], str] = _encoding
else:  # pragma: no cover - Python builds without the C accelerator
    _encode = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode


def _check_depth(value: Any, field: str) -> None:
    if type(value) in _SCALARS:
        return
    if type(value) is dict and all(type(k) is str and type(v) in _FLAT for k, v in value.items()):
        return  # the common flat object: nothing to walk
    _walk(value, field)


def _walk(value: Any, field: str) -> None:
    """Iterative walk: a recursive one would itself overflow on hostile nesting."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list | tuple):
            if depth > MAX_DEPTH:
                raise InvalidJobData(field, f"is nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                _check_keys(item, field)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidJobData(field, f"contains {item!r}; JSON has no NaN or Infinity")


def encode_json(value: Any, field: str, max_bytes: int) -> str:
    """Strict JSON (no NaN/Infinity, string keys) within ``max_bytes``; never pickle."""
    _check_depth(value, field)
    try:
        text: str = _encode(value)
    except (TypeError, ValueError) as exc:
        _walk(value, field)  # names a NaN or Infinity the flat path let through
        raise InvalidJobData(field, f"is not JSON-serialisable: {exc}") from None
    # UTF-8 takes at most 4 bytes a character: short texts need no encoding to be measured.
    size = len(text) if len(text) * 4 <= max_bytes else len(text.encode())
    if size > max_bytes:
        raise PayloadTooLarge(
            field, f"is {size} bytes as JSON; the limit is {max_bytes} (CONVEYOR_MAX_PAYLOAD_BYTES)"
        )
    return text
