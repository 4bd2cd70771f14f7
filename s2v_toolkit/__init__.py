"""s2v-toolkit: audio-driven re-dub and shot generation (Wan2.2-S2V) for post-production timelines.

The package is split into stages (see DESIGN.md): ``media`` (decode/encode), ``timeline`` (OTIO),
``diarization``, ``faces``, ``models`` (Wan S2V networks), ``pipelines``, ``jobs`` and ``ui``.
Each subpackage exposes its public API in its ``__init__``.
"""

__version__ = "0.1.0"

from s2v_toolkit.errors import S2VError

__all__ = ["S2VError", "__version__"]
