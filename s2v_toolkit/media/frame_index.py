"""Where each frame of a video really sits in time, and how it maps onto the editor's frame grid.

A file's declared frame count and rate are claims; its packets' presentation timestamps are what a
player shows. :func:`index_frames` demuxes every video packet once (no decoding) and keeps the
timestamps of the frames that are displayed: packets an edit list discards are left out, and a file
without timestamps (AVI) gets them from packet order at its constant rate.

The grid: frame ``i`` of a clip at rate ``R`` is the frame displayed at ``start + i / R``, where
``start`` is the first displayed frame's time. Each source frame goes to the nearest grid slot; a slot
no source frame lands on shows the frame still displayed at its time (a repeat: ``duplicated``), and a
source frame that loses its slot to a nearer one and is not displayed at any other slot's time is
``dropped``. Constant-rate files map one to one.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from fractions import Fraction

import av

from s2v_toolkit.media.timecode import snap_rate

# Timestamp deviation from the grid (in frames) above which timestamps are called irregular.
JITTER_TOLERANCE = 0.1


@dataclass
class FrameIndex:
    """Source frames' presentation times and their placement on a frame grid at ``fps``."""

    time_base: Fraction
    fps: Fraction
    start_pts: int  # the grid's origin: the first displayed frame's pts
    source_pts: list[int]  # presentation times of the displayed source frames, sorted
    slot_source: list[int]  # for each grid slot, the index of the source frame it shows
    dropped: list[int] = field(default_factory=list)  # source frames no grid slot shows
    declared_frames: int | None = None  # what the container claims
    discarded_packets: int = 0  # packets an edit list hides (never displayed)
    synthesized: bool = False  # timestamps came from packet order (the file has none)
    max_jitter: float = 0.0  # largest |pts - grid time| of a shown frame, in frames

    @property
    def frame_count(self) -> int:
        return len(self.slot_source)

    @property
    def source_frames(self) -> int:
        return len(self.source_pts)

    @property
    def duplicated(self) -> list[int]:
        """Grid slots that repeat the previous slot's source frame."""
        s = self.slot_source
        return [i for i in range(1, len(s)) if s[i] == s[i - 1]]

    @property
    def vfr(self) -> bool:
        return bool(self.dropped) or len(self.slot_source) != len(self.source_pts)

    @property
    def regular(self) -> bool:
        return not self.vfr and self.max_jitter <= JITTER_TOLERANCE

    def seconds(self, pts: int) -> Fraction:
        """A pts as seconds from the grid's origin."""
        return (pts - self.start_pts) * self.time_base

    def slot_of_source(self, k: int) -> int:
        return _slot(self.source_pts[k], self.start_pts, self._period)

    @property
    def _period(self) -> Fraction:
        return 1 / (self.fps * self.time_base)

    def source_at_pts(self, pts: int) -> int | None:
        """The source frame whose timestamp is ``pts`` (a decoder's frame), tolerating small rounding."""
        k = bisect.bisect_left(self.source_pts, pts)
        best = None
        for j in (k - 1, k):
            if 0 <= j < len(self.source_pts) and (best is None or
                                                    abs(self.source_pts[j] - pts) < abs(self.source_pts[best] - pts)):
                best = j
        if best is None or abs(self.source_pts[best] - pts) > self._period / 4:
            return None
        return best

    def summary(self) -> dict:
        return {"frame_count": self.frame_count, "source_frames": self.source_frames,
                "duplicated": len(self.duplicated), "dropped": len(self.dropped),
                "max_jitter_frames": round(self.max_jitter, 4)}


def _slot(pts: int, start: int, period: Fraction) -> int:
    return math.floor((pts - start) / period + Fraction(1, 2))


def place_on_grid(source_pts: list[int], start: int, fps: Fraction, time_base: Fraction,
                  end_pts: int | None = None) -> tuple[list[int], list[int], float]:
    """(slot_source, dropped, max_jitter) for sorted ``source_pts`` on a grid at ``fps`` from ``start``.

    ``end_pts``: when the last frame stops being displayed (its pts plus its duration); the grid
    runs to the slot nearest that time, so a long last frame may cover more than one slot.
    """
    period = 1 / (fps * time_base)
    kept: dict[int, int] = {}  # slot -> source frame nearest that slot's time
    for k, p in enumerate(source_pts):
        s = _slot(p, start, period)
        # Of two frames near one slot the nearer keeps it (ties: the earlier).
        if s not in kept or abs(p - start - s * period) < abs(source_pts[kept[s]] - start - s * period):
            kept[s] = k
    if not kept:
        return [], [], 0.0
    jitter = max(float(abs(source_pts[k] - start - s * period) / period) for s, k in kept.items())
    count = max(kept) + 1
    if end_pts is not None:
        count = max(count, math.floor((end_pts - start) / period + Fraction(1, 2)))
    slots: list[int] = []
    for s in range(count):
        if s in kept:
            slots.append(kept[s])
        else:  # no frame near this slot's time: it shows the frame still displayed then
            t = start + s * period
            slots.append(max(0, bisect.bisect_right(source_pts, math.floor(t)) - 1))
    shown = set(slots)
    return slots, [k for k in range(len(source_pts)) if k not in shown], jitter


def _median(values: list[int]) -> float:
    v = sorted(values)
    return float(v[len(v) // 2]) if v else 0.0


def _candidate_rates(stream, deltas: list[int], time_base: Fraction) -> list[Fraction]:
    rates = []
    for r in (stream.average_rate, stream.base_rate, stream.guessed_rate):
        if r and 0 < float(r) <= 1000:
            rates.append(snap_rate(Fraction(r)))
    med = _median([d for d in deltas if d > 0])
    if med > 0:
        rates.append(snap_rate(1 / (Fraction(med).limit_denominator(1_000_000) * time_base)))
    seen: list[Fraction] = []
    for r in rates:
        if r not in seen:
            seen.append(r)
    return seen


def choose_rate(stream, source_pts: list[int], time_base: Fraction, end_pts: int | None) -> Fraction:
    """The grid rate: the first rate the file claims that places every frame one to one; for a truly
    variable-rate file, the stream's base rate (FFmpeg's r_frame_rate, the rate of its shortest
    regular spacing) where plausible, else the median spacing's rate: a grid at least as fine as most
    frames, so that frames are duplicated rather than dropped."""
    deltas = [b - a for a, b in zip(source_pts, source_pts[1:])]
    cands = _candidate_rates(stream, deltas, time_base)
    if not cands:
        raise ValueError("no frame rate")
    if len(source_pts) < 2:
        return cands[0]
    for r in cands:
        slots, dropped, jitter = place_on_grid(source_pts, source_pts[0], r, time_base, end_pts)
        if not dropped and len(slots) == len(source_pts) and jitter <= 0.25:
            return r
    med = _median([d for d in deltas if d > 0])
    med_rate = 1 / (Fraction(med).limit_denominator(1_000_000) * time_base) if med else cands[0]
    base = stream.base_rate
    if base and 0.9 * float(med_rate) <= float(base) <= 2.5 * float(med_rate) and float(base) <= 240:
        return snap_rate(Fraction(base))
    return snap_rate(med_rate)


def _vp9_shows(first_byte: int) -> bool:
    """Whether a VP9 frame (its uncompressed header's first byte) is displayed: ``show_existing_frame`` or
    ``show_frame`` (VP9 bitstream specification, 6.2; profile 3 has one reserved bit more)."""
    profile = ((first_byte >> 5) & 1) | (((first_byte >> 4) & 1) << 1)
    at = 3 if profile < 3 else 2  # the show_existing_frame bit; frame_type, then show_frame follow it
    return bool((first_byte >> at) & 1) or bool((first_byte >> (at - 2)) & 1)


def packet_shows_frame(codec: str, data) -> bool:
    """False for a VP8 / VP9 packet that decodes a frame without displaying it (an alternate reference
    frame that the encoder stored as a packet of its own: WebM files from older libvpx muxers have such
    packets, stamped 1 ms before the next shown frame). A VP9 superframe (several frames in one packet,
    an index at its end) shows if any of its frames does. Every other codec: True."""
    if codec not in ("vp8", "vp9") or not len(data):
        return True
    if codec == "vp8":
        return bool((data[0] >> 4) & 1)  # the frame tag's show_frame bit
    last = data[-1]
    if last & 0xE0 == 0xC0:  # a superframe index: frame count and size width in its marker byte
        count, width = (last & 0x7) + 1, ((last >> 3) & 0x3) + 1
        size = 2 + width * count
        if len(data) >= size and data[-size] == last:
            offset = 0
            for i in range(count):
                at = len(data) - size + 1 + i * width
                frame = int.from_bytes(bytes(data[at:at + width]), "little")
                if offset < len(data) and frame and _vp9_shows(data[offset]):
                    return True
                offset += frame
            return False
    return _vp9_shows(data[0])


_FIELD_PROBE_PACKETS = 96  # frame-coded: >= 0.8 frames out per packet even with a 16-frame decoder delay


def _pair_fields(pts: list[int], frame_pts: set[int]) -> tuple[list[int], int]:
    """Packet times of a field-coded stream -> the frames' times, and the field period (0: no pairs).

    The two fields of a frame are a field period apart (the shortest spacing) and the frame takes its
    first field's time; a frame coded as one picture (adaptive PAFF) has no partner at that spacing.
    ``frame_pts``: times the decoder gave frames at, over the first packets, which fixes the pairing's
    phase where it is ambiguous."""
    if len(pts) < 2:
        return pts, 0
    field = int(_median([b - a for a, b in zip(pts, pts[1:]) if b > a]))
    out, pairs, i = [], 0, 0
    while i < len(pts):
        t = pts[i]
        partner = i + 1 < len(pts) and abs(pts[i + 1] - t - field) <= max(1, field // 10)
        if partner and pts[i + 1] in frame_pts:
            partner = False  # the decoder showed the next one as a frame: this one stands alone
        out.append(t)
        pairs += partner
        i += 2 if partner else 1
    return out, field if pairs else 0


def _spacing_doubles(packet_pts: list[int], frame_pts: list[int]) -> bool:
    """Whether the decoder's frames are twice as far apart as the packets (a packet per field), rather
    than fewer frames out only because the decoder still holds some."""
    steps = [b - a for a, b in zip(frame_pts, frame_pts[1:]) if b > a]
    fields = [b - a for a, b in zip(packet_pts, packet_pts[1:]) if b > a]
    if not steps or not fields:
        return False
    return abs(_median(steps) - 2 * _median(fields)) <= 0.1 * _median(steps)


def _decode(packet) -> list:
    """The frames a packet gives the decoder's output (none for a damaged packet: its frame never comes out)."""
    try:
        return packet.decode()
    except av.error.FFmpegError:
        return []


def index_frames(container, stream, fps: Fraction | None = None) -> FrameIndex:
    """Demux every packet of ``stream`` (from the file's start) and place its frames on a grid.

    ``fps``: the grid rate; default :func:`choose_rate`. Leaves the container at its end.
    """
    time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    pts: list[int] = []
    durations: dict[int, int] = {}
    discarded = 0
    missing = 0
    dts_only: list[int] = []
    codec = stream.codec_context.name
    decoded: int | None = None  # frames out of the decoder, counted where packets carry no time at all
    # Interlaced H.264 may code each field as its own picture (PAFF: broadcast captures, AVCHD camcorders),
    # and a transport stream then carries a packet per field, each with its own time: the decoder's
    # output on the first packets says whether a packet is a frame or a field (see _pair_fields)
    probe_fields = codec == "h264" and int(getattr(stream.codec_context, "field_order", 0) or 0) >= 2
    prefix_in = 0
    prefix_out: list[int] = []
    for packet in container.demux(stream):
        if packet.size == 0:  # the flush packet at the end of the stream
            if decoded is not None:
                decoded += len(_decode(packet))
            elif probe_fields and prefix_in < _FIELD_PROBE_PACKETS:
                # a file shorter than the probe: the frames the decoder still holds count too
                prefix_out += [f.pts for f in _decode(packet) if f.pts is not None]
            continue
        if decoded is None and not pts and packet.pts is None and packet.dts is None:
            # A raw elementary stream (.h264, .hevc): no times, and a packet is not always a frame (a
            # field-coded interlaced stream has one packet per field): the decoder says what is a frame.
            decoded = 0
        if decoded is not None:
            decoded += len(_decode(packet))
        if packet.is_discard:  # an edit list hides it: decoded as a reference, never displayed
            discarded += 1
            continue
        if codec in ("vp8", "vp9") and not packet_shows_frame(codec, memoryview(packet)):
            continue  # a hidden reference frame: decoded, never displayed, so not a source frame
        p = packet.pts if packet.pts is not None else None
        if p is None:
            missing += 1
            dts_only.append(packet.dts if packet.dts is not None else -1)
            continue
        pts.append(p)
        if packet.duration:
            durations[p] = int(packet.duration)
        if probe_fields and prefix_in < _FIELD_PROBE_PACKETS:
            prefix_in += 1
            prefix_out += [f.pts for f in _decode(packet) if f.pts is not None]
    if probe_fields and prefix_in >= 8 and len(prefix_out) < 0.7 * prefix_in and \
            _spacing_doubles(sorted(set(pts))[:prefix_in], sorted(set(prefix_out))):
        pts, field = _pair_fields(sorted(set(pts)), set(prefix_out))
        if fps is None and field:  # the frame rate is half the field rate the packets' times show
            fps = snap_rate(1 / (2 * field * time_base))
    synthesized = False
    if missing and (not pts or missing > len(pts)):
        # No presentation times (AVI and other packet-order formats): frame k is displayed at k / rate.
        rate = snap_rate(Fraction(stream.average_rate or stream.base_rate or stream.guessed_rate or 25))
        step = 1 / (rate * time_base)
        first = min([p for p in dts_only if p >= 0] + pts, default=0)
        count = decoded if decoded else len(pts) + missing
        pts = [first + round(k * step) for k in range(count)]
        synthesized = True
        fps = fps or rate
    pts = sorted(set(pts))
    if not pts:
        return FrameIndex(time_base, fps or Fraction(25), 0, [], [], declared_frames=int(stream.frames or 0) or None,
                          discarded_packets=discarded)
    deltas = [b - a for a, b in zip(pts, pts[1:])]
    med = _median(deltas)
    last_dur = durations.get(pts[-1]) or med or 0
    if med and last_dur > 2 * med:
        last_dur = med  # a bogus last duration must not invent frames
    end_pts = pts[-1] + int(last_dur) if last_dur else None
    if fps is None:
        fps = choose_rate(stream, pts, time_base, end_pts)
    slots, dropped, jitter = place_on_grid(pts, pts[0], fps, time_base, end_pts)
    return FrameIndex(time_base=time_base, fps=fps, start_pts=pts[0], source_pts=pts, slot_source=slots,
                      dropped=dropped, declared_frames=int(stream.frames or 0) or None, discarded_packets=discarded,
                      synthesized=synthesized, max_jitter=jitter)
