"""Resolving ``package.module:name`` strings (user-chosen generators, services) with clear errors."""

from __future__ import annotations

import importlib

from s2v_toolkit.errors import ConfigError


def import_dotted(spec: str, what: str):
    """The object named by ``spec`` (``package.module:name``); ``what`` names it in error messages."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} {spec!r}: write it as package.module:name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {spec!r}: cannot import {module_name} ({exc})") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise ConfigError(f"{what} {spec!r}: {module_name} has no {attr}")
    return obj
