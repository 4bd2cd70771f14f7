"""A fake DaVinci Resolve scripting object: exactly the documented calls the plugin uses, nothing else.

Each method follows Resolve's scripting README (signatures, argument shapes, return types) and checks
what it is given; any other attribute raises AttributeError, so a script that calls something
undocumented fails here. Every call is recorded in ``FakeResolve.calls`` as (Class.Method, args).

Behaviours taken from the README and from reports of real Resolve behaviour:
* ``MediaPool.AppendToTimeline([{clipInfo}])``: keys mediaPoolItem, startFrame, endFrame, mediaType
  (1 video, 2 audio), trackIndex, recordFrame; ``recordFrame`` is an absolute frame (timeline start
  included); ``endFrame`` is exclusive from Resolve 19 on and inclusive before.
* ``Timeline.AddMarker(frameId, color, name, note, duration, customData)``: frameId counts from the
  timeline's first frame; a second marker on the same frame is refused (returns False).
* ``MediaPool.ImportMedia([paths])`` returns MediaPoolItems (here in reverse order: scripts must match
  them by their "File Path" clip property, not by position).
"""

from __future__ import annotations

import os

MARKER_COLORS = {"Blue", "Cyan", "Green", "Yellow", "Red", "Pink", "Purple", "Fuchsia", "Rose", "Lavender", "Sky",
                 "Mint", "Lemon", "Sand", "Cocoa", "Cream"}
TRACK_TYPES = {"video", "audio", "subtitle"}
CLIP_INFO_KEYS = {"mediaPoolItem", "startFrame", "endFrame", "mediaType", "trackIndex", "recordFrame"}


class _Api:
    """Base: records calls; anything not defined is not part of the documented API."""

    _doc_name = "?"

    def __init__(self, host: "FakeResolve"):
        self._host = host

    def _rec(self, method: str, *args):
        self._host.calls.append((f"{self._doc_name}.{method}", args))

    def __getattr__(self, name):
        raise AttributeError(f"{type(self).__name__}.{name} is not a documented Resolve call used by the fake")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


class FakeMediaPoolItem(_Api):
    _doc_name = "MediaPoolItem"

    def __init__(self, host, path: str, frames: int):
        super().__init__(host)
        self.path = path
        self.frames = frames

    def GetName(self):
        self._rec("GetName")
        return os.path.basename(self.path)

    def GetClipProperty(self, propertyName=None):
        self._rec("GetClipProperty", propertyName)
        props = {"File Path": self.path, "Clip Name": os.path.basename(self.path), "Frames": str(self.frames)}
        return props if propertyName is None else props.get(propertyName, "")


class FakeTimelineItem(_Api):
    _doc_name = "TimelineItem"

    def __init__(self, host, name: str, start: int, end: int, media: FakeMediaPoolItem | None = None,
                 source_start: int = 0):
        super().__init__(host)
        self.name, self.start, self.end, self.media, self.source_start = name, start, end, media, source_start
        self.takes: list[dict] = []

    def GetName(self):
        self._rec("GetName")
        return self.name

    def GetStart(self):
        self._rec("GetStart")
        return self.start

    def GetEnd(self):
        self._rec("GetEnd")
        return self.end

    def GetDuration(self):
        self._rec("GetDuration")
        return self.end - self.start

    def AddTake(self, mediaPoolItem, startFrame=None, endFrame=None):
        self._rec("AddTake", mediaPoolItem, startFrame, endFrame)
        assert isinstance(mediaPoolItem, FakeMediaPoolItem), "AddTake needs a MediaPoolItem"
        assert startFrame is None or _is_int(startFrame)
        assert endFrame is None or _is_int(endFrame)
        if not self.takes:  # a take selector starts with the original clip as take 1
            self.takes.append({"mediaPoolItem": self.media, "startFrame": self.source_start, "endFrame": None})
        self.takes.append({"mediaPoolItem": mediaPoolItem, "startFrame": startFrame, "endFrame": endFrame})
        return True


class FakeFolder(_Api):
    _doc_name = "Folder"

    def __init__(self, host, name: str):
        super().__init__(host)
        self.name = name
        self.subfolders: list[FakeFolder] = []
        self.clips: list[FakeMediaPoolItem] = []

    def GetName(self):
        self._rec("GetName")
        return self.name

    def GetSubFolderList(self):
        self._rec("GetSubFolderList")
        return list(self.subfolders)

    def GetClipList(self):
        self._rec("GetClipList")
        return list(self.clips)


class FakeTimeline(_Api):
    _doc_name = "Timeline"

    def __init__(self, host, name: str, start_frame: int, video_tracks: list[list[FakeTimelineItem]], export_source):
        super().__init__(host)
        self.name = name
        self.start_frame = start_frame
        self.video = video_tracks
        self.video_names = [f"Video {i + 1}" for i in range(len(video_tracks))]
        self.markers: dict[int, dict] = {}
        self.export_source = export_source  # callable(path, kind) writing the "exported" file

    def GetName(self):
        self._rec("GetName")
        return self.name

    def GetStartFrame(self):
        self._rec("GetStartFrame")
        return self.start_frame

    def GetTrackCount(self, trackType):
        self._rec("GetTrackCount", trackType)
        assert trackType in TRACK_TYPES
        return len(self.video) if trackType == "video" else 1

    def GetTrackName(self, trackType, trackIndex):
        self._rec("GetTrackName", trackType, trackIndex)
        assert trackType == "video" and 1 <= trackIndex <= len(self.video)
        return self.video_names[trackIndex - 1]

    def SetTrackName(self, trackType, trackIndex, name):
        self._rec("SetTrackName", trackType, trackIndex, name)
        assert trackType == "video" and 1 <= trackIndex <= len(self.video) and isinstance(name, str)
        self.video_names[trackIndex - 1] = name
        return True

    def AddTrack(self, trackType, subTrackType=None):
        self._rec("AddTrack", trackType, subTrackType)
        assert trackType in TRACK_TYPES
        if trackType == "video":
            self.video.append([])
            self.video_names.append(f"Video {len(self.video)}")
        return True

    def GetItemListInTrack(self, trackType, index):
        self._rec("GetItemListInTrack", trackType, index)
        assert trackType == "video" and 1 <= index <= len(self.video)
        return list(self.video[index - 1])

    def AddMarker(self, frameId, color, name, note, duration, customData=None):
        self._rec("AddMarker", frameId, color, name, note, duration, customData)
        assert isinstance(frameId, (int, float)) and not isinstance(frameId, bool)
        assert color in MARKER_COLORS, color
        assert isinstance(name, str) and isinstance(note, str)
        assert isinstance(duration, (int, float)) and duration >= 1
        if frameId in self.markers:
            return False
        self.markers[frameId] = {"color": color, "duration": duration, "note": note, "name": name,
                                 "customData": customData or ""}
        return True

    def GetMarkers(self):
        self._rec("GetMarkers")
        return dict(self.markers)

    def Export(self, fileName, exportType, exportSubtype=None):
        self._rec("Export", fileName, exportType, exportSubtype)
        assert isinstance(fileName, str) and os.path.isabs(fileName)
        r = self._host
        if exportType == getattr(r, "EXPORT_OTIO", object()):
            kind = "otio"
        elif exportType == r.EXPORT_FCP_7_XML:
            kind = "fcp_xml"
        else:
            return False
        self.export_source(fileName, kind)
        return True


class FakeMediaPool(_Api):
    _doc_name = "MediaPool"

    def __init__(self, host, timeline: FakeTimeline, probe_frames):
        super().__init__(host)
        self.root = FakeFolder(host, "Master")
        self.current = self.root
        self.timeline = timeline
        self.probe_frames = probe_frames

    def GetRootFolder(self):
        self._rec("GetRootFolder")
        return self.root

    def AddSubFolder(self, folder, name):
        self._rec("AddSubFolder", folder, name)
        assert isinstance(folder, FakeFolder) and isinstance(name, str) and name
        sub = FakeFolder(self._host, name)
        folder.subfolders.append(sub)
        return sub

    def GetCurrentFolder(self):
        self._rec("GetCurrentFolder")
        return self.current

    def SetCurrentFolder(self, folder):
        self._rec("SetCurrentFolder", folder)
        assert isinstance(folder, FakeFolder)
        self.current = folder
        return True

    def ImportMedia(self, items):
        self._rec("ImportMedia", items)
        assert isinstance(items, list) and all(isinstance(p, str) for p in items)
        made = []
        for path in items:
            if not os.path.isfile(path):
                continue  # Resolve skips what it cannot read
            item = FakeMediaPoolItem(self._host, path, self.probe_frames(path))
            self.current.clips.append(item)
            made.append(item)
        return list(reversed(made))

    def AppendToTimeline(self, clip_infos):
        self._rec("AppendToTimeline", clip_infos)
        assert isinstance(clip_infos, list) and clip_infos
        placed = []
        exclusive = self._host.version >= (19,)
        for info in clip_infos:
            assert isinstance(info, dict) and set(info) <= CLIP_INFO_KEYS, info
            item = info["mediaPoolItem"]
            assert isinstance(item, FakeMediaPoolItem)
            for key in ("startFrame", "endFrame", "trackIndex", "recordFrame", "mediaType"):
                assert key not in info or _is_int(info[key]), (key, info.get(key))
            assert info.get("mediaType", 1) in (1, 2)
            frames = info["endFrame"] - info["startFrame"] + (0 if exclusive else 1)
            assert 0 < frames and info["endFrame"] <= item.frames - (0 if exclusive else 1), "beyond the media"
            track = info.get("trackIndex", 1)
            assert 1 <= track <= len(self.timeline.video), "trackIndex out of range"
            start = info.get("recordFrame", self.timeline.start_frame)
            ti = FakeTimelineItem(self._host, item.GetName(), start, start + frames, item, info["startFrame"])
            self.timeline.video[track - 1].append(ti)
            placed.append(ti)
        return placed


class FakeProject(_Api):
    _doc_name = "Project"

    def __init__(self, host, name, timeline, media_pool):
        super().__init__(host)
        self.name, self.timeline, self.media_pool = name, timeline, media_pool

    def GetName(self):
        self._rec("GetName")
        return self.name

    def GetCurrentTimeline(self):
        self._rec("GetCurrentTimeline")
        return self.timeline

    def GetMediaPool(self):
        self._rec("GetMediaPool")
        return self.media_pool


class FakeProjectManager(_Api):
    _doc_name = "ProjectManager"

    def __init__(self, host, project):
        super().__init__(host)
        self.project = project

    def GetCurrentProject(self):
        self._rec("GetCurrentProject")
        return self.project


class FakeResolve:
    """``resolve``: version-dependent constants (EXPORT_OTIO only from 18.5 on)."""

    EXPORT_AAF, EXPORT_DRT, EXPORT_EDL, EXPORT_FCP_7_XML = 0, 1, 2, 3
    EXPORT_NONE = 100

    def __init__(self, version: tuple, timeline_name: str, start_frame: int, clips: list[tuple[str, int, int]],
                 export_source, probe_frames):
        self.version = tuple(version)
        self.calls: list[tuple[str, tuple]] = []
        if self.version >= (18, 5):
            self.EXPORT_OTIO = 17
        v1 = [FakeTimelineItem(self, name, start_frame + a, start_frame + b) for name, a, b in clips]
        self.timeline = FakeTimeline(self, timeline_name, start_frame, [v1], export_source)
        self.media_pool = FakeMediaPool(self, self.timeline, probe_frames)
        self.project = FakeProject(self, "Demo project", self.timeline, self.media_pool)
        self.project_manager = FakeProjectManager(self, self.project)

    def GetProjectManager(self):
        self.calls.append(("Resolve.GetProjectManager", ()))
        return self.project_manager

    def GetVersion(self):
        self.calls.append(("Resolve.GetVersion", ()))
        return list(self.version) + [0, ""]

    def __getattr__(self, name):
        raise AttributeError(f"Resolve.{name} is not a documented Resolve call used by the fake")

    def called(self) -> set[str]:
        return {name for name, _ in self.calls}
