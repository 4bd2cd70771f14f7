"""``s2vt serve``: the local HTTP API that the Resolve script and the Premiere panel talk to.

Built on the standard library's :class:`http.server.ThreadingHTTPServer` (no web framework to
install inside editors' machines; the API is a dozen JSON routes). Security, in order of checks:

* it listens on 127.0.0.1 only, and refuses a connection from any other address;
* the ``Host`` header must name 127.0.0.1 or localhost at its port (a web page that rebinds its DNS
  name to 127.0.0.1 still sends its own name);
* every request, ``/openapi.json`` included, needs ``Authorization: Bearer <token>``; the token is
  made per session and written only to the 0600 state file; it is compared in constant time;
* files named in requests must lie inside the allowed folders; the server writes only inside the
  project folders it creates (see :mod:`s2v_toolkit.serve.paths`);
* bodies are JSON, at most 1 MiB; idle connections time out.

Long steps run on the server's worker threads (:mod:`s2v_toolkit.serve.projects`), so a client that
disconnects does not stop them. The API is described by :data:`s2v_toolkit.serve.openapi.OPENAPI`,
served at ``/openapi.json``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from s2v_toolkit import __version__
from s2v_toolkit.errors import S2VError
from s2v_toolkit.serve.paths import BadPath, ForbiddenPath, PathPolicy
from s2v_toolkit.serve.projects import Conflict, NotFound, ProjectManager
from s2v_toolkit.serve.service import Service
from s2v_toolkit.serve.state import new_token, remove_state_file, write_state_file

HOST = "127.0.0.1"
MAX_BODY = 1 << 20
LOG_CHUNK = 64 * 1024
REQUEST_TIMEOUT_S = 30
MAX_JSON_DEPTH = 32        # request bodies are shallow; deeper ones are refused (400), never parsed into a 500
LISTEN_BACKLOG = 256       # connections the kernel queues while the handlers are busy (a burst is not reset)
MAX_HANDLERS = 64          # requests handled at once; more wait in the listen queue
ID = r"(?P<project_id>[^/]+)"
PATH_OPTIONS = ("turns",)   # planning options that name files
FOLDER_LIST_OPTIONS = ("search_dirs",)   # planning options that name folders (where media is looked for)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str          # OpenAPI path template, e.g. /v1/projects/{project_id}
    handler: str          # method name on the request handler
    operation_id: str

    @property
    def regex(self) -> re.Pattern:
        return re.compile("^" + self.pattern.replace("{project_id}", ID) + "$")


ROUTES = (
    Route("GET", "/openapi.json", "get_openapi", "getOpenApi"),
    Route("GET", "/v1/server", "get_server", "getServer"),
    Route("GET", "/v1/projects", "list_projects", "listProjects"),
    Route("POST", "/v1/projects", "create_project", "createProject"),
    Route("GET", "/v1/projects/{project_id}", "get_project", "getProject"),
    Route("GET", "/v1/projects/{project_id}/plan", "get_plan", "getPlan"),
    Route("GET", "/v1/projects/{project_id}/jobs", "get_jobs", "getJobs"),
    Route("POST", "/v1/projects/{project_id}/render", "start_render", "startRender"),
    Route("POST", "/v1/projects/{project_id}/conform", "start_conform", "startConform"),
    Route("POST", "/v1/projects/{project_id}/cancel", "cancel_step", "cancelStep"),
    Route("GET", "/v1/projects/{project_id}/log", "get_log", "getLog"),
    Route("POST", "/v1/projects/{project_id}/review", "open_review", "openReview"),
)


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, code: str, message: str):
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


def _is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG
    # Rebinding a fixed --port right after a restart needs SO_REUSEADDR on POSIX (it never lets two
    # servers listen on one port there); on Windows the same flag would let another program take the port.
    allow_reuse_address = os.name != "nt"

    def __init__(self, port: int, token: str, manager: ProjectManager):
        self.token = token
        self.manager = manager
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.handler_slots = threading.BoundedSemaphore(MAX_HANDLERS)
        super().__init__((HOST, port), ApiHandler)

    def process_request(self, request, client_address):
        # At most MAX_HANDLERS threads: the accept loop waits for a free slot, and further connections
        # wait in the listen queue (LISTEN_BACKLOG) instead of being reset or each costing a thread.
        self.handler_slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.handler_slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.handler_slots.release()

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def verify_request(self, request, client_address) -> bool:
        # Belt and braces: the socket is bound to 127.0.0.1, but never talk to anyone else.
        return _is_loopback(str(client_address[0]))


class ApiHandler(BaseHTTPRequestHandler):
    server: ApiServer
    server_version = f"s2vt-serve/{__version__}"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format, *args):  # quiet by default; S2VT_SERVE_ACCESS_LOG=1 to see requests
        if os.environ.get("S2VT_SERVE_ACCESS_LOG"):
            super().log_message(format, *args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _send_json(self, status: int, body) -> None:
        data = (json.dumps(body, indent=1, default=str) + "\n").encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away; whatever it started goes on in the background.
            self.close_connection = True

    def _error(self, status: HTTPStatus, code: str, message: str) -> None:
        # A refused request may leave its body unread: end the connection rather than parse that body
        # as the next request.
        self.close_connection = True
        self._send_json(int(status), {"error": {"code": code, "status": int(status), "message": message}})

    def _check_host(self) -> None:
        host = (self.headers.get("Host") or "").strip().lower()
        allowed = {f"127.0.0.1:{self.server.port}", f"localhost:{self.server.port}"}
        if host not in allowed:
            raise ApiError(HTTPStatus.FORBIDDEN, "bad_host",
                           f"Host header {host!r} is not this server (use 127.0.0.1:{self.server.port})")

    def _check_token(self) -> None:
        header = self.headers.get("Authorization") or ""
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(HTTPStatus.UNAUTHORIZED, "no_token",
                           "missing 'Authorization: Bearer <token>' (the token is in the server's state file)")
        if not hmac.compare_digest(given.strip().encode("utf-8"), self.server.token.encode("utf-8")):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "bad_token", "wrong token (did the server restart?)")

    def _body(self) -> dict:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_body", "send the body with Content-Length, not chunked")
        if not length:
            return {}
        try:
            n = int(length)
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_body", "bad Content-Length") from None
        if n < 0 or n > MAX_BODY:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too_large", f"body over {MAX_BODY} bytes")
        raw = self.rfile.read(n)
        if not raw.strip():
            return {}
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "not_json", "send the body as application/json")
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_json", f"body is not valid JSON ({exc})") from None
        except RecursionError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_json", "body is nested too deeply") from None
        if _depth_over(body, MAX_JSON_DEPTH):
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_json", f"body is nested more than {MAX_JSON_DEPTH} levels")
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_json", "body must be a JSON object")
        return body

    def _dispatch(self, method: str) -> None:
        try:
            self._check_host()
            self._check_token()
            parts = urlsplit(self.path)
            path = parts.path
            match, allowed = None, []
            for route in ROUTES:
                m = route.regex.match(path)
                if m:
                    allowed.append(route.method)
                    if route.method == method:
                        match = (route, m.groupdict())
            if match is None:
                # Drain a body we will not read, so a keep-alive connection stays in step.
                self._discard_body()
                if allowed:
                    raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                                   f"{method} {path}: use {', '.join(sorted(set(allowed)))}")
                raise ApiError(HTTPStatus.NOT_FOUND, "not_found", f"no route {path}")
            route, params = match
            if method == "POST":
                body = self._body()
            else:
                self._discard_body()
                body = {}
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            status, result = getattr(self, route.handler)(body=body, query=query, **params)
            self._send_json(status, result)
        except ApiError as exc:
            self._error(exc.status, exc.code, exc.message)
        except ForbiddenPath as exc:
            self._error(HTTPStatus.FORBIDDEN, "forbidden_path", str(exc))
        except BadPath as exc:
            self._error(HTTPStatus.BAD_REQUEST, "bad_path", str(exc))
        except NotFound as exc:
            self._error(HTTPStatus.NOT_FOUND, "not_found", str(exc))
        except Conflict as exc:
            self._error(HTTPStatus.CONFLICT, "conflict", str(exc))
        except S2VError as exc:
            self._error(HTTPStatus.BAD_REQUEST, "bad_request", str(exc))
        except Exception as exc:  # a bug: answer 500 and keep serving
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal", f"{type(exc).__name__}: {exc}")

    def _discard_body(self) -> None:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = 0
        if 0 < n <= MAX_BODY:
            self.rfile.read(n)
        elif n:
            self.close_connection = True

    # ------------------------------------------------------------------ routes
    def get_openapi(self, body, query):
        from s2v_toolkit.serve.openapi import openapi_document

        return 200, openapi_document(self.server.url)

    def get_server(self, body, query):
        mgr = self.server.manager
        return 200, {"name": "s2vt-serve", "version": __version__, "pid": os.getpid(), "url": self.server.url,
                     "started": self.server.started, "workspace": str(mgr.policy.workspace),
                     "allowed_folders": [str(r) for r in mgr.policy.roots], "service": mgr.service.describe(),
                     "projects": len(mgr.list())}

    def list_projects(self, body, query):
        return 200, {"projects": [p.to_dict() for p in self.server.manager.list()]}

    def create_project(self, body, query):
        mgr = self.server.manager
        _only_keys(body, {"timeline", "cast", "name", "options"})
        timeline = mgr.policy.input_file(body.get("timeline"), "timeline")
        cast = mgr.policy.input_file(body["cast"], "cast") if body.get("cast") is not None else None
        name = body.get("name") or ""
        if not isinstance(name, str) or len(name) > 200:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "'name' must be text (at most 200 characters)")
        options = _options(body)
        for key in PATH_OPTIONS:
            if options.get(key) is not None:  # files named inside options obey the same folder rule
                options[key] = str(mgr.policy.input_file(options[key], f"options.{key}"))
        for key in FOLDER_LIST_OPTIONS:
            if options.get(key) is not None:
                folders = options[key]
                if not isinstance(folders, list):
                    raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", f"'options.{key}' must be a list of folders")
                options[key] = [str(mgr.policy.input_folder(f, f"options.{key}[{i}]")) for i, f in enumerate(folders)]
        if options.get("rate") is not None:  # an EDL's rate: the media the plan finds depends on it
            from s2v_toolkit.timeline.timecode import parse_rate

            try:
                options["rate"] = parse_rate(options["rate"])
            except (TypeError, ValueError) as exc:
                raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", f"'options.rate': {exc}") from None
        mgr.policy.check_referenced(timeline, cast, tuple(options.get("search_dirs") or ()), options.get("rate"))
        project = mgr.create(timeline, cast, name, options)
        return 202, project.to_dict()

    def get_project(self, body, query, project_id):
        return 200, self.server.manager.get(project_id).to_dict()

    def get_plan(self, body, query, project_id):
        project = self.server.manager.get(project_id)
        if not project.plan_path or not project.plan_path.is_file():
            raise Conflict(f"project {project_id}: no plan yet")
        return 200, json.loads(project.plan_path.read_text(encoding="utf-8"))

    def get_jobs(self, body, query, project_id):
        mgr = self.server.manager
        return 200, mgr.jobs(mgr.get(project_id))

    def start_render(self, body, query, project_id):
        mgr = self.server.manager
        _only_keys(body, {"options"})
        project = mgr.get(project_id)
        # the timeline or cast may have been edited since the project was made: check what they point at now
        mgr.policy.check_referenced(Path(project.record["timeline"]),
                                    Path(project.record["cast"]) if project.record.get("cast") else None)
        mgr.start(project, "render", _options(body))
        return 202, project.to_dict()

    def start_conform(self, body, query, project_id):
        mgr = self.server.manager
        _only_keys(body, {"options"})
        project = mgr.get(project_id)
        mgr.start(project, "conform", _options(body))
        return 202, project.to_dict()

    def cancel_step(self, body, query, project_id):
        mgr = self.server.manager
        project = mgr.get(project_id)
        return 200, {"cancelled": mgr.cancel(project), "project": project.to_dict()}

    def get_log(self, body, query, project_id):
        project = self.server.manager.get(project_id)
        try:
            offset = int(query.get("offset", 0))
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "'offset' must be an integer") from None
        if offset < 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "'offset' must be >= 0")
        size = project.log_path.stat().st_size if project.log_path.exists() else 0
        data = b""
        if offset < size:
            with open(project.log_path, "rb") as f:
                f.seek(offset)
                data = f.read(LOG_CHUNK)
        return 200, {"offset": offset, "next_offset": offset + len(data), "size": size,
                     "text": data.decode("utf-8", errors="replace")}

    def open_review(self, body, query, project_id):
        mgr = self.server.manager
        pid = mgr.open_review(mgr.get(project_id))
        return 202, {"pid": pid}


def _depth_over(value, limit: int) -> bool:
    """Whether JSON ``value`` nests deeper than ``limit`` (iterative: no recursion limit to hit)."""
    stack = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            if d > limit:
                return True
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def _only_keys(body: dict, keys: set[str]) -> None:
    extra = sorted(set(body) - keys)
    if extra:
        raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request",
                       f"unknown field(s) {', '.join(extra)} (known: {', '.join(sorted(keys))})")


def _options(body: dict) -> dict:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ApiError(HTTPStatus.BAD_REQUEST, "bad_request", "'options' must be a JSON object")
    return options


# ---------------------------------------------------------------------- running
class RunningServer:
    """A started server: its URL and token, the thread serving it, and a clean stop."""

    def __init__(self, httpd: ApiServer, state_file: Path | None):
        self.httpd = httpd
        self.state_file = state_file
        self.thread: threading.Thread | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        return self.httpd.url

    @property
    def token(self) -> str:
        return self.httpd.token

    @property
    def manager(self) -> ProjectManager:
        return self.httpd.manager

    def serve_in_thread(self) -> "RunningServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                       name="s2vt-serve", daemon=True)
        self.thread.start()
        return self

    def stop(self, wait: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()
        self.manager.shutdown(wait)
        if self.state_file is not None:
            remove_state_file(self.state_file, self.token)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_server(service: Service, workspace: str | os.PathLike, allowed: list[str | os.PathLike],
                 port: int = 0, state_file: str | os.PathLike | None = None, token: str | None = None) -> RunningServer:
    """Bind 127.0.0.1:``port`` (0: a free port), write the state file, return the (not yet serving)
    server; call ``serve_in_thread()`` to serve and ``stop()`` to end."""
    from s2v_toolkit.errors import ConfigError

    # Each start-up step names what failed: the workspace, the port or the state file (not all "the port").
    try:
        policy = PathPolicy(roots=[Path(a) for a in allowed], workspace=Path(workspace))
        manager = ProjectManager(service, policy)
    except OSError as exc:
        raise ConfigError(f"workspace {workspace}: cannot use it ({exc.strerror or exc}"
                          f"{': ' + str(exc.filename) if getattr(exc, 'filename', None) else ''})") from None
    try:
        httpd = ApiServer(int(port), token or new_token(), manager)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {HOST}:{port} ({exc.strerror or exc})") from None
    written = None
    if state_file is not None:
        try:
            written = write_state_file(state_file, {
                "url": httpd.url, "host": HOST, "port": httpd.port, "token": httpd.token, "pid": os.getpid(),
                "started": httpd.started, "version": __version__, "workspace": str(policy.workspace)})
        except OSError as exc:
            httpd.server_close()
            raise ConfigError(f"state file {state_file}: cannot write it ({exc.strerror or exc})") from None
    return RunningServer(httpd, written)
