"""OTIO adapter 's2v_cmx_3600': the toolkit's cmx_3600 reader/writer (s2v_toolkit.timeline.formats)."""

from s2v_toolkit.timeline.otio_plugin.delegate import read, write

FORMAT = "cmx_3600"


def read_from_file(filepath, **kwargs):
    return read(FORMAT, filepath, **kwargs)


def write_to_file(input_otio, filepath, **kwargs):
    write(FORMAT, input_otio, filepath, **kwargs)
