"""The toolkit as an OTIO plugin: the manifest loads, and OTIO's own read_from_file with
adapter_name="s2v_fcp_xml" gets the toolkit's reader (a Premiere nested sequence is not lost)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.otio_plugin import MANIFEST_PATH

REPO = Path(__file__).resolve().parents[2]

XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<xmeml version="4"><sequence id="s"><name>cut</name>'
       "<rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate><media><video><track>"
       "<clipitem id=\"n\"><name>nest</name><start>0</start><end>50</end><in>10</in><out>60</out>"
       "<sequence id=\"inner\"><name>inner</name><rate><timebase>25</timebase></rate><media><video><track>"
       "<clipitem id=\"c\"><name>cam</name><start>0</start><end>100</end><in>0</in><out>100</out>"
       "<file id=\"f\"><name>cam.mov</name><pathurl>file://localhost/cam.mov</pathurl>"
       "<rate><timebase>25</timebase></rate><duration>100</duration></file></clipitem>"
       "</track></video></media></sequence></clipitem></track></video></media></sequence></xmeml>\n")


def test_manifest_declares_the_adapters_and_linker():
    manifest = otio.plugins.manifest.manifest_from_file(str(MANIFEST_PATH))
    assert {a.name for a in manifest.adapters} == {"s2v_fcp_xml", "s2v_fcpx_xml", "s2v_aaf", "s2v_cmx_3600"}
    assert [m.name for m in manifest.media_linkers] == ["s2v_render_linker"]
    for a in manifest.adapters:
        assert Path(a.module_abs_path()).is_file()
        assert {"read_from_file", "write_to_file"} <= set(a.module().__dict__)


def test_otio_reads_through_the_plugin_in_a_fresh_process(tmp_path):
    xml = tmp_path / "nested.xml"
    xml.write_text(XML)
    code = ("import opentimelineio as otio, sys\n"
            "tl = otio.adapters.read_from_file(sys.argv[1], adapter_name='s2v_fcp_xml')\n"
            "print([(c.name, c.parent().parent().source_range.start_time.value) for c in tl.find_clips()])\n")
    env = {**os.environ, "OTIO_PLUGIN_MANIFEST_PATH": str(MANIFEST_PATH),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, str(xml)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    # the clip inside the nested sequence is read (otio-fcp-adapter loses it), 10 frames into it
    assert out.stdout.strip() == "[('cam', 10.0)]"


def test_entry_point_registration_loads_the_manifest(tmp_path):
    """The way pip installs it: an ``opentimelineio.plugins`` entry point (a dist-info made here, so the
    check needs no install) naming the package that holds plugin_manifest.json."""
    dist = tmp_path / "site" / "s2v_plugin_probe-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: s2v-plugin-probe\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[opentimelineio.plugins]\ns2v_toolkit = s2v_toolkit.timeline.otio_plugin\n")
    xml = tmp_path / "nested.xml"
    xml.write_text(XML)
    code = ("import opentimelineio as otio, sys\n"
            "print(sorted(a.name for a in otio.plugins.ActiveManifest().adapters if a.name.startswith('s2v_')))\n"
            "tl = otio.adapters.read_from_file(sys.argv[1], adapter_name='s2v_fcp_xml')\n"
            "print([c.name for c in tl.find_clips()])\n")
    env = {k: v for k, v in os.environ.items() if k != "OTIO_PLUGIN_MANIFEST_PATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "site"), str(REPO), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code, str(xml)], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["['s2v_aaf', 's2v_cmx_3600', 's2v_fcp_xml', 's2v_fcpx_xml']", "['cam']"]


def test_pyproject_registers_the_entry_point():
    text = (REPO / "pyproject.toml").read_text()
    assert '[project.entry-points."opentimelineio.plugins"]' in text
    assert 's2v_toolkit = "s2v_toolkit.timeline.otio_plugin"' in text
    assert json.loads(MANIFEST_PATH.read_text())["OTIO_SCHEMA"] == "PluginManifest.1"


def test_render_linker_relinks_moved_renders_by_name(tmp_path):
    manifest = otio.plugins.manifest.manifest_from_file(str(MANIFEST_PATH))
    linker = manifest.media_linkers[0]
    renders = tmp_path / "moved" / "v001"
    renders.mkdir(parents=True)
    (renders / "SH010_job1.mov").write_bytes(b"x")
    clip = otio.schema.Clip(name="SH010 S2V v001", media_reference=otio.schema.ExternalReference(
        target_url="file:///gone/SH010_job1.mov"))
    clip.metadata["s2v_toolkit"] = {"media_path": "/gone/SH010_job1.mov", "version": 1}
    ref = linker.link_media_reference(clip, {"search_dirs": [str(tmp_path / "moved")]})
    assert ref.target_url == (renders / "SH010_job1.mov").resolve().as_uri()
    # an editor's clip (no s2v render metadata) is left alone
    other = otio.schema.Clip(name="x", media_reference=otio.schema.ExternalReference(target_url="file:///gone/a.mov"))
    assert linker.link_media_reference(other, {"search_dirs": [str(tmp_path)]}).target_url == "file:///gone/a.mov"
