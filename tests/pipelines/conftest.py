"""Fixtures shared by the generation tests: the tiny random-weight checkpoint and a reference image."""

from __future__ import annotations

import numpy as np
import pytest

from s2v_toolkit.media import write_png
from s2v_toolkit.pipelines.checkpoint_bundle import build_tiny_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The tiny S2V checkpoint in the official folder layout (random weights), one per test module."""
    return build_tiny_bundle(tmp_path_factory.mktemp("tiny_bundle"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A random 100x80 RGB reference image (PNG)."""
    path = tmp_path_factory.mktemp("ref") / "ref.png"
    write_png(path, np.random.default_rng(0).integers(0, 256, (80, 100, 3), dtype=np.uint8))
    return path
