"""Finding each clip's media on disk: URLs, relative paths, search folders, offline media."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from s2v_toolkit.timeline.roles import METADATA_NAMESPACE
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


PICTURE_EXTENSIONS = frozenset({".mov", ".mp4", ".m4v", ".mxf", ".avi", ".mkv", ".mts", ".m2ts", ".ts", ".webm"})
SOUND_EXTENSIONS = frozenset({".wav", ".bwf", ".rf64", ".aif", ".aiff", ".flac", ".mp3", ".m4a"})
MEDIA_EXTENSIONS = PICTURE_EXTENSIONS | SOUND_EXTENSIONS


def _track_kind(clip: otio.schema.Clip) -> str | None:
    track = clip.parent()
    while track is not None and not isinstance(track, otio.schema.Track):
        track = track.parent()
    if track is None:
        return None
    return {otio.schema.TrackKind.Audio: "audio", otio.schema.TrackKind.Video: "video"}.get(track.kind)


class MediaResolver:
    """Resolves media references against the timeline's folder and user search folders."""

    def __init__(self, timeline_dir: str | os.PathLike | None = None,
                 search_dirs: tuple[str | os.PathLike, ...] | list = ()):
        self.timeline_dir = Path(timeline_dir) if timeline_dir else None
        self.search_dirs = [Path(d) for d in search_dirs]
        self._index: dict[str, list[Path]] | None = None
        self._media: tuple[dict[str, list[Path]], dict[str, list[Path]]] | None = None

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
        if self.timeline_dir and self.timeline_dir.is_dir():
            # media delivered with the timeline (an AAF and its WAVs in one folder, or a media folder beside
            # it) while the path written is the editor's machine's: the path's tail under the timeline's folder
            for i in range(1, len(parts)):
                cand = self.timeline_dir.joinpath(*parts[i:])
                if cand.is_file():
                    return cand, "beside the timeline"
            # or in a folder beside the timeline's (project/aaf + project/media): at least folder and name
            for i in range(1, len(parts) - 1):
                cand = self.timeline_dir.parent.joinpath(*parts[i:])
                if cand.is_file():
                    return cand, "beside the timeline"
        return None, None

    def _find_named(self, link: MediaLink, names: list[str], kind: str | None) -> MediaLink:
        """The first of ``names`` (file names, or names without the extension) found as a media file in
        the timeline's folder or under the search folders; for a stem, a picture file for a video clip
        and a sound file first for an audio clip."""
        for name in names:
            found = self._media_by_name(name, kind)
            if found is not None:
                link.status, link.path, link.found_by = OK, str(found), f"named '{name}'"
                link.url = name
                return link
        link.status = MISSING
        where = "the timeline's folder" + (" and the --search folders" if self.search_dirs else
                                           " (pass --search DIR to look elsewhere)")
        link.problems.append("the timeline holds no file reference, only names: "
                             + ", ".join(f"'{n}'" for n in names) + f"; no media file of those names in {where}")
        return link

    def _media_index(self) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
        """Media files of the timeline's folder (first) and the search folders, by lower-case name and by
        lower-case stem; built once (an EDL names the same files in many events)."""
        if self._media is None:
            local = (sorted(p for p in self.timeline_dir.iterdir() if p.is_file())
                     if self.timeline_dir and self.timeline_dir.is_dir() else [])
            files = local + [p for hits in self._name_index().values() for p in hits]
            by_name: dict[str, list[Path]] = {}
            by_stem: dict[str, list[Path]] = {}
            for p in files:
                if p.suffix.lower() in MEDIA_EXTENSIONS:
                    by_name.setdefault(p.name.lower(), []).append(p)
                    by_stem.setdefault(p.stem.lower(), []).append(p)
            self._media = by_name, by_stem
        return self._media

    def _media_by_name(self, name: str, kind: str | None) -> Path | None:
        name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().lower()
        if not name:
            return None
        by_name, by_stem = self._media_index()
        if by_name.get(name):
            return by_name[name][0]
        first = SOUND_EXTENSIONS if kind == "audio" else PICTURE_EXTENSIONS
        stem = sorted(by_stem.get(name, []), key=lambda p: p.suffix.lower() not in first)  # stable: folder order
        return stem[0] if stem else None

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
            names = list(ref.metadata.get(METADATA_NAMESPACE, {}).get("media_names", []) or [])
            if names:  # a format without file references (EDL) named the media instead
                return self._find_named(link, names, _track_kind(clip))
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
