"""OTIO adapter 's2v_fcp_xml': the toolkit's fcp_xml reader/writer (s2v_toolkit.timeline.formats)."""

from s2v_toolkit.timeline.otio_plugin.delegate import read, write

FORMAT = "fcp_xml"


def read_from_file(filepath, **kwargs):
    return read(FORMAT, filepath, **kwargs)


def write_to_file(input_otio, filepath, **kwargs):
    write(FORMAT, input_otio, filepath, **kwargs)
