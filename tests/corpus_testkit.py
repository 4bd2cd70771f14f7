"""Where the real-material corpus lives, for corpus checks that skip cleanly without it.

The corpus (editors' exports, real footage, real speech made by other people) sits in ``../shared/corpus``
beside the repository, as in CI. ``S2VT_CORPUS`` points elsewhere; a git worktree falls back to
``/work/shared/corpus`` when present. Nothing from it is ever copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path | None:
    """The corpus folder, or ``None`` where it is absent."""
    candidates = []
    if os.environ.get("S2VT_CORPUS"):
        candidates.append(Path(os.environ["S2VT_CORPUS"]))
    candidates += [REPO.parent / "shared" / "corpus", Path("/work/shared/corpus")]
    for c in candidates:
        if (c / "README.md").is_file():
            return c
    return None


def corpus_files(sub: str, pattern: str = "*") -> list[Path]:
    """Files of one corpus subfolder (``timelines``, ``media``, ``audio``) matching ``pattern``; [] if absent."""
    root = corpus_dir()
    if root is None or not (root / sub).is_dir():
        return []
    return sorted(p for p in (root / sub).glob(pattern) if p.is_file())


needs_corpus = pytest.mark.skipif(corpus_dir() is None, reason="../shared/corpus is absent")


def corpus_params(sub: str, pattern: str = "*") -> list:
    """pytest parameters (one per corpus file, id = file name), or one skipped parameter where absent."""
    files = corpus_files(sub, pattern)
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no ../shared/corpus/{sub}/{pattern}"))]
    return [pytest.param(f, id=f.name) for f in files]
