"""Finding the user's handlers from a ``module:attribute`` path."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

import click


def load_handlers(path: str) -> Mapping[str, Any]:
    """``path`` names a mapping of job name -> handler, or a function returning one."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise click.BadParameter(f"{path!r} is not of the form 'package.module:attribute'")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(f"cannot import {module_name!r}: {exc}") from exc
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise click.BadParameter(f"{module_name!r} has no attribute {attribute!r}")
        target = getattr(target, part)
    if callable(target) and not isinstance(target, Mapping):
        target = target()
    if not isinstance(target, Mapping) or not target:
        raise click.BadParameter(f"{path!r} must be a non-empty mapping of job name to handler")
    return target
