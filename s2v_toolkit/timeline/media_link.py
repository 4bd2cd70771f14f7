"""Finding each clip's media on disk: URLs, relative paths, search folders, offline media."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from s2v_toolkit.timeline.timecode import Span

# status values (stable, part of the inspect JSON)
OK = "ok"                      # file found
MISSING = "missing"            # reference names a file that is not found
OFFLINE = "offline"            # the editor's app had no media for it (OTIO MissingReference)
NO_REFERENCE = "no_reference"  # the clip carries no media reference at all
GENERATOR = "generator"        # generated content (bars, slug, titles): nothing to find


@dataclass
class MediaLink:
    """Where a clip's media is (or why it is not)."""

    status: str
    reference_kind: str | None = None        # ExternalReference, MissingReference, ...
    url: str | None = None                   # as written in the timeline
    path: str | None = None                  # resolved file on this machine (when found)
    found_by: str | None = None              # "as written", "relative to timeline", "search folder"
    available_range: Span | None = None      # the media's range as the timeline knows it
    reference_keys: list[str] = field(default_factory=list)  # all media references (multi-reference clips)
    active_key: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "exists": self.exists,
            "reference_kind": self.reference_kind,
            "url": self.url,
            "path": self.path,
            "found_by": self.found_by,
            "available_range": self.available_range.to_dict() if self.available_range else None,
            "reference_keys": list(self.reference_keys),
            "active_key": self.active_key,
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "MediaLink":
        return cls(
            status=d["status"], reference_kind=d.get("reference_kind"), url=d.get("url"),
            path=d.get("path"), found_by=d.get("found_by"),
            available_range=Span.from_dict(d["available_range"]) if d.get("available_range") else None,
            reference_keys=list(d.get("reference_keys", [])), active_key=d.get("active_key"),
            problems=list(d.get("problems", [])),
        )


def url_to_path(url: str) -> str:
    """Local path text of a media URL: ``file://localhost/C%3a/x.mov`` -> ``C:/x.mov``."""
    if re.match(r"^[a-zA-Z]:[\\/]", url):  # a Windows path, not a URL with scheme "c"
        return url
    parsed = urlparse(url)
    if parsed.scheme in ("file", ""):
        text = unquote(parsed.path if parsed.scheme else url)
        if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
            text = f"//{parsed.netloc}{text}"  # UNC share
        if re.match(r"^/[a-zA-Z]:[\\/]", text):
            text = text[1:]
        return text
    return url


class MediaResolver:
    """Resolves media references against the timeline's folder and user search folders."""

    def __init__(self, timeline_dir: str | os.PathLike | None = None,
                 search_dirs: tuple[str | os.PathLike, ...] | list = ()):
        self.timeline_dir = Path(timeline_dir) if timeline_dir else None
        self.search_dirs = [Path(d) for d in search_dirs]
        self._index: dict[str, list[Path]] | None = None

    def _name_index(self) -> dict[str, list[Path]]:
        # One walk of the search folders, by lower-case file name: media moved between machines
        # keeps its name far more often than its folder.
        if self._index is None:
            self._index = {}
            for root in self.search_dirs:
                for dirpath, _dirs, files in os.walk(root):
                    for f in files:
                        self._index.setdefault(f.lower(), []).append(Path(dirpath) / f)
        return self._index

    def find(self, text: str) -> tuple[Path | None, str | None]:
        is_windows = bool(re.match(r"^[a-zA-Z]:[\\/]", text)) or "\\" in text
        pure = PureWindowsPath(text) if is_windows else PurePosixPath(text)
        if not is_windows:
            p = Path(text)
            if p.is_absolute() and p.is_file():
                return p, "as written"
            if not p.is_absolute() and self.timeline_dir and (self.timeline_dir / p).is_file():
                return self.timeline_dir / p, "relative to timeline"
        parts = [x for x in pure.parts if x not in ("/", "\\") and not x.endswith(":\\") and not x.endswith(":")]
        for root in self.search_dirs:
            # the longest tail of the written path that exists under the search folder
            for i in range(len(parts)):
                cand = root.joinpath(*parts[i:])
                if cand.is_file():
                    return cand, "search folder"
        if pure.name:
            hits = self._name_index().get(pure.name.lower())
            if hits:
                return hits[0], "search folder"
        return None, None

    def resolve(self, clip: otio.schema.Clip) -> MediaLink:
        keys: list[str] = []
        active = None
        try:
            refs = clip.media_references()
            keys = sorted(refs.keys())
            active = clip.active_media_reference_key
        except AttributeError:  # OTIO older than 0.15: one reference per clip
            pass
        ref = clip.media_reference
        link = MediaLink(status=NO_REFERENCE, reference_keys=keys, active_key=active)
        if ref is None:
            link.problems.append("clip has no media reference")
            return link
        link.reference_kind = type(ref).__name__
        if ref.available_range is not None:
            link.available_range = Span.from_otio(ref.available_range)
        if isinstance(ref, otio.schema.MissingReference):
            link.status = OFFLINE
            link.problems.append("media offline in the editor's project (no file reference)")
            return link
        if isinstance(ref, otio.schema.GeneratorReference):
            link.status = GENERATOR
            return link
        if isinstance(ref, otio.schema.ExternalReference):
            link.url = ref.target_url
        elif isinstance(ref, otio.schema.ImageSequenceReference):
            link.url = ref.target_url_for_image_number(ref.start_frame)
        else:
            link.problems.append(f"unsupported media reference type {link.reference_kind}")
            return link
        if not link.url:
            link.status = MISSING
            link.problems.append("media reference has an empty URL")
            return link
        found, how = self.find(url_to_path(link.url))
        if found is None:
            link.status = MISSING
            link.problems.append(f"media not found: {url_to_path(link.url)}")
        else:
            link.status, link.path, link.found_by = OK, str(found), how
        return link
