"""jobs stage: cast file, render plan, job store, runners (in-process, Ray) and conform of the results.

Public API (see docs/plan.md)::

    load_cast(path) -> Cast ; parse_cast(data, path) ; Cast / Character ; CastError
    build_plan(timeline, cast, turns=None, face_check=True, ...) -> RenderPlan   # not saved: plan.save(path)
    RenderPlan / ShotJob / DialogueLine ; load_plan(path) ; validate_plan(plan, cast_ids) ; PlanError
    JobStore(path) ; store_path_for(plan_path) ; JobRecord ; STATES
    Generator (Protocol: render(JobInputs, out_path) -> dict) ; JobInputs ; GeneratorSpec ; load_generator(spec)
    render_plan(plan, generator=None, spec=None, workers=1, retry_failed=False) -> RenderSummary
    render_plan_ray(plan, spec, address=None, ...) -> RenderSummary      # needs the optional `ray` extra
    conform_plan(plan, out=None) -> ConformResult
"""

from s2v_toolkit.jobs.cast import CAST_SCHEMA_VERSION, Cast, CastError, Character, load_cast, parse_cast
from s2v_toolkit.jobs.conform import conform_plan, render_results
from s2v_toolkit.jobs.generator import (
    Generator, GeneratorSpec, GeneratorUnavailable, JobInputs, UnavailableGenerator, load_generator,
)
from s2v_toolkit.jobs.plan import (
    ACTIONS, PLAN_SCHEMA, PLAN_SCHEMA_VERSION, DialogueLine, PlanError, RenderPlan, ShotJob, job_problem, load_plan,
    stable_job_id, validate_plan,
)
from s2v_toolkit.jobs.planner import FaceChecker, FaceVerdict, ShotContext, build_plan, lines_from_turns
from s2v_toolkit.jobs.ray_runner import RayUnavailable, render_plan_ray
from s2v_toolkit.jobs.runner import (
    JobOutcome, RenderContext, RenderSummary, execute_job, format_table, render_plan, renders_dir, worker_loop,
)
from s2v_toolkit.jobs.store import STATES, JobRecord, JobStore, StoreError, new_worker_id, store_path_for

__all__ = [
    "ACTIONS", "CAST_SCHEMA_VERSION", "PLAN_SCHEMA", "PLAN_SCHEMA_VERSION", "STATES",
    "Cast", "CastError", "Character", "DialogueLine", "FaceChecker", "FaceVerdict", "Generator", "GeneratorSpec",
    "GeneratorUnavailable", "JobInputs", "JobOutcome", "JobRecord", "JobStore", "PlanError", "RayUnavailable",
    "RenderContext", "RenderPlan", "RenderSummary", "ShotContext", "ShotJob", "StoreError", "UnavailableGenerator",
    "build_plan", "conform_plan", "execute_job", "format_table", "job_problem", "lines_from_turns", "load_cast",
    "load_generator", "load_plan", "new_worker_id", "parse_cast", "render_plan", "render_plan_ray",
    "render_results", "renders_dir", "stable_job_id", "store_path_for", "validate_plan", "worker_loop",
]
