"""Real footage (../shared/corpus/media): probe, frames, faces track and a tiny-model re-dub on each clip,
checked against an independent decode (plain PyAV, frames keyed by their presentation time).

Expected values come from the file itself: the decoder's own frames and timestamps. The grid rate is the
one probe reports; the check is that, on that grid, every frame shown is the source frame displayed at that
time (nothing lost, shifted or invented) and that every source frame the grid does not show is reported.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from fractions import Fraction

import av
import numpy as np
import pytest

from corpus_testkit import corpus_params
from s2v_toolkit.errors import MediaWarning
from media_factory import shown_on_grid

pytestmark = pytest.mark.corpus

CLIPS = corpus_params("media", "*.*")
TRACK_SPAN = 16  # grid frames tracked and re-dubbed per clip (keeps the check to a few minutes)


def _digest(rgb: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(rgb).tobytes(), digest_size=16).hexdigest()


# The conversion convention (docs/media.md, "Colour"), stated here independently of our pixel code:
# a frame's own matrix and range tags; where it has none, BT.709 for HD and up, BT.601 below, limited range.
_MATRIX = {1: "ITU709", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def _rgb(f) -> np.ndarray:
    """An independently decoded frame as uint8 R'G'B', converted with explicit matrix and range."""
    matrix = _MATRIX.get(int(f.colorspace), "ITU709" if f.height >= 720 else "ITU601")
    rng = "JPEG" if int(f.color_range) == 2 or f.format.name.startswith("yuvj") else "MPEG"
    return f.reformat(format="rgb24", src_colorspace=matrix, src_color_range=rng).to_ndarray()


def _median_step(times: list[Fraction]) -> Fraction | None:
    steps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    return steps[len(steps) // 2] if steps else None


def _planes(f) -> list[np.ndarray]:
    """A decoded frame's samples as stored, one byte array per plane (rows cut to the plane's width)."""
    bytes_per_sample = 2 if f.format.name.endswith(("10le", "12le", "16le")) else 1
    return [np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width * bytes_per_sample].copy()
            for p in f.planes]


def _same(a, b) -> bool:
    """Equal images: R'G'B' arrays, or lists of planes."""
    if isinstance(a, list):
        return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def _first_frame_interlaced(path) -> bool:
    with av.open(str(path)) as c:
        return bool(next(c.decode(video=0)).interlaced_frame)


def _display_times(container, stamps: list[Fraction]) -> list[Fraction]:
    """Each decoded frame's display time, the frames in the order the decoder gave them. AVI stores no
    presentation times: its stamps count packets in decode order, and the decoder gives the frames in display
    order, one per slot: the k-th frame out takes the k-th slot."""
    return sorted(stamps) if container.format.name == "avi" else stamps


class Decoded:
    """The independent decode: every displayed frame's time and pixel digest, in presentation order."""

    def __init__(self, path):
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            tb = Fraction(s.time_base)
            frames = []
            self.undecodable = 0  # packets the decoder refused
            self.cut_mid_gop = None  # the stream's first packet is neither a keyframe nor hidden by an edit list
            stamped = []  # presentation times of the packets that carry one
            refused = []  # times of packets the decoder refused
            for packet in c.demux(s):  # the decoder drops frames an edit list hides
                if self.cut_mid_gop is None and packet.size:
                    self.cut_mid_gop = not packet.is_keyframe and not packet.is_discard
                if packet.size and not packet.is_discard and packet.pts is not None:
                    stamped.append(packet.pts)
                try:
                    out = packet.decode()
                except av.error.FFmpegError:
                    self.undecodable += 1
                    if packet.size and not packet.is_discard and packet.pts is not None:
                        refused.append(packet.pts * tb)
                    continue
                for f in out:
                    t = f.pts if f.pts is not None else f.dts
                    frames.append((None if t is None else t * tb, _rgb(f)))
            if frames and all(t is None for t, _ in frames):
                # a raw elementary stream: no times at all; the k-th frame out is shown at k / rate
                rate = Fraction(s.average_rate or s.guessed_rate or 25)
                frames = [(Fraction(k) / rate, rgb) for k, (_, rgb) in enumerate(frames)]
            self.packet_times = None
            if stamped and frames and frames[0][0] is not None:
                # packets before the first frame out or after the last that gave no frame and no error: the
                # leading frames of an open GOP whose references the file does not hold, a truncated last
                # packet. (Packets in between that show nothing, VP9's hidden frames, are not frames at all.)
                lo, hi = min(t for t, _ in frames), max(t for t, _ in frames)
                lost = sorted({t * tb for t in stamped if t * tb < lo or t * tb > hi} | set(refused))
                shown_times = sorted(t for t, _ in frames)
                step = _median_step(shown_times)
                if step and _median_step(sorted({t * tb for t in stamped})) * 2 == step:
                    # a packet per field (field-coded interlaced H.264): a frame is a pair of field packets,
                    # at its first field's time, so only the lost times on the frames' own grid are frames
                    lost = [t for t in lost if (t - lo) % step == 0]
                if lost or self.undecodable:
                    self.undecodable += len(lost)
                    # every displayed frame's time, decodable or not: the frames a reader places on its grid
                    self.packet_times = sorted(set(lost) | {t for t, _ in frames})
            times = _display_times(c, [t for t, _ in frames])
            frames = [(t, rgb) for t, (_, rgb) in zip(times, frames)]
        frames.sort(key=lambda x: x[0])
        self.times = [t for t, _ in frames]
        self.digests = [_digest(a) for _, a in frames]

    def grid_times(self) -> list[Fraction]:
        """The source frames' times as a reader places them: the decoded frames' times, or for a stream with
        undecodable packets every displayed packet's time (those frames show a neighbour, with a warning)."""
        return self.packet_times or self.times

    def shown_at(self, fps: Fraction, n: int) -> list[int]:
        """For each grid frame, the source frame it must show (the rule: media_factory.shown_on_grid)."""
        return shown_on_grid(self.times, fps, n)


def _edit_list_hides_packets(path) -> bool:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return any(p.is_discard for p in c.demux(s) if p.size)


def _s2vt(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "s2v_toolkit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def generator():
    from s2v_toolkit.pipelines.redub_sampler import load_generator

    return load_generator(tiny=True, device="cpu")


def _span(info, decoded) -> tuple[int, int]:
    """The checked range: around the first irregular timestamp where the clip has one, else the middle."""
    n = info.video.frame_count
    shown = decoded.shown_at(info.video.fps, n)
    irregular = [i for i in range(1, n) if shown[i] != shown[i - 1] + 1]
    centre = irregular[0] if irregular else n // 2
    a = max(0, min(centre - TRACK_SPAN // 2, n - TRACK_SPAN))
    return a, min(n, a + TRACK_SPAN) - 1


@pytest.mark.parametrize("clip", CLIPS)
def test_probe_and_every_frame_by_time(clip, tmp_path):
    from s2v_toolkit.media import VideoReader, probe

    info = probe(clip)
    v = info.video
    decoded = Decoded(clip)
    # Packets the decoder gives no frame for (a stream cut mid-GOP, an open GOP's leading frames, a truncated
    # or damaged packet) are still source frames on the grid: the reader shows the nearest good frame there,
    # with a warning ("substituted"), and every other frame exactly
    times = decoded.grid_times()
    digest_at = dict(zip(decoded.times, decoded.digests))
    n_src = len(times)
    # probe: the real frame count, edit lists, and VFR as the timestamps say
    assert v.source_frames == n_src
    if _edit_list_hides_packets(clip):
        assert v.edit_list and v.discarded_packets > 0
    deltas = [b - a for a, b in zip(times, times[1:])]
    regular = max(deltas) - min(deltas) < Fraction(1, 1000)
    if regular:  # a constant-rate file: its grid is its own spacing (to the time base's rounding), one to one
        assert abs(1 / v.fps - sorted(deltas)[len(deltas) // 2]) < Fraction(1, 1000)
        assert not v.vfr and v.frame_count == n_src
    else:
        assert v.fps >= 1 / max(deltas) and v.vfr == (v.duplicated + v.dropped > 0)
    shown = shown_on_grid(times, v.fps, v.frame_count)
    # the grid ends with the source: its last frame is the source's last, shown no more than the spacing says
    assert shown[-1] == n_src - 1 and v.frame_count <= (times[-1] - times[0] + max(deltas)) * v.fps + 1
    never_shown = sorted(set(range(n_src)) - set(shown))
    assert v.dropped == len(never_shown)
    # every grid frame, read in chunks as the pipelines do: exactly the frame displayed at its time
    degraded = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MediaWarning)  # the substitutions' warnings: checked through the map
        with VideoReader(clip, info) as reader:
            for first in range(0, v.frame_count, 32):
                count = min(32, v.frame_count - first)
                frames, fmap = reader.read_mapped(first, count)
                for i in range(count):
                    want = digest_at.get(times[shown[first + i]])
                    if want is None:
                        assert fmap.kinds[i] == "substituted", f"grid frame {first + i}: undecodable, not said"
                    else:
                        assert _digest(frames[i]) == want, f"grid frame {first + i}"
                        if fmap.kinds[i] == "degraded":  # after a damaged packet: concealment depends on the path
                            degraded.add(first + i)
            # and random seeks
            for g in np.random.default_rng(1).integers(0, v.frame_count, 6):
                want = digest_at.get(times[shown[g]])
                if want is not None and int(g) not in degraded:
                    assert _digest(reader.read(int(g), 1)[0]) == want, f"seek to {g}"
    # s2vt probe / s2vt frames
    run = _s2vt("probe", "--json", clip)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["video"]["frame_count"] == v.frame_count
    g = v.frame_count // 3
    run = _s2vt("frames", clip, "--start", g, "--count", 2, "-o", tmp_path, "--as-stored")
    assert run.returncode == 0, run.stderr
    import cv2

    for k in (g, g + 1):
        png = cv2.cvtColor(cv2.imread(str(tmp_path / f"{clip.stem}_{k:06d}.png")), cv2.COLOR_BGR2RGB)
        want = digest_at.get(times[shown[k]])
        assert want is None or _digest(png) == want, f"s2vt frames {k}"


def _speech(seconds, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


@pytest.mark.parametrize("clip", CLIPS)
def test_faces_track_and_tiny_redub_keep_every_frame(clip, tmp_path, generator):
    import soundfile as sf

    from s2v_toolkit.faces import FaceAnalysis, find_landmarker_bundle
    from s2v_toolkit.media import probe, read_frames
    from s2v_toolkit.pipelines.redub import RedubError, RedubSettings, redub_video, sidecar_path
    from s2v_toolkit.pipelines.generation_inputs import GenerationSettings

    if find_landmarker_bundle() is None:
        pytest.skip("face_landmarker.task not built: run `s2vt faces setup` first")
    info = probe(clip)
    v = info.video
    first = Decoded(clip)
    a, b = _span(info, first)
    decoded = first
    times = decoded.grid_times()
    shown = shown_on_grid(times, v.fps, v.frame_count)
    # faces track over the range (VFR included): no crash, every grid frame of the range analysed
    run = _s2vt("faces", "track", clip, "--range", f"{a}-{b}", "--json", "--landmarks")
    assert run.returncode == 0, run.stderr
    analysis = FaceAnalysis.from_dict(json.loads(run.stdout))
    assert (analysis.start, analysis.end) == (a, b) and len(analysis.faces_per_frame) == b - a + 1

    # a tiny-model re-dub of the range into lossless FFV1: pixels outside the face crop are the source's
    line = tmp_path / "line.wav"
    fps = float(v.fps)
    best = max(analysis.tracks, key=lambda t: len(t.frames), default=None)
    found = sorted(int(f) for f in best.frames) if best is not None else []
    line_start = found[0] if found else a
    line_len = 6
    sf.write(line, _speech(line_len / fps), 16000)
    out = tmp_path / "redub.mkv"
    settings = RedubSettings(crop_size=64, motion_frames=5,
                             generation=GenerationSettings(steps=2, infer_frames=8, seed=3, guidance=4.5))
    try:
        doc = redub_video(clip, line, out, generator=generator, settings=settings, frame_range=(a, b),
                          line_start=line_start, analysis=analysis,
                          face=best.track_id if best is not None else None)
    except RedubError as exc:
        # refused in one line, nothing written, only where the tracker found no face through the line, or where
        # the mouth is covered on most of it (the frames named)
        line_frames = set(range(line_start, line_start + line_len))
        reason = str(exc)
        assert not line_frames <= set(found) or "mouth occluded" in reason, exc
        assert "\n" not in reason and not out.exists()
        return
    out_info = probe(out).video
    assert out_info.frame_count == b - a + 1 and out_info.fps == v.fps
    assert out_info.field_order == v.field_order or not v.interlaced, "the field order was not kept"
    statuses = [f["status"] for f in doc["report"]["frames"]]
    interlaced = _first_frame_interlaced(clip)
    if interlaced:
        # Interlaced 4:2:0 frames convert to R'G'B' field by field (the decoder flags them), the lossless copy
        # (FFV1 has no per-frame flag) as one picture: R'G'B' would differ by chroma siting alone, so the
        # decoded samples themselves are compared (the same planes as stored, both sides)
        with av.open(str(out)) as c:
            result = [_planes(f) for f in c.decode(video=0)]
    else:
        result = read_frames(out, 0, b - a + 1)
    src_pix = {}
    def rotation(path):
        with av.open(str(path)) as c:
            return int(round(next(c.decode(video=0)).rotation / 90)) * 90 % 360

    # the output plays the way the source does: its display matrix is kept
    assert rotation(out) == rotation(clip), "the display rotation was not kept"
    with av.open(str(clip)) as c:  # the source frames of the range, by time, decoded again independently
        s = c.streams.video[0]
        want = {times[shown[g]] for g in range(a, b + 1)}
        avi = c.format.name == "avi"  # the k-th frame out takes the k-th slot (_display_times): decoded.times[k]
        for k, f in enumerate(c.decode(s)):
            t = decoded.times[k] if avi else f.pts * Fraction(s.time_base)
            if t in want:
                src_pix[t] = _planes(f) if interlaced else _rgb(f)
    for k, status in enumerate(statuses):
        src = src_pix.get(times[shown[a + k]])
        if src is None:  # an undecodable packet's slot: the reader shows a neighbour there, with a warning
            continue
        if not interlaced:
            assert result[k].reshape(-1, 3).max() > 0, f"grid frame {a + k} is black"
        if status != "generated":
            assert _same(result[k], src), f"grid frame {a + k} ({status}) is not its source frame"
        else:
            changed = result[k][0] != src[0] if interlaced else np.any(result[k] != src, axis=2)
            assert changed.mean() < 0.5, f"grid frame {a + k}: the re-dub changed more than the face"
    side = json.loads(sidecar_path(out).read_text())
    fm = side["source"]["frame_map"]
    dup_expected = [g for g in range(a, b + 1) if g > 0 and shown[g] == shown[g - 1]]
    assert fm["duplicated"] == dup_expected and fm["count"] == b - a + 1 and not fm["substituted"]
