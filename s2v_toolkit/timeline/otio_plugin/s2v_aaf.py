"""OTIO adapter 's2v_aaf': the toolkit's AAF reader/writer (s2v_toolkit.timeline.formats)."""

from s2v_toolkit.timeline.otio_plugin.delegate import read, write

FORMAT = "AAF"


def read_from_file(filepath, **kwargs):
    return read(FORMAT, filepath, **kwargs)


def write_to_file(input_otio, filepath, **kwargs):
    write(FORMAT, input_otio, filepath, **kwargs)
