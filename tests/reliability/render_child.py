"""Child process of the kill tests: render a plan with the tiny model and log every clip it saves.

``python render_child.py PLAN LOG [INFER_FRAMES]``: each finished clip appends ``saved N`` to LOG, and
a resumed job appends ``resumed K`` (K clips taken from the killed run's parts).
"""

import sys
from pathlib import Path

plan_path, log_path = sys.argv[1], sys.argv[2]
infer = int(sys.argv[3]) if len(sys.argv) > 3 else 8

from s2v_toolkit.jobs import GeneratorSpec, load_plan, render_plan  # noqa: E402
from s2v_toolkit.pipelines import clip_store  # noqa: E402


def _log(text: str) -> None:
    with open(log_path, "a") as fh:
        fh.write(text + "\n")
        fh.flush()


_save, _load = clip_store.ClipStore.save, clip_store.ClipStore.load


def save(self, index, *args, **kwargs):
    _save(self, index, *args, **kwargs)
    _log(f"saved {index}")


def load(self, seed):
    clips = _load(self, seed)
    _log(f"resumed {len(clips)}")
    return clips


clip_store.ClipStore.save, clip_store.ClipStore.load = save, load
spec = GeneratorSpec(model="tiny", options=(("infer_frames", infer), ("steps", 1)))
summary = render_plan(load_plan(Path(plan_path)), spec=spec)
_log("done " + ",".join(r.state for r in summary.records))
