"""Local HTTP API for host plugins (``s2vt serve``): Resolve script, Premiere panel, scripts.

Public API::

    start_server(service, workspace, allowed, port=0, state_file=None) -> RunningServer
        # bound to 127.0.0.1; .serve_in_thread(), .url, .token, .stop()
    Service (ABC: plan / jobs / render / conform / review_command), TaskContext, TaskCancelled
    JobsService(default_model=None, default_checkpoint=None)   # the jobs stage behind the API
    load_service("module:factory", **kwargs) -> Service
    PathPolicy, ForbiddenPath, BadPath                         # which files requests may name
    state_dir(), default_state_file(), read_state_file(path), write_state_file(path, info), StateFileError
    OPENAPI, openapi_document(url), ROUTES

See docs/hosts.md for the API walk-through and the plugins.
"""

from s2v_toolkit.serve.openapi import OPENAPI, openapi_document
from s2v_toolkit.serve.paths import BadPath, ForbiddenPath, PathPolicy
from s2v_toolkit.serve.service import JOB_STATES, Service, TaskCancelled, TaskContext
from s2v_toolkit.serve.server import HOST, ROUTES, RunningServer, start_server
from s2v_toolkit.serve.state import (
    StateFileError, default_state_file, read_state_file, remove_state_file, state_dir, write_state_file,
)
from s2v_toolkit.serve.loader import DEFAULT_SERVICE, load_service

__all__ = [
    "DEFAULT_SERVICE", "HOST", "JOB_STATES", "OPENAPI", "ROUTES",
    "BadPath", "ForbiddenPath", "PathPolicy", "RunningServer", "Service", "StateFileError", "TaskCancelled",
    "TaskContext", "default_state_file", "load_service", "openapi_document", "read_state_file",
    "remove_state_file", "start_server", "state_dir", "write_state_file",
]
