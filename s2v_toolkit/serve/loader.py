"""Pick the service behind the server: ``module:factory`` (``s2vt serve --service``)."""

from __future__ import annotations

from s2v_toolkit.dotted import import_dotted
from s2v_toolkit.errors import ConfigError
from s2v_toolkit.serve.service import Service

DEFAULT_SERVICE = "s2v_toolkit.serve.jobs_service:JobsService"


def load_service(spec: str = DEFAULT_SERVICE, **kwargs) -> Service:
    """Import ``module`` and call ``factory(**kwargs)``; it must return a :class:`Service`."""
    service = import_dotted(spec, "service")(**kwargs)
    if not isinstance(service, Service):
        raise ConfigError(f"service {spec!r}: did not return an s2v_toolkit.serve.Service")
    return service
