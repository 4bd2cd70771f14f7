"""Review panel (PySide6): compare renders with their originals, approve / reject, conform approved.

Public API::

    ReviewStore            # Protocol: list_jobs, set_decision, queue_rerender, conform_approved
    ReviewJob, Decision, FrameNote, DECISIONS (approved | rejected | needs_changes)
    ReviewFileStore(path)  # a store kept in a JSON review manifest; write_manifest(path, jobs, ...)
    open_store(path)       # manifest or RenderPlan (through the job store) -> ReviewStore
    run_review(path)       # open the window and run Qt's event loop (`s2vt review PLAN`)
    ReviewWindow(store)    # the window itself (s2v_toolkit.ui.window; imports PySide6)

The model, stores and ``open_store`` import no Qt; the widgets need the ``[ui]`` extra.
"""

from s2v_toolkit.ui.app import open_store, run_review
from s2v_toolkit.ui.file_store import ReviewFileStore, is_review_manifest, write_manifest
from s2v_toolkit.ui.model import (
    APPROVED, DECISIONS, NEEDS_CHANGES, REJECTED, Decision, FrameNote, ReviewError, ReviewJob, ReviewStore,
)

__all__ = [
    "APPROVED", "DECISIONS", "NEEDS_CHANGES", "REJECTED", "Decision", "FrameNote", "ReviewError", "ReviewFileStore",
    "ReviewJob", "ReviewStore", "is_review_manifest", "open_store", "run_review", "write_manifest",
]
