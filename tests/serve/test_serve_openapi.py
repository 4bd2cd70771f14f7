"""The OpenAPI document: valid structure, every route documented (and only those), responses match it."""

from __future__ import annotations

import re

import jsonschema

from s2v_toolkit.serve import OPENAPI, ROUTES


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _resolve(ref: str):
    assert ref.startswith("#/"), ref
    node = OPENAPI
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_route_is_documented_and_nothing_else():
    documented = {(m.upper(), path, op["operationId"]) for path, ops in OPENAPI["paths"].items()
                  for m, op in ops.items()}
    served = {(r.method, r.pattern, r.operation_id) for r in ROUTES}
    assert documented == served
    op_ids = [op["operationId"] for ops in OPENAPI["paths"].values() for op in ops.values()]
    assert len(op_ids) == len(set(op_ids))


def test_structure_refs_and_parameters():
    assert OPENAPI["openapi"].startswith("3.1")
    assert OPENAPI["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    for ref in set(_refs(OPENAPI)):
        _resolve(ref)  # every $ref points at something
    for name, schema in OPENAPI["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema)
    for path, ops in OPENAPI["paths"].items():
        template_params = set(re.findall(r"{(\w+)}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == template_params, (method, path)
            assert "401" in op["responses"] and any(c.startswith("2") for c in op["responses"]), (method, path)


def _validator(api_path: str, method: str, status: int):
    op = OPENAPI["paths"][api_path][method.lower()]
    resp = op["responses"][str(status)]
    if "$ref" in resp:
        resp = _resolve(resp["$ref"])
    schema = dict(resp["content"]["application/json"]["schema"])
    schema["components"] = OPENAPI["components"]  # so "#/components/..." resolves inside the schema
    return jsonschema.Draft202012Validator(schema)


def test_served_document_and_real_responses_match_it(api, demo_copy):
    status, doc = api.get("/openapi.json")
    assert status == 200 and doc["paths"] == OPENAPI["paths"] and doc["servers"] == [{"url": api.url}]

    def check(method, template, status_code, body):
        errors = list(_validator(template, method, status_code).iter_errors(body))
        assert not errors, (method, template, status_code, [e.message for e in errors])

    status, body = api.get("/v1/server")
    check("GET", "/v1/server", status, body)
    status, body = api.post("/v1/projects", {"timeline": str(demo_copy / "scene.otio"),
                                             "cast": str(demo_copy / "cast.yaml")})
    check("POST", "/v1/projects", status, body)
    pid = body["id"]
    api.wait_step(pid, "plan")
    for template, method, payload in [
        ("/v1/projects", "GET", None), ("/v1/projects/{project_id}", "GET", None),
        ("/v1/projects/{project_id}/plan", "GET", None), ("/v1/projects/{project_id}/jobs", "GET", None),
        ("/v1/projects/{project_id}/log", "GET", None),
        ("/v1/projects/{project_id}/render", "POST", {"options": {"seconds_per_job": 0.4}}),
    ]:
        status, body = api.call(method, template.replace("{project_id}", pid), body=payload)
        check(method, template, status, body)
    status, body = api.post(f"/v1/projects/{pid}/conform")           # render still running: 409
    assert status == 409
    check("POST", "/v1/projects/{project_id}/conform", status, body)
    api.wait_step(pid, "render")
    status, body = api.post(f"/v1/projects/{pid}/cancel")
    check("POST", "/v1/projects/{project_id}/cancel", status, body)
    status, body = api.post(f"/v1/projects/{pid}/conform")
    check("POST", "/v1/projects/{project_id}/conform", status, body)
    api.wait_step(pid, "conform")
    status, body = api.get(f"/v1/projects/{pid}")
    check("GET", "/v1/projects/{project_id}", status, body)
    status, body = api.post(f"/v1/projects/{pid}/review")
    check("POST", "/v1/projects/{project_id}/review", status, body)
    status, body = api.get("/v1/projects/p000000000000")
    check("GET", "/v1/projects/{project_id}", status, body)
    status, body = api.get("/v1/server", token=None)
    check("GET", "/v1/server", status, body)
    status, body = api.post("/v1/projects", {"timeline": "/etc/passwd"})
    check("POST", "/v1/projects", status, body)


def test_the_json_copy_in_the_repo_is_current():
    """s2v_toolkit/serve/openapi.json is for readers and client generators; regenerate it with
    `s2vt serve --print-openapi > s2v_toolkit/serve/openapi.json`."""
    import json
    from pathlib import Path

    import s2v_toolkit.serve as serve

    copy = json.loads((Path(serve.__file__).with_name("openapi.json")).read_text())
    assert copy == OPENAPI
