"""s2v-toolkit as an OpenTimelineIO plugin: the toolkit's corrected readers/writers as OTIO adapters
(``s2v_fcp_xml``, ``s2v_fcpx_xml``, ``s2v_aaf``, ``s2v_cmx_3600``) and a media linker for versioned
renders (``s2v_render_linker``), so ``otiotool``/``otioconvert`` and other OTIO pipelines get the
same fixes. Registered through the ``opentimelineio.plugins`` entry point (pyproject.toml); OTIO
reads ``plugin_manifest.json`` beside this file.
"""

from pathlib import Path

MANIFEST_PATH = Path(__file__).with_name("plugin_manifest.json")
