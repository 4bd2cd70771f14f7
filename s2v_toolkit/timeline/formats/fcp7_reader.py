"""The toolkit's own FCP 7 XML (``<xmeml>``) reader: what the editor sees in Premiere / FCP 7 / Resolve.

otio-fcp-adapter 1.0 is wrong on real Premiere exports in too many ways to patch after the fact
(nested sequences and Premiere multicam clips vanish, Premiere's "Gain" filter, clip/track
``<enabled>``, track names and speed-scaled in/out points are ignored, record times come back as
floats). The format is plain: ``sequence/media/video|audio/track/clipitem`` with ``start``/``end``
(record frames of the sequence; ``-1`` next to a transition: the transition's cut point),
``in``/``out`` (source frames counted from the media's first frame, at the clip's rate, scaled by
1/speed when a Time Remap filter is on), ``file`` elements defined once and then referenced by
``id``, ``<rate><timebase><ntsc>``, ``<timecode>``. Every number is an integer frame count, so
all arithmetic here is exact (``Fraction`` only where a speed makes a source frame fractional).

Nested sequences (Premiere's multicam clips are exported as nested sequences holding the active
angle, for picture and for sound) become an OTIO ``Stack`` trimmed to the clip's in/out, holding
the nested sequence's tracks of the same kind, so every clip under them is seen at its real record
position. FCP 7 ``<multiclip>`` items play their active angle.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from s2v_toolkit.timeline.errors import TimelineError
from s2v_toolkit.timeline.roles import METADATA_NAMESPACE

NS = METADATA_NAMESPACE
ITEM_TAGS = ("clipitem", "generatoritem", "transitionitem")
GAIN_EFFECT_ID = "{61756678, 4761696e, 4b657947}"  # Premiere's "Gain" audio filter (value in dB)
SILENT_DB = -144.0
MAX_NESTING = 16
LOGNOTE_PREFIX = "s2v_toolkit:"


def rate_of(el: ET.Element | None, default: Fraction) -> Fraction:
    """``<rate><timebase>25</timebase><ntsc>FALSE</ntsc></rate>`` of ``el`` (or ``default``)."""
    if el is None:
        return default
    r = el.find("rate")
    if r is None or not (r.findtext("timebase") or "").strip():
        return default
    tb = Fraction((r.findtext("timebase") or "").strip())
    ntsc = (r.findtext("ntsc") or "").strip().upper() == "TRUE"
    return tb * 1000 / 1001 if ntsc else tb


def _int(el: ET.Element, tag: str, default: int | None = None) -> int | None:
    text = (el.findtext(tag) or "").strip()
    if not text:
        return default
    try:
        return int(round(float(text)))
    except ValueError:
        return default


def _is_false(el: ET.Element | None) -> bool:
    return el is not None and (el.text or "").strip().upper() == "FALSE"


def timecode_frames(tc_el: ET.Element | None, rate: Fraction) -> tuple[int | None, bool]:
    """(frame number at ``rate``, drop-frame) of a ``<timecode>`` element."""
    if tc_el is None:
        return None, False
    df = (tc_el.findtext("displayformat") or "").strip().upper() == "DF"
    tc_rate = rate_of(tc_el, rate)
    frame = _int(tc_el, "frame")
    if frame is None:
        text = (tc_el.findtext("string") or "").strip()
        if not text:
            return None, df
        from s2v_toolkit.media import timecode_to_frames

        try:
            frame = timecode_to_frames(text, tc_rate)
        except ValueError:
            return None, df
        df = df or ";" in text
    if tc_rate != rate:
        frame = int(round(Fraction(frame) * rate / tc_rate))
    return frame, df


def rt(value, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(float(value), float(rate))


def is_primary(track: ET.Element) -> bool:
    """Premiere "explodes" a stereo track into one ``<track>`` per channel; the first stands for it."""
    return track.get("currentExplodedTrackIndex", "0") == "0" or track.get("totalExplodedTrackCount", "1") == "1"


def is_exploded(track: ET.Element) -> bool:
    return track.get("totalExplodedTrackCount", "1") != "1"


def top_sequence(root: ET.Element) -> ET.Element | None:
    """The sequence the file is about: ``xmeml/sequence``, else the first one in a project's bin."""
    seq = root.find("sequence")
    if seq is not None:
        return seq
    for el in root.iter():
        if el.tag == "sequence" and len(el):
            return el
    return None


@dataclass
class Filters:
    gain_db: float = 0.0
    gain_keyframes: list = field(default_factory=list)    # [(clip frame, dB)] where levels are keyframed
    speed: float = 1.0
    speed_exact: Fraction = Fraction(1)   # the decimal the file says ("80.0008" %), for exact in * speed
    reverse: bool = False
    variable_speed: bool = False
    names: list = field(default_factory=list)


def _level_db(linear: float) -> float:
    return 20 * math.log10(linear) if linear > 0 else SILENT_DB


def read_filters(item: ET.Element) -> Filters:
    f = Filters()
    for flt in item.findall("filter"):
        eff = flt.find("effect")
        if eff is None or _is_false(flt.find("enabled")):
            continue
        eid = (eff.findtext("effectid") or "").strip()
        f.names.append(eff.findtext("name") or eid)
        params = {(p.findtext("parameterid") or p.findtext("name") or "").strip().lower(): p
                  for p in eff.findall("parameter")}
        if eid.lower() == "audiolevels" and "level" in params:
            # Premiere/FCP 7 write the level as a linear factor (0..3.98 = +12 dB); some writers give
            # it in dB (a negative valuemin, or "dB" in its name)
            p = params["level"]
            in_db = (_float(p.findtext("valuemin")) or 0) < 0 or "db" in (p.findtext("name") or "").lower()
            f.gain_db += _param_db(p, linear=not in_db, keys=f.gain_keyframes)
        elif eid == GAIN_EFFECT_ID or any("(db)" in k for k in params):
            for k, p in params.items():
                if "db" in k or eid == GAIN_EFFECT_ID:
                    f.gain_db += _param_db(p, linear=False, keys=f.gain_keyframes)
                    break
        elif eid.lower() == "timeremap":
            try:
                f.speed_exact = (Fraction((params["speed"].findtext("value") or "100").strip()) / 100
                                 if "speed" in params else Fraction(1))
            except (ValueError, ZeroDivisionError):
                f.speed_exact = Fraction(1)
            f.speed = float(f.speed_exact)
            rev = params.get("reverse")
            f.reverse = rev is not None and (rev.findtext("value") or "").strip().upper() == "TRUE"
            var = params.get("variablespeed")
            f.variable_speed = var is not None and (var.findtext("value") or "0").strip() not in ("0", "FALSE")
    f.gain_db = max(f.gain_db, SILENT_DB)
    return f


def _float(text: str | None) -> float | None:
    try:
        return float((text or "").strip())
    except ValueError:
        return None


def _param_db(p: ET.Element, *, linear: bool, keys: list) -> float:
    """A level parameter in dB: its value, or where keyframed the loudest keyframe (the envelope
    itself goes to ``gain_keyframes``), so a clip heard anywhere is not silenced. A dB value at the
    parameter's floor (``valuemin``, e.g. -96) is silence."""
    floor = _float(p.findtext("valuemin"))

    def conv(text: str | None) -> float | None:
        v = _float(text)
        if v is None:
            return None
        if linear:
            return _level_db(v)
        return SILENT_DB if floor is not None and floor < 0 and v <= floor else v
    frames = []
    for kf in p.findall("keyframe"):
        v = conv(kf.findtext("value"))
        if v is not None:
            frames.append((_int(kf, "when", 0), v))
    if frames:
        keys.extend(frames)
        return max(v for _, v in frames)
    v = conv(p.findtext("value"))
    return v if v is not None else 0.0


class Fcp7Reader:
    def __init__(self, path: Path, root: ET.Element):
        self.path = path
        self.root = root
        self.notes: list[str] = []
        self._nesting: list = []
        self._source_df = False
        self._start, self._rate, self._df = 0, Fraction(25), False
        self.files: dict[str, ET.Element] = {}
        self.sequences: dict[str, ET.Element] = {}
        for el in root.iter("file"):
            if el.get("id") and len(el) and el.get("id") not in self.files:
                self.files[el.get("id")] = el
        for el in root.iter("sequence"):
            if el.get("id") and len(el) and el.get("id") not in self.sequences:
                self.sequences[el.get("id")] = el

    # ---------------------------------------------------------------- timeline

    def timeline(self) -> otio.schema.Timeline:
        seq = top_sequence(self.root)
        if seq is None:
            n = sum(1 for _ in self.root.iter("clip"))
            raise TimelineError(self.path, "FCP 7 XML holds no <sequence>" + (
                f" (a bin export with {n} master clip(s) and no timeline)" if n else ""))
        inside = {id(s) for ci in self.root.iter("clipitem") for s in ci.iter("sequence")}
        tops = [s for s in self.root.iter("sequence") if len(s) and id(s) not in inside]
        if len(tops) > 1:
            self.notes.append(f"file holds {len(tops)} sequences; reading '{seq.findtext('name') or seq.get('id')}'")
        rate = rate_of(seq, Fraction(25))
        start, df = timecode_frames(seq.find("timecode"), rate)
        self._start, self._rate, self._df = start or 0, rate, df
        tl = otio.schema.Timeline(name=seq.findtext("name") or self.path.stem,
                                  global_start_time=rt(start or 0, rate))
        md = {"drop_frame": bool(df), "rate": str(rate)}
        if seq.find("timecode") is not None:
            from s2v_toolkit.timeline.timecode import frames_timecode

            md["start_timecode"] = frames_timecode(start or 0, float(rate), df)
        tl.metadata[NS] = md
        for kind in ("video", "audio"):
            for index, track_el in enumerate(seq.findall(f"media/{kind}/track")):
                if kind == "audio" and not is_primary(track_el):
                    continue
                for track in self.track(track_el, kind, rate, {"kind": kind, "track": index}, [], 0.0):
                    tl.tracks.append(track)
        for m in seq.findall("marker"):
            tl.tracks.markers.append(self.marker(m, rate, 0))
        return tl

    # ---------------------------------------------------------------- tracks

    def track(self, track_el: ET.Element, kind: str, rate: Fraction, where: dict, nesting: list,
              outer_gain: float, outer_locator: dict | None = None) -> list[otio.schema.Track]:
        """The track, plus one overlap lane per level of items the file places over earlier ones
        on the same track (no editor shows two items at once on one track, but the file says both
        are there: each is kept whole, on a lane named after the track, and a note says so)."""
        otio_kind = otio.schema.TrackKind.Video if kind == "video" else otio.schema.TrackKind.Audio
        track_name = track_el.get("MZ.TrackName") or (track_el.findtext("name") or "")
        tmd: dict = {}
        if _is_false(track_el.find("enabled")):
            tmd["muted" if kind == "audio" else "disabled"] = True

        def new_lane(n: int) -> otio.schema.Track:
            lane = otio.schema.Track(name=track_name if n == 0 else f"{track_name} (overlap {n})", kind=otio_kind)
            if tmd.get("muted") or tmd.get("disabled"):
                lane.enabled = False
            md = {k: v for k, v in tmd.items() if k != "disabled"}
            if n:
                md["overlap_of"] = track_name
            if md:
                lane.metadata[NS] = md
            return lane
        track = new_lane(0)
        lanes = [[track, 0]]   # [lane, cursor] for the overlap lanes
        items = [e for e in track_el if e.tag in ITEM_TAGS]
        cursor = 0
        for i, el in enumerate(items):
            if el.tag == "transitionitem":
                tr = self.transition(el, rate, track)
                if tr is not None:
                    cut = cut_point(el)
                    if cut > cursor:   # a fade from black: the gap before it comes first
                        track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                            rt(0, rate), rt(cut - cursor, rate))))
                        cursor = cut
                    track.append(tr)
                continue
            prev_tr = items[i - 1] if i > 0 and items[i - 1].tag == "transitionitem" else None
            next_tr = items[i + 1] if i + 1 < len(items) and items[i + 1].tag == "transitionitem" else None
            locator = dict(outer_locator) if outer_locator else {**where, "item": i, "id": el.get("id", "")}
            item, s, e = self.item(el, kind, rate, prev_tr, next_tr, nesting, outer_gain, locator, track_el)
            self._nesting = nesting   # item() may have read deeper nested sequences
            if item is None:
                continue
            if s < cursor:
                # overlapping items on one track (not through a transition): the later one whole on
                # the first overlap lane free at its start, and say so
                name = el.findtext("name") or el.get("id", "?")
                lane = next((ln for ln in lanes[1:] if ln[1] <= s), None)
                if lane is None:
                    lane = [new_lane(len(lanes)), 0]
                    lanes.append(lane)
                self.notes.append(f"'{name}' at {self.where(s, e)} overlaps the previous item on track "
                                  f"'{track_name}'; kept whole on '{lane[0].name}'")
                if s > lane[1]:
                    lane[0].append(otio.schema.Gap(source_range=otio.opentime.TimeRange(
                        rt(0, rate), rt(s - lane[1], rate))))
                lane[0].append(item)
                lane[1] = e
                continue
            if s > cursor:
                track.append(otio.schema.Gap(source_range=otio.opentime.TimeRange(rt(0, rate), rt(s - cursor, rate))))
            track.append(item)
            cursor = e
        return [ln[0] for ln in lanes]

    def where(self, s: int, e: int) -> str:
        """Record timecodes of a top-level item, or its frames in the nested sequence holding it."""
        if self._nesting:
            return f"frames {s}-{e} of nested sequence '{self._nesting[-1]}'"
        from s2v_toolkit.timeline.timecode import frames_timecode

        return (f"record {frames_timecode(self._start + s, float(self._rate), self._df)}-"
                f"{frames_timecode(self._start + e, float(self._rate), self._df)}")

    def transition(self, el: ET.Element, rate: Fraction, track) -> otio.schema.Transition | None:
        s, e = _int(el, "start"), _int(el, "end")
        if s is None or e is None or e <= s:
            return None
        cut = cut_point(el)
        eff = el.find("effect")
        name = (eff.findtext("name") if eff is not None else None) or el.findtext("name") or "transition"
        return otio.schema.Transition(name=name, transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
                                      in_offset=rt(cut - s, rate), out_offset=rt(e - cut, rate),
                                      metadata={NS: {"alignment": el.findtext("alignment") or ""}})

    # ---------------------------------------------------------------- items

    def record_range(self, el: ET.Element, prev_tr, next_tr) -> tuple[int, int, int] | None:
        """(record start, record end, frames the start moved in from the clip's in point)."""
        s, e = _int(el, "start", -1), _int(el, "end", -1)
        head = 0
        if s == -1 and prev_tr is not None:
            s = cut_point(prev_tr)
            head = s - (_int(prev_tr, "start", s) or 0)
        if e == -1 and next_tr is not None:
            e = cut_point(next_tr)
        if s == -1 or e == -1:
            in_, out = _int(el, "in"), _int(el, "out")
            if in_ is None or out is None:
                return None
            if s == -1 and e != -1:
                s = e - (out - in_)
            elif e == -1 and s != -1:
                e = s + (out - in_)
            else:
                return None
        return s, e, head

    def item(self, el, kind, rate, prev_tr, next_tr, nesting, outer_gain, locator, track_el):
        self._nesting = nesting
        name = el.findtext("name") or (el.find("file").findtext("name") if el.find("file") is not None else "") or ""
        rng = self.record_range(el, prev_tr, next_tr)
        if rng is None:
            self.notes.append(f"'{name}': no usable start/end in the XML; not read")
            return None, 0, 0
        s, e, head = rng
        if e <= s:
            return None, 0, 0
        if not nesting:
            # where the surgical writer puts a marker: record frame s shows the clip's frame src_in
            locator.update({"start": s, "src_in": (_int(el, "in", 0) or 0) + head})
        clip_rate = self.source_rate(el, rate_of(el, rate))
        filters = read_filters(el)
        in_ = _int(el, "in", 0) or 0
        # in/out count frames of the *sequence* rate from the media's first frame (Premiere: a 23.976
        # file in a 25 fps sequence has <duration> = its frames * 25/23.976, whatever the clip item's
        # <rate> says), and a retimed clip counts retimed frames (<duration> = the media's / speed):
        # the media position is (in * speed) / sequence rate seconds, here in frames of the media
        speed = filters.speed_exact or Fraction(1)
        first = (Fraction(in_) + Fraction(head)) * speed * clip_rate / rate
        # the duration stays in sequence frames (OTIO allows a range's start and duration at different
        # rates): record positions then add up as whole frames, never as rescaled floats
        dur = rt(e - s, rate)
        s2v: dict = {"locator": locator}
        gain = filters.gain_db + outer_gain
        if gain != 0.0:
            s2v["gain_db"] = max(gain, SILENT_DB)
        if filters.gain_keyframes:
            s2v["gain_keyframes_db"] = [[int(w), float(v)] for w, v in filters.gain_keyframes]
        if nesting:
            s2v["nested_in"] = nesting[-1]
        if speed != 1:
            s2v["speed"] = float(speed)
        nested = el.find("sequence")
        multi = el.find("multiclip")
        marker_speed = speed
        note = (el.findtext("logginginfo/lognote") or "").strip()
        if note.startswith(LOGNOTE_PREFIX):  # the toolkit's own render clips carry their metadata here
            try:
                s2v.update({k: v for k, v in json.loads(note[len(LOGNOTE_PREFIX):]).items() if k != "locator"})
            except (ValueError, AttributeError):
                pass
        if nested is not None and el.tag == "clipitem":
            item = self.nested(el, nested, kind, name, first, dur, clip_rate, nesting, gain, locator, s, e)
            if speed != 1 and isinstance(item, otio.schema.Stack):
                if speed > 0 and not filters.variable_speed:
                    # the nested sequence plays at ``speed``: its time, and every cut in it, scaled
                    _retime_stack(item, speed)
                    marker_speed = Fraction(1)
                else:
                    self.notes.append(f"'{name}' at {self.where(s, e)}: nested sequence at "
                                      f"{float(speed) * 100:g}% (reverse or variable); clips under it read "
                                      "from its in point at speed 1")
        elif multi is not None:
            item = self.multiclip(el, multi, kind, name, first, dur, clip_rate, nesting, gain, locator, s, e)
        else:
            item = self.clip(el, kind, name, first, dur, clip_rate, s2v, filters, track_el, s, e, rate)
        if item is None:
            return None, 0, 0
        if _is_false(el.find("enabled")):
            item.enabled = False
        if isinstance(item, otio.schema.Clip):
            md = dict(item.metadata.get(NS, {}))
            md.update(s2v)
            item.metadata[NS] = md
        else:
            item.metadata[NS] = {**dict(item.metadata.get(NS, {})), "locator": locator}
            # markers of the nesting clip item, in the nested sequence's time (the Stack's own)
            inner_rate = Fraction(item.source_range.start_time.rate).limit_denominator(1001)
            for m in el.findall("marker"):
                item.markers.append(self.marker(m, inner_rate, 0, inner_rate / rate * marker_speed))
        return item, s, e

    def source_rate(self, el: ET.Element, clip_rate: Fraction) -> Fraction:
        """The rate in/out count at: the media file's own (Premiere keeps in/out in file frames even
        where the clip item says another timebase), a nested sequence's, else the clip item's."""
        f = el.find("file")
        if f is not None:
            full = self.files.get(f.get("id"), f) if f.get("id") else f
            return rate_of(full, clip_rate)
        seq = el.find("sequence")
        if seq is not None:
            full = self.sequences.get(seq.get("id"), seq) if seq.get("id") else seq
            return rate_of(full, clip_rate)
        return clip_rate

    def media_reference(self, file_el: ET.Element | None, clip_rate: Fraction):
        """(reference, source frame of the media's first frame at ``clip_rate``)."""
        if file_el is None:
            return otio.schema.MissingReference(), 0
        fid = file_el.get("id")
        full = self.files.get(fid, file_el) if fid else file_el
        file_rate = rate_of(full, clip_rate)
        tc, self._source_df = timecode_frames(full.find("timecode"), clip_rate)
        tc = tc or 0
        url = (full.findtext("pathurl") or "").strip()
        dur = _int(full, "duration")
        avail = None
        if dur is not None and dur > 0:
            avail = otio.opentime.TimeRange(rt(tc, clip_rate), rt(dur, file_rate).rescaled_to(float(clip_rate)))
        name = full.findtext("name") or ""
        ref = (otio.schema.ExternalReference(target_url=url, available_range=avail) if url
               else otio.schema.MissingReference(available_range=avail))
        ref.name = name
        return ref, tc

    def clip(self, el, kind, name, first, dur, clip_rate, s2v, filters, track_el, s, e, rate):
        if el.tag == "generatoritem":
            eff = el.find("effect")
            gen_kind = (eff.findtext("effectid") or eff.findtext("name") or "generator") if eff is not None else "generator"
            ref = otio.schema.GeneratorReference(name=name, generator_kind=gen_kind)
            s2v["generator"] = "title" if "text" in gen_kind.lower() or "title" in gen_kind.lower() else "generator"
            gen = otio.schema.Clip(name=name or gen_kind, media_reference=ref,
                                   source_range=otio.opentime.TimeRange(rt(first, clip_rate), dur))
            self.clip_markers(gen, el, filters, clip_rate, 0, rate)   # generators carry markers too
            return gen
        file_el = el.find("file")
        ref, tc = self.media_reference(file_el, clip_rate)
        if file_el is None:
            s2v["unknown_picture" if kind == "video" else "unknown_sound"] = "clip item without a <file>, nested sequence or multiclip"
            self.notes.append(f"'{name}' at {self.where(s, e)}: clip item without media (<file>); "
                              "its picture is unknown")
        clip = otio.schema.Clip(name=name, media_reference=ref,
                                source_range=otio.opentime.TimeRange(rt(tc + first, clip_rate), dur))
        if file_el is not None:
            s2v["source_drop_frame"] = bool(self._source_df)   # the media's own timecode display
        if filters.speed == 0.0:
            # Time Remap at 0 %: the in point's frame held (in/out stay plain media frames)
            clip.effects.append(otio.schema.FreezeFrame(name="Time Remap"))
        elif filters.speed != 1.0:
            clip.effects.append(otio.schema.LinearTimeWarp(name="Time Remap", time_scalar=float(filters.speed)
                                                           * (-1 if filters.reverse else 1)))
        if filters.variable_speed:
            s2v["unknown_picture" if kind == "video" else "unknown_sound"] = "variable speed (Time Remap keyframes)"
            self.notes.append(f"'{name}' at {self.where(s, e)}: variable speed not read; source range "
                              "read at its constant speed")
        if kind == "audio" and not is_exploded(track_el):
            index = _int(el, "sourcetrack/trackindex")
            if index is not None and index >= 1:
                s2v["source_channel"] = index - 1
        self.clip_markers(clip, el, filters, clip_rate, tc, rate)
        return clip

    def clip_markers(self, clip, el, filters: Filters, clip_rate: Fraction, tc: int, rate: Fraction) -> None:
        for m in el.findall("marker"):
            # marker in/out count like in/out: sequence-rate frames of the retimed clip
            speed = filters.speed_exact or Fraction(1)
            clip.markers.append(self.marker(m, clip_rate, tc, speed * clip_rate / rate))

    def marker(self, m: ET.Element, rate: Fraction, origin: int, scale: Fraction = Fraction(1)) -> otio.schema.Marker:
        mi = _int(m, "in", 0) or 0
        mo = _int(m, "out", -1)
        length = (mo - mi) * scale if mo is not None and mo > mi else 0
        mi = mi * scale
        return otio.schema.Marker(name=m.findtext("name") or "", comment=m.findtext("comment") or "",
                                  marked_range=otio.opentime.TimeRange(rt(origin + mi, rate), rt(length, rate)))

    def nested(self, el, seq_el, kind, name, first, dur, clip_rate, nesting, gain, locator, s, e):
        sid = seq_el.get("id")
        full = self.sequences.get(sid, seq_el) if sid else seq_el
        if len(full) == 0 or len(nesting) >= MAX_NESTING:
            return self._unknown(kind, name, first, dur, clip_rate, locator, s, e,
                                 f"nested sequence '{sid}' not found in the file")
        return self.stack(full, kind, name, first, dur, clip_rate, nesting, gain, locator, s, e,
                          {"nested_sequence": full.findtext("name") or sid or "nested sequence"})

    def stack(self, container, kind, name, first, dur, clip_rate, nesting, gain, locator, s, e, md):
        """A sequence (or a multiclip angle's clip: the same ``media/video|audio/track`` layout) as an
        OTIO Stack trimmed to the part the nesting clip item shows."""
        inner_name = container.findtext("name") or name
        inner_rate = rate_of(container, clip_rate)
        stack = otio.schema.Stack(name=name, source_range=otio.opentime.TimeRange(
            rt(first, clip_rate).rescaled_to(float(inner_rate)), dur))
        stack.metadata[NS] = md
        for track_el in container.findall(f"media/{kind}/track"):
            if kind == "audio" and not is_primary(track_el):
                continue
            for track in self.track(track_el, kind, inner_rate, {}, nesting + [inner_name], gain, locator):
                stack.append(track)
        if not len(stack):
            return self._unknown(kind, name, first, dur, clip_rate, locator, s, e,
                                 f"'{inner_name}' has no {kind} track")
        return stack

    def multiclip(self, el, multi, kind, name, first, dur, clip_rate, nesting, gain, locator, s, e):
        """FCP 7 multiclip: the active angle plays (``<activevideoangle>``/``<activeaudioangle>`` on
        the clip item or the multiclip, 1-based); without one, the picture/sound is unknown."""
        mid = multi.get("id")
        full = multi if len(multi) else next((m for m in self.root.iter("multiclip")
                                              if m.get("id") == mid and len(m)), multi)
        angles = full.findall("angle/clip") or full.findall("clip")
        tag = "activevideoangle" if kind == "video" else "activeaudioangle"
        active = _int(el, tag) or _int(multi, tag) or _int(full, tag)
        if not angles or active is None or not (1 <= active <= len(angles)):
            return self._unknown(kind, name, first, dur, clip_rate, locator, s, e,
                                 "multiclip without a readable active angle")
        angle = angles[active - 1]
        if angle.find(f"media/{kind}/track") is not None:
            return self.stack(angle, kind, name, first, dur, clip_rate, nesting, gain, locator, s, e,
                              {"multicam_angle": active})
        file_el = angle.find("file")
        ref, tc = self.media_reference(file_el, clip_rate)
        clip = otio.schema.Clip(name=angle.findtext("name") or name, media_reference=ref,
                                source_range=otio.opentime.TimeRange(rt(tc + first, clip_rate), dur))
        clip.metadata[NS] = {"multicam_angle": active, "nested_in": name}
        return clip

    def _unknown(self, kind, name, first, dur, clip_rate, locator, s, e, reason):
        self.notes.append(f"'{name}' at {self.where(s, e)}: {reason}; its "
                          f"{'picture' if kind == 'video' else 'sound'} is unknown")
        clip = otio.schema.Clip(name=name, media_reference=otio.schema.MissingReference(),
                                source_range=otio.opentime.TimeRange(rt(first, clip_rate), dur))
        clip.metadata[NS] = {("unknown_picture" if kind == "video" else "unknown_sound"): reason}
        return clip


def _retime_stack(stack: otio.schema.Stack, speed: Fraction) -> None:
    """A nested sequence played at ``speed``: the Stack's own time becomes nested frames / speed, so
    its source range is (in, record duration) and every item under it lasts its frames / speed
    (cuts rounded to whole frames), each clip playing its media ``speed`` times faster."""
    sr = stack.source_range
    stack.source_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(float(Fraction(sr.start_time.value) / speed), sr.start_time.rate), sr.duration)
    for track in stack:
        _retime_track(track, speed)


def _retime_track(track: otio.schema.Track, speed: Fraction) -> None:
    pos, prev = Fraction(0), 0
    for child in track:
        if isinstance(child, otio.schema.Transition):
            child.in_offset = otio.opentime.RationalTime(round(Fraction(child.in_offset.value) / speed),
                                                         child.in_offset.rate)
            child.out_offset = otio.opentime.RationalTime(round(Fraction(child.out_offset.value) / speed),
                                                          child.out_offset.rate)
            continue
        sr = child.source_range
        pos += Fraction(sr.duration.value)
        end = round(pos / speed)
        dur = otio.opentime.RationalTime(end - prev, sr.duration.rate)
        prev = end
        if isinstance(child, otio.schema.Stack):
            child.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(
                float(Fraction(sr.start_time.value) / speed), sr.start_time.rate), dur)
            for inner in child:
                _retime_track(inner, speed)
            continue
        child.source_range = otio.opentime.TimeRange(sr.start_time, dur)
        if isinstance(child, otio.schema.Clip):
            warp = next((e for e in child.effects if isinstance(e, otio.schema.LinearTimeWarp)), None)
            if isinstance(warp, otio.schema.FreezeFrame):
                continue
            if warp is not None:
                warp.time_scalar = float(Fraction(warp.time_scalar).limit_denominator(10**7) * speed)
            else:
                child.effects.append(otio.schema.LinearTimeWarp(name="nested sequence speed",
                                                                time_scalar=float(speed)))
            md = dict(child.metadata.get(NS, {}))
            md["speed"] = float(Fraction(md.get("speed", 1)).limit_denominator(10**7) * speed)
            child.metadata[NS] = md


def cut_point(tr: ET.Element) -> int:
    """Record frame where a transition passes from one clip to the next (FCP 7 alignment rules)."""
    s, e = _int(tr, "start", 0) or 0, _int(tr, "end", 0) or 0
    alignment = (tr.findtext("alignment") or "center").strip().lower()
    if alignment in ("end", "end-black"):
        return e
    if alignment in ("start", "start-black"):
        return s
    return (s + e) // 2


def read_xmeml(path: Path) -> tuple[otio.schema.Timeline, list[str]]:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise TimelineError(path, f"not well-formed XML ({exc})") from None
    except OSError as exc:
        raise TimelineError(path, f"cannot open: {exc.strerror or exc}") from None
    if root.tag != "xmeml":
        raise TimelineError(path, f"root element is <{root.tag}>, not <xmeml>")
    reader = Fcp7Reader(path, root)
    try:
        tl = reader.timeline()
    except TimelineError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed document is one clear line, not a traceback
        raise TimelineError(path, f"cannot read FCP 7 XML: {type(exc).__name__}: {exc}") from exc
    return tl, reader.notes
