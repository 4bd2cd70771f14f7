"""Text helpers shared by the FCPXML write-back tests (unit tests and the corpus check): what a conform
adds to an FCPXML document, removed again, so the rest can be compared with the input byte for byte."""

from __future__ import annotations

import re

__all__ = ["collapse", "strip_additions_text"]


def strip_additions_text(text: str) -> str:
    """The output's text without the conform's additions (assets s2v<N>r<M>, clips using them, S2V markers)."""
    text = re.sub(r'\n[ \t]*<asset id="s2v\d+r\d+x*"(?:"[^"]*"|[^">])*?(?:/>|>.*?</asset>)', "", text, flags=re.S)
    text = re.sub(r'\n[ \t]*<asset-clip ref="s2v\d+r\d+x*".*?</asset-clip>', "", text, flags=re.S)
    text = re.sub(r'\n[ \t]*<clip lane="\d+"[^>]*><video ref="s2v\d+r\d+x*".*?</clip>', "", text, flags=re.S)
    text = re.sub(r'\n[ \t]*<marker [^>]*value="S2V v\d+[^"]*"[^>]*/>', "", text)
    return text


def collapse(text: str) -> str:
    """Empty elements written open and closed, as self-closing (an element that only got children from
    the conform is opened up: <gap .../> -> <gap ...>...</gap>)."""
    return re.sub(r'<([\w-]+)((?:"[^"]*"|[^">/])*)>\n[ \t]*</\1>', r'<\1\2/>', text)
