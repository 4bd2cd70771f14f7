"""Pick the service behind the server: ``module:factory`` (``s2vt serve --service``)."""

from __future__ import annotations

import importlib

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.serve.service import Service

DEFAULT_SERVICE = "s2v_toolkit.serve.jobs_service:JobsService"


def load_service(spec: str = DEFAULT_SERVICE, **kwargs) -> Service:
    """Import ``module`` and call ``factory(**kwargs)``; it must return a :class:`Service`."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"service {spec!r}: write it as package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"service {spec!r}: cannot import {module_name} ({exc})") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ConfigError(f"service {spec!r}: {module_name} has no {attr}")
    service = factory(**kwargs)
    if not isinstance(service, Service):
        raise ConfigError(f"service {spec!r}: {attr} did not return an s2v_toolkit.serve.Service")
    return service
