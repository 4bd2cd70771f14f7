"""The OpenAPI 3.1 description of the ``s2vt serve`` API (served at ``/openapi.json``).

Kept by hand beside the routes; tests check that every route of :data:`server.ROUTES` is here with
its method and operationId (and nothing else is), and validate real responses against these schemas.
``openapi.json`` beside this file is a copy for readers and client generators
(``s2vt serve --print-openapi > s2v_toolkit/serve/openapi.json``; a test keeps it current).
"""

from __future__ import annotations

from s2v_toolkit import __version__

_REF = "#/components/schemas/"


def _ref(name: str) -> dict:
    return {"$ref": _REF + name}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
}
_PROJECT_ERRORS = dict(_ERRORS, **{"404": {"$ref": "#/components/responses/NotFound"}})
_STEP_ERRORS = dict(_PROJECT_ERRORS, **{"409": {"$ref": "#/components/responses/Conflict"}})
_PROJECT_ID = {"name": "project_id", "in": "path", "required": True,
               "description": "Project id as returned by createProject.",
               "schema": {"type": "string", "pattern": "^p[0-9a-f]{12}$"}}

_NULLABLE_STR = {"type": ["string", "null"]}

SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "status", "message"], "properties": {
            "code": {"type": "string", "description": "Machine-readable reason, e.g. no_token, bad_token, "
                                                      "forbidden_path, bad_path, not_found, conflict."},
            "status": {"type": "integer"},
            "message": {"type": "string", "description": "One line for the editor: names the file or project."}}}},
    },
    "Progress": {
        "type": "object", "required": ["done", "total", "message"],
        "properties": {"done": {"type": "integer"}, "total": {"type": "integer"}, "message": {"type": "string"}},
    },
    "Task": {
        "type": "object", "required": ["state", "started", "finished", "error", "progress", "result"],
        "properties": {
            "state": {"enum": ["idle", "queued", "running", "done", "failed", "cancelled", "interrupted"]},
            "started": _NULLABLE_STR, "finished": _NULLABLE_STR, "error": _NULLABLE_STR,
            "progress": _ref("Progress"),
            "result": {"type": ["object", "null"], "description": "What the step returned (conform: outputs)."}},
    },
    "Project": {
        "type": "object",
        "required": ["id", "name", "created", "folder", "timeline", "cast", "plan", "tasks", "busy", "log"],
        "properties": {
            "id": {"type": "string", "pattern": "^p[0-9a-f]{12}$"},
            "name": {"type": "string"},
            "created": {"type": "string"},
            "folder": {"type": "string", "description": "The project's folder (plan, renders, conform, logs)."},
            "timeline": {"type": "string"}, "cast": _NULLABLE_STR,
            "plan": {"type": ["string", "null"], "description": "Plan file, once the plan step is done."},
            "plan_options": {"type": "object"}, "render_options": {"type": ["object", "null"]},
            "conform": {"type": ["object", "null"], "description": "Result of the last conform."},
            "tasks": {"type": "object", "required": ["plan", "render", "conform"], "properties": {
                "plan": _ref("Task"), "render": _ref("Task"), "conform": _ref("Task")}},
            "busy": {"type": ["string", "null"], "description": "The step running now, if any."},
            "log": {"type": "string"},
            "review_pid": {"type": ["integer", "null"]}},
    },
    "ProjectList": {"type": "object", "required": ["projects"],
                    "properties": {"projects": {"type": "array", "items": _ref("Project")}}},
    "CreateProject": {
        "type": "object", "required": ["timeline"], "additionalProperties": False,
        "properties": {
            "timeline": {"type": "string", "description": "Absolute path of the exported timeline (OTIO, FCP 7 "
                                                          "XML, FCPXML, AAF, EDL) inside an allowed folder."},
            "cast": {"type": ["string", "null"], "description": "Absolute path of the cast file (YAML/JSON)."},
            "name": {"type": "string", "maxLength": 200},
            "options": {"type": "object", "description": "Planning options passed to the service (jobs: "
                                                        "dialogue_tracks, face_check, backend (auto by default: "
                                                        "neural where its models are installed, else embedded), "
                                                        "num_speakers, turns: "
                                                        "a speaker-turns JSON/RTTM file inside an allowed folder, "
                                                        "search_dirs: folders inside the allowed ones to look for "
                                                        "media in (an EDL names its media, it has no paths), "
                                                        "rate: an EDL's frame rate, e.g. \"23.976\")."}},
    },
    "StepRequest": {
        "type": "object", "additionalProperties": False,
        "properties": {"options": {"type": "object", "description": "Render (jobs): model ('tiny' or the "
                                                                 "server's --model), retry_failed. Conform: native."}},
    },
    "TimelineFacts": {
        "type": "object", "required": ["rate", "start_frame", "duration_frames"],
        "properties": {"rate": {"type": "number"}, "rate_exact": {"type": "string"},
                       "start_frame": {"type": "integer", "description": "Record timecode of frame 0, in frames."},
                       "start_timecode": {"type": "string"}, "drop_frame": {"type": "boolean"},
                       "duration_frames": {"type": "integer"}},
    },
    "Job": {
        "type": "object",
        "required": ["id", "label", "action", "state", "reason", "record_in", "record_out", "output"],
        "properties": {
            "id": {"type": "string"}, "label": {"type": "string"},
            "action": {"enum": ["redub", "new_shot", "skip"]},
            "state": {"enum": ["pending", "running", "done", "failed", "skipped"]},
            "reason": {"type": "string"}, "character": {"type": "string"}, "line": {"type": "integer"},
            "record_in": {"type": "integer", "description": "First frame, counted from the timeline's first frame."},
            "record_out": {"type": "integer", "description": "Frame after the last one."},
            "record_tc": {"type": "array", "items": {"type": "string"}},
            "output": {"type": ["string", "null"], "description": "Rendered file once done."},
            "output_frames": {"type": ["integer", "null"]},
            "error": _NULLABLE_STR},
    },
    "Jobs": {"type": "object", "required": ["timeline", "jobs"],
             "properties": {"timeline": _ref("TimelineFacts"), "jobs": {"type": "array", "items": _ref("Job")}}},
    "LogChunk": {
        "type": "object", "required": ["offset", "next_offset", "size", "text"],
        "properties": {"offset": {"type": "integer"}, "next_offset": {"type": "integer"},
                       "size": {"type": "integer"}, "text": {"type": "string"}},
    },
    "CancelResult": {"type": "object", "required": ["cancelled", "project"],
                     "properties": {"cancelled": _NULLABLE_STR, "project": _ref("Project")}},
    "ReviewStarted": {"type": "object", "required": ["pid"], "properties": {"pid": {"type": "integer"}}},
    "ServerInfo": {
        "type": "object", "required": ["name", "version", "pid", "url", "workspace", "allowed_folders", "service"],
        "properties": {"name": {"const": "s2vt-serve"}, "version": {"type": "string"}, "pid": {"type": "integer"},
                       "url": {"type": "string"}, "started": {"type": "string"}, "workspace": {"type": "string"},
                       "allowed_folders": {"type": "array", "items": {"type": "string"}},
                       "service": {"type": "object"}, "projects": {"type": "integer"}},
    },
    "Plan": {"type": "object", "description": "The render plan document (schema s2v.plan, see docs/plan.md)."},
    "OpenApi": {"type": "object", "required": ["openapi", "paths"]},
}


def _op(op_id: str, summary: str, responses: dict, params=None, body=None, description: str = "") -> dict:
    op = {"operationId": op_id, "summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": _ref(body)}}}
    return op


PATHS = {
    "/openapi.json": {"get": _op("getOpenApi", "This document", dict(_ERRORS, **{"200": _json(_ref("OpenApi"), "OpenAPI 3.1")}))},
    "/v1/server": {"get": _op("getServer", "Server facts: version, workspace, allowed folders, service",
                              dict(_ERRORS, **{"200": _json(_ref("ServerInfo"), "Server facts")}))},
    "/v1/projects": {
        "get": _op("listProjects", "All projects", dict(_ERRORS, **{"200": _json(_ref("ProjectList"), "Projects")})),
        "post": _op("createProject", "Submit a timeline and a cast file; planning starts at once",
                    dict(_ERRORS, **{"202": _json(_ref("Project"), "Created; poll getProject until tasks.plan is done")}),
                    body="CreateProject",
                    description="The files must lie inside the server's allowed folders (403 otherwise). The "
                                "project folder, plan and all outputs are created inside the server's workspace."),
    },
    "/v1/projects/{project_id}": {"get": _op("getProject", "A project and the state of its steps",
                                             dict(_PROJECT_ERRORS, **{"200": _json(_ref("Project"), "Project")}),
                                             params=[_PROJECT_ID])},
    "/v1/projects/{project_id}/plan": {"get": _op("getPlan", "The plan document",
                                                  dict(_STEP_ERRORS, **{"200": _json(_ref("Plan"), "Plan")}),
                                                  params=[_PROJECT_ID])},
    "/v1/projects/{project_id}/jobs": {"get": _op(
        "getJobs", "Every job's state, record frames and rendered file",
        dict(_STEP_ERRORS, **{"200": _json(_ref("Jobs"), "Jobs")}), params=[_PROJECT_ID],
        description="What host plugins place: done jobs' outputs at record_in (+ timeline start_frame in "
                    "absolute frames); skipped jobs become markers.")},
    "/v1/projects/{project_id}/render": {"post": _op(
        "startRender", "Start (or resume) rendering in the background",
        dict(_STEP_ERRORS, **{"202": _json(_ref("Project"), "Started; poll getProject / getJobs")}),
        params=[_PROJECT_ID], body="StepRequest",
        description="The render goes on if the client disconnects. Finished jobs are not redone.")},
    "/v1/projects/{project_id}/conform": {"post": _op(
        "startConform", "Write finished renders onto new copies of the timeline",
        dict(_STEP_ERRORS, **{"202": _json(_ref("Project"), "Started; the result is in tasks.conform.result")}),
        params=[_PROJECT_ID], body="StepRequest")},
    "/v1/projects/{project_id}/cancel": {"post": _op(
        "cancelStep", "Ask the running step to stop (renders keep their finished jobs)",
        dict(_PROJECT_ERRORS, **{"200": _json(_ref("CancelResult"), "The step asked to stop, or null")}),
        params=[_PROJECT_ID])},
    "/v1/projects/{project_id}/log": {"get": _op(
        "getLog", "Read the project's log from a byte offset",
        dict(_PROJECT_ERRORS, **{"200": _json(_ref("LogChunk"), "Up to 64 KiB of log text")}),
        params=[_PROJECT_ID, {"name": "offset", "in": "query", "required": False,
                              "schema": {"type": "integer", "minimum": 0}}])},
    "/v1/projects/{project_id}/review": {"post": _op(
        "openReview", "Open the review panel (`s2vt review PLAN`) on this machine",
        dict(_STEP_ERRORS, **{"202": _json(_ref("ReviewStarted"), "Started")}), params=[_PROJECT_ID])},
}


def _error_response(description: str) -> dict:
    return _json(_ref("Error"), description)


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "s2v-toolkit local API (s2vt serve)", "version": __version__,
             "description": "Local API for host plugins (DaVinci Resolve, Premiere Pro). Listens on 127.0.0.1 "
                            "only; every request needs the per-session bearer token from the server's state "
                            "file (see docs/hosts.md)."},
    "servers": [{"url": "http://127.0.0.1:{port}", "variables": {"port": {"default": "8765"}}}],
    "security": [{"bearerToken": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearerToken": {"type": "http", "scheme": "bearer",
                                            "description": "The 'token' of the state file (mode 0600)."}},
        "schemas": SCHEMAS,
        "responses": {
            "BadRequest": _error_response("Bad body, option or file (the message names it)"),
            "Unauthorized": _error_response("Missing or wrong bearer token"),
            "Forbidden": _error_response("A file outside the allowed folders, or a foreign Host header"),
            "NotFound": _error_response("No such project"),
            "Conflict": _error_response("Another step is running, or the plan is not ready"),
        },
    },
}


def openapi_document(url: str | None = None) -> dict:
    """The document, with the running server's URL as its server entry when given."""
    import copy

    doc = copy.deepcopy(OPENAPI)
    if url:
        doc["servers"] = [{"url": url}]
    return doc
