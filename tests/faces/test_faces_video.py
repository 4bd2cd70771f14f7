"""Whole shots: per-range reports (stand-in detector), and the real landmarker on moving public-domain photos.

Tests marked ``needs_bundle`` use the real mediapipe model and skip when face_landmarker.task has
not been built (`s2vt faces setup`).
"""

import json

import cv2
import matplotlib.cbook as cbook
import matplotlib.image as mpimg
import numpy as np
import pytest
from skimage import data

from s2v_toolkit.faces import FaceAnalysis, FaceObservation, analyze_frames, find_landmarker_bundle
from s2v_toolkit.faces import landmarks as L
from s2v_toolkit.faces.detector import scan_tiles, to_rgb8
from s2v_toolkit.media import VideoReader
from s2v_toolkit.faces.synthetic import posed_face, turned_view

needs_bundle = pytest.mark.skipif(find_landmarker_bundle() is None,
                                  reason="face_landmarker.task not built: run `s2vt faces setup` first")


class ScriptedDetector:
    """Stand-in for the landmarker: returns prepared observations per frame index."""

    def __init__(self, script):
        self.script = script
        self.seen = []

    def detect(self, frame, index):
        self.seen.append((index, frame.shape, frame.dtype))
        return [FaceObservation(lm) for lm in self.script.get(index, [])]


def test_per_range_reports_for_missing_small_lost_and_edge_faces():
    script = {}
    for k in range(10, 60):
        if 30 <= k < 34:
            continue  # lost for 4 frames
        x = 300 if k < 45 else 300 + 60 * (k - 44)  # then walks out of the right edge
        script[k] = [posed_face((x, 240), 150)]
    for k in range(20, 40):
        script.setdefault(k, []).append(posed_face((100, 100), 30))  # a tiny background face
    frames = ((k, np.zeros((480, 640, 3), np.uint8)) for k in range(5, 65))
    a = analyze_frames(frames, 25.0, ScriptedDetector(script), start=5, end=64)
    kinds = {(i.kind, i.start, i.end) for i in a.issues}
    assert ("no_face", 5, 9) in kinds and ("no_face", 60, 64) in kinds
    big = next(t for t in a.tracks if t.first_frame == 10)
    small = next(t for t in a.tracks if t.first_frame == 20)
    assert ("face_lost", 30, 33) in kinds
    assert ("face_too_small", 20, 39) in {(i.kind, i.start, i.end) for i in a.issues if i.track_id == small.track_id}
    edge = [i for i in a.issues if i.kind == "face_at_edge" and i.track_id == big.track_id]
    assert edge and edge[0].start > 45 and edge[-1].end == 59
    doc = json.loads(json.dumps(a.to_dict()))
    back = FaceAnalysis.from_dict(json.loads(json.dumps(a.to_dict(with_landmarks=True))))
    assert [i.to_dict() for i in back.issues] == doc["issues"]
    assert np.allclose(back.track(big.track_id).landmarks_at(40), big.landmarks_at(40), atol=0.01)
    t0 = next(t for t in doc["tracks"] if t["track_id"] == big.track_id)
    assert t0["coverage"] == pytest.approx(46 / 60, abs=1e-3)
    assert 0 < t0["confidence"] < 1
    assert "frames 5-9" in a.summary()


def test_frames_of_any_depth_reach_the_detector_as_rgb8():
    grey = np.full((48, 64), 128, np.uint8)
    ten_bit = np.full((48, 64, 3), 1023, np.uint16)
    sixteen = np.full((48, 64, 3), 65535, np.uint16)
    assert to_rgb8(grey).shape == (48, 64, 3)
    assert to_rgb8(ten_bit).max() == 255 and to_rgb8(sixteen).max() == 255
    assert to_rgb8(np.full((4, 4, 3), 0.5, np.float32)).max() == 128
    assert to_rgb8(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)
    det = ScriptedDetector({})
    analyze_frames([(0, grey), (1, ten_bit)], 25, det, start=0, end=1)
    assert [s[1:] for s in det.seen] == [((48, 64, 3), np.uint8)] * 2


def test_scan_tiles_cover_the_frame_down_to_the_smallest_face():
    tiles = scan_tiles(1280, 720, 64)
    sides = sorted({s for _, _, s in tiles}, reverse=True)
    assert sides == [720, 360]  # 180 px tiles would find faces from 36 px: smaller than asked for
    for side in sides:
        cover = np.zeros((720, 1280), bool)
        for x, y, s in tiles:
            if s == side:
                cover[y:y + s, x:x + s] = True
        assert cover.all()


# ---- the real landmarker -------------------------------------------------------------------------

def _similarity(scale, angle_deg, center, target):
    """2x3 matrix: rotate/scale about ``center`` then move ``center`` to ``target``."""
    m = cv2.getRotationMatrix2D(tuple(map(float, center)), angle_deg, scale)
    m[:, 2] += np.asarray(target, np.float64) - np.asarray(center, np.float64)
    return m


@pytest.fixture(scope="module")
def reference_landmarks():
    from s2v_toolkit.faces import FaceLandmarkDetector

    astro = np.ascontiguousarray(data.astronaut())
    with cbook.get_sample_data("grace_hopper.jpg") as fh:
        hopper = np.ascontiguousarray(mpimg.imread(fh))
    with FaceLandmarkDetector(video=False) as det:
        return astro, det.detect(astro)[0].landmarks, hopper, det.detect(hopper)[0].landmarks


@needs_bundle
def test_track_follows_a_real_face_moving_zooming_and_rotating_at_720p(reference_landmarks):
    astro, ref, _, _ = reference_landmarks
    n = 40
    frames, truth = [], []
    for k in range(n):
        m = _similarity(1.0 + 0.6 * k / n, -8 + 16 * k / n, (256, 256), (420 + 8 * k, 330 + 2 * k))
        frames.append(cv2.warpAffine(astro, m, (1280, 720), flags=cv2.INTER_LINEAR, borderValue=(70, 70, 70)))
        truth.append(ref[:, :2] @ m[:, :2].T + m[:, 2])
    from s2v_toolkit.faces import FaceLandmarkDetector

    with FaceLandmarkDetector(fps=25) as det:
        a = analyze_frames(enumerate(frames), 25.0, det, start=0, end=n - 1)
    assert len(a.tracks) == 1
    t = a.tracks[0]
    assert len(t.frames) >= n - 1  # a face is found on (almost) every frame
    rigid = list(L.RIGID_POINTS)
    err = np.array([np.linalg.norm(t.smoothed[i][rigid, :2] - truth[f][rigid], axis=1).mean()
                    for i, f in enumerate(t.frames)])
    assert np.median(err) < 3.0 and err.max() < 6.0, err.round(2)
    # the aligned crop is stable: the face only moves by a similarity, so in the crop its true
    # landmarks should stay put from frame to frame
    from s2v_toolkit.faces import track_crop_transforms

    crops = track_crop_transforms(t.smoothed, 512)
    in_crop = np.stack([c.to_crop(truth[f][rigid]) for c, f in zip(crops, t.frames)])
    frame_to_frame = np.linalg.norm(np.diff(in_crop, axis=0), axis=2).mean(1)
    assert np.median(frame_to_frame) < 1.0 and frame_to_frame.max() < 3.0, frame_to_frame.round(2)


def _paste(canvas, img, m, size):
    """Warp ``img`` by ``m`` into ``canvas`` over a rectangle of ``size`` = (w, h) at its top-left."""
    warped = cv2.warpAffine(img, m, (canvas.shape[1], canvas.shape[0]))
    mask = cv2.warpAffine(np.ones(img.shape[:2], np.uint8), m, (canvas.shape[1], canvas.shape[0]),
                          flags=cv2.INTER_NEAREST)
    canvas[mask > 0] = warped[mask > 0]


@needs_bundle
def test_identities_hold_when_two_real_faces_cross(reference_landmarks):
    astro, ref_a, hopper, ref_h = reference_landmarks
    astro_face = astro[40:220, 130:320]   # the astronaut's head
    a_off = np.array([130, 40])
    hop_face = hopper[60:420, 110:430]    # Grace Hopper's head
    h_off = np.array([110, 60])
    n = 50
    frames, truth = [], {"astro": [], "hopper": []}
    for k in range(n):
        canvas = np.full((720, 1280, 3), 60, np.uint8)
        ma = _similarity(1.4, 0, (95, 90), (340 + 12 * k, 360))    # walks right, behind
        mh = _similarity(0.7, 0, (160, 180), (940 - 12 * k, 370))  # walks left, in front
        _paste(canvas, astro_face, ma, None)
        _paste(canvas, hop_face, mh, None)
        frames.append(canvas)
        truth["astro"].append((ref_a[1, :2] - a_off) @ ma[:, :2].T + ma[:, 2])
        truth["hopper"].append((ref_h[1, :2] - h_off) @ mh[:, :2].T + mh[:, 2])
    from s2v_toolkit.faces import FaceLandmarkDetector

    with FaceLandmarkDetector(fps=25) as det:
        a = analyze_frames(enumerate(frames), 25.0, det, start=0, end=n - 1)
    owners = {}
    for t in a.tracks:
        for i, f in enumerate(t.frames):
            nose = t.landmarks[i][1, :2]
            d = {who: np.linalg.norm(nose - truth[who][f]) for who in truth}
            who = min(d, key=d.get)
            assert d[who] < 30, f"track {t.track_id} frame {f} is on nobody ({d})"
            owners.setdefault(t.track_id, set()).add(who)
    assert all(len(w) == 1 for w in owners.values()), owners  # no track ever jumps to the other face
    astro_tracks = [tid for tid, w in owners.items() if w == {"astro"}]
    assert len(astro_tracks) == 1, "the astronaut must keep one identity through the occlusion"
    t = a.track(astro_tracks[0])
    assert t.first_frame <= 2 and t.last_frame >= n - 3


def _write(path, frames, fps=25, preset=None):
    from fractions import Fraction

    from s2v_toolkit.media import write_video

    return write_video(path, np.stack(frames), Fraction(fps), preset=preset)


def _astro_shot(n=12):
    head = cv2.resize(data.astronaut()[0:320, 96:416], (360, 360), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(n):
        f = np.full((360, 640, 3), 80, np.uint8)
        f[:, 100 + 4 * k:460 + 4 * k] = head
        frames.append(f)
    return frames


@needs_bundle
def test_cli_track_json_range_and_preview(tmp_path, capsys):
    from s2v_toolkit.cli import main
    from s2v_toolkit.media import probe

    src = _write(tmp_path / "shot.mov", _astro_shot(), preset="prores_hq")  # 10-bit 4:2:2 source
    preview = tmp_path / "preview.mp4"
    assert main(["faces", "track", str(src), "--range", "2-9", "--json", "--preview", str(preview)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["range"] == [2, 9]
    assert len(doc["tracks"]) == 1 and doc["tracks"][0]["coverage"] == 1.0
    assert doc["tracks"][0]["frames"] == list(range(2, 10))
    assert probe(preview).video.frame_count == 8
    assert main(["faces", "track", str(src), "--range", "9-2"]) == 2
    assert "IN is after OUT" in capsys.readouterr().err


@needs_bundle
def test_rotated_media_is_tracked_upright(tmp_path):
    import av

    from s2v_toolkit.faces import analyze_video

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 360, 640, "yuv420p"
        stream.set_display_rotation(90)  # stored sideways; players turn it 90 deg counter-clockwise
        for f in _astro_shot(6):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(np.rot90(f, -1)), format="rgb24")
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    a = analyze_video(path)
    assert a.rotation == 90 and (a.width, a.height) == (640, 360)
    assert len(a.tracks) == 1 and len(a.tracks[0].frames) == 6
    # the rotation is learnt from the frames the analysis decodes (no separate read of the file): a range
    # that starts inside the file gets it too, and the reader says it only once it has decoded a frame
    part = analyze_video(path, 3, 5)
    assert part.rotation == 90 and (part.width, part.height) == (640, 360)
    with VideoReader(path) as reader:
        assert reader.display_rotation is None
        assert reader.read(4, 1).shape == (1, 640, 360, 3)  # as stored
        assert reader.display_rotation == 90


@needs_bundle
def test_no_face_and_bad_files_are_reported_not_crashed(tmp_path, capsys):
    from s2v_toolkit.cli import main

    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 255, (240, 320, 3), dtype=np.uint8) for _ in range(6)]
    src = _write(tmp_path / "noise.mp4", noise)
    assert main(["faces", "track", str(src), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["tracks"] == [] and doc["issues"][0]["kind"] == "no_face"
    assert (doc["issues"][0]["start"], doc["issues"][0]["end"]) == (0, 5)
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    assert main(["faces", "track", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("s2vt: error:") and "bad.mp4" in err and len(err.strip().splitlines()) == 1


@needs_bundle
def test_cli_speaker_picks_the_face_matching_the_reference_image(tmp_path, capsys, reference_landmarks):
    from s2v_toolkit.cli import main

    astro, _, hopper, _ = reference_landmarks
    left = cv2.resize(astro[0:400, 56:456], (360, 360), interpolation=cv2.INTER_AREA)
    right = cv2.resize(hopper[40:500, 26:486], (360, 360), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(10):
        f = np.full((360, 720, 3), 50, np.uint8)
        f[:, :360], f[:, 360:] = np.roll(left, k, axis=1), right
        frames.append(f)
    src = _write(tmp_path / "two.mp4", frames)
    ref = tmp_path / "astronaut.png"
    cv2.imwrite(str(ref), cv2.cvtColor(astro, cv2.COLOR_RGB2BGR))
    assert main(["faces", "speaker", str(src), "--range", "0-9", "--reference", str(ref), "--no-audio", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["track_id"] is not None and doc["confidence"] > 0.3
    assert main(["faces", "track", str(src), "--json"]) == 0
    tracks = {t["track_id"]: t for t in json.loads(capsys.readouterr().out)["tracks"]}
    assert len(tracks) == 2
    assert tracks[doc["track_id"]]["boxes"][0][2] < 360  # the chosen face is the astronaut, on the left
    ref_h = tmp_path / "hopper.png"
    cv2.imwrite(str(ref_h), cv2.cvtColor(hopper, cv2.COLOR_RGB2BGR))
    assert main(["faces", "speaker", str(src), "--range", "0-9", "--reference", str(ref_h), "--no-audio", "--json"]) == 0
    doc_h = json.loads(capsys.readouterr().out)
    assert tracks[doc_h["track_id"]]["boxes"][0][0] > 360
    # the file has no audio track: asking for audio evidence is a clear error
    assert main(["faces", "speaker", str(src), "--range", "0-9"]) == 2
    assert "no audio stream" in capsys.readouterr().err


@needs_bundle
def test_a_face_leaving_the_frame_is_reported_at_the_edge_then_gone():
    from s2v_toolkit.faces import FaceLandmarkDetector

    frames = []
    for k in range(24):
        f = np.full((360, 640, 3), 80, np.uint8)
        head = _astro_shot(1)[0][:, 100:460]
        x = 140 + 20 * k  # walks out to the right
        w = max(0, min(360, 640 - x))
        f[:, x:x + w] = head[:, :w]
        frames.append(f)
    with FaceLandmarkDetector(fps=25) as det:
        a = analyze_frames(enumerate(frames), 25.0, det, start=0, end=23)
    kinds = [i.kind for i in a.issues]
    assert "face_at_edge" in kinds and "no_face" in kinds
    last_seen = max(t.last_frame for t in a.tracks)
    gone = [i for i in a.issues if i.kind == "no_face"]
    assert gone[-1].end == 23 and gone[-1].start == last_seen + 1


def _open_mouth(img, lm, h):
    """The photo with the jaw dropped by ``h`` px below the lips and a dark gap between them."""
    out = img.copy()
    c = (lm[13, :2] + lm[14, :2]) / 2
    y0, x0, x1 = int(round(c[1])), int(lm[61, 0]) - 10, int(lm[291, 0]) + 10
    out[y0 + h:y0 + 60 + h, x0:x1] = img[y0:y0 + 60, x0:x1]
    if h > 0:
        cv2.ellipse(out, (int(c[0]), y0 + h // 2), ((x1 - x0) // 2 - 12, h // 2 + 1), 0, 0, 360, (40, 20, 25), -1)
    return out


@needs_bundle
def test_cli_speaker_finds_the_mouth_that_moves_with_the_line(tmp_path, capsys, reference_landmarks):
    """Two faces; the left one's mouth opens with the sound for frames 0-74 (3 s: a calibrated choice at
    0.9 needs more than the 2 s minimum unless the mouth follows the sound almost perfectly), then nobody
    speaks for 2 s."""
    from fractions import Fraction

    from s2v_toolkit.cli import main
    from s2v_toolkit.media import write_video

    astro, ref_a, hopper, _ = reference_landmarks
    rng = np.random.default_rng(5)
    n, rate = 125, 48000
    loud = np.zeros(n)
    k = 0
    while k < 75:  # syllables: bursts of 3-6 frames with short pauses
        dur = int(rng.integers(3, 7))
        loud[k:k + dur] = rng.uniform(0.6, 1.0)
        k += dur + int(rng.integers(1, 4))
    loud[75:] = 0
    audio = (rng.normal(0, 1, n * rate // 25) * 0.2 * np.repeat(loud, rate // 25)).astype(np.float32)
    right = cv2.resize(hopper[40:500, 26:486], (360, 360), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        left = cv2.resize(_open_mouth(astro, ref_a, int(round(14 * loud[i])))[0:400, 56:456], (360, 360),
                          interpolation=cv2.INTER_AREA)
        frames.append(np.concatenate([left, right], axis=1))
    src = write_video(tmp_path / "dialogue.mp4", np.stack(frames), Fraction(25), preset="h264", audio=audio,
                      audio_rate=rate)
    # by default the audio-visual network runs too: on this drawn mouth and noise bursts it sees no
    # speech (its z counts only from 0 up), so it is reported and the landmarks' evidence stands alone
    assert main(["faces", "speaker", str(src), "--range", "0-74", "--json"]) == 0
    default = json.loads(capsys.readouterr().out)
    moving = max(default["candidates"], key=lambda c: c["mouth_motion"])
    assert moving["network_z"] is not None and moving["combined_z"] is not None
    assert default["track_id"] in (None, moving["track_id"])  # never the still face
    assert main(["faces", "speaker", str(src), "--range", "0-74", "--json", "--landmarks-only"]) == 0
    talking = json.loads(capsys.readouterr().out)
    assert all(c["network_z"] is None for c in talking["candidates"])
    assert talking["track_id"] is not None and talking["confidence"] > 0.5, talking
    chosen = next(c for c in talking["candidates"] if c["track_id"] == talking["track_id"])
    assert chosen["audio_correlation"] > 0.6
    assert main(["faces", "track", str(src), "--range", "0-49", "--json"]) == 0
    boxes = {t["track_id"]: t["boxes"][0] for t in json.loads(capsys.readouterr().out)["tracks"]}
    assert boxes[talking["track_id"]][2] < 360  # the astronaut, on the left
    # silence and still mouths: no choice, and it says so
    assert main(["faces", "speaker", str(src), "--range", "75-124", "--json"]) == 0
    quiet = json.loads(capsys.readouterr().out)
    assert quiet["track_id"] is None and quiet["low_confidence"] and quiet["confidence"] < 0.3


@needs_bundle
def test_a_face_turned_towards_profile_is_found_and_kept_in_one_track():
    """A face turned 65 degrees away is missed by mediapipe's frontal detector (no track without the
    widened search); the widened search finds it and follows it. A face turning from frontal to 70
    degrees stays one track in every frame."""
    from s2v_toolkit.faces import FaceLandmarkDetector

    photo = np.ascontiguousarray(data.astronaut())
    turned = turned_view(photo, 65)
    frames = [cv2.warpAffine(turned, np.float64([[1, 0, 2 * np.sin(k / 4)], [0, 1, 1.5 * np.cos(k / 6)]]),
                             (512, 512), borderMode=cv2.BORDER_REPLICATE) for k in range(24)]
    with FaceLandmarkDetector(video=True, fps=25, turned_stretch=1.0) as det:
        plain = analyze_frames(enumerate(frames), 25.0, det, start=0, end=len(frames) - 1)
    assert not plain.tracks  # the limit this search lifts
    with FaceLandmarkDetector(video=True, fps=25) as det:
        a = analyze_frames(enumerate(frames), 25.0, det, start=0, end=len(frames) - 1)
    assert len(a.tracks) == 1 and len(a.tracks[0].frames) == len(frames)
    lm = a.tracks[0].landmarks_at(10)
    # the landmarks are on the turned face: the nose tip lies between the mouth corners' x, near the
    # photo's turned nose position (the axis passes through the face, so it barely moves)
    assert abs(lm[L.NOSE_TIP, 0] - 223.0) < 25 and 80 < lm[L.NOSE_TIP, 1] < 200

    turning = [turned_view(photo, 70.0 * k / 39) for k in range(40)]
    with FaceLandmarkDetector(video=True, fps=25) as det:
        b = analyze_frames(enumerate(turning), 25.0, det, start=0, end=len(turning) - 1)
    assert len(b.tracks) == 1
    assert len(b.tracks[0].frames) == len(turning)


@needs_bundle
def test_a_widened_face_turning_back_gets_plain_landmarks_and_stays_one_track():
    """A face found turned away is followed in a window widened 1.8x; as it turns back towards the camera
    that view draws it too wide and the mesh slides down the face (on a real TV scene the lips' points sat
    on a boy's chin). Once the plain view finds the face, a plain companion gives its landmarks: on the
    frontal frames they match a fresh fit of the photo far better than the widened follower's alone. A face
    turning away again stays one track in every frame."""
    from s2v_toolkit.faces import FaceLandmarkDetector

    photo = np.ascontiguousarray(data.astronaut())
    frames = [turned_view(photo, 65.0 * (1 - k / 29)) if k < 30 else photo for k in range(40)]
    with FaceLandmarkDetector(video=False) as det:
        ref = det.detect(photo)[0].landmarks
    size = float(L.face_size(ref))

    def frontal_error(plain_every: int) -> tuple[float, list]:
        with FaceLandmarkDetector(video=True, fps=25, plain_every=plain_every) as det:
            found = [det.detect(f, k) for k, f in enumerate(frames)]
            followers = [(f.stretch, f.plain is not None) for f in det._followers]
        assert all(len(faces) == 1 for faces in found)
        err = np.mean([np.linalg.norm(faces[0].landmarks[:, :2] - ref[:, :2], axis=1).mean() for faces in found[30:]])
        return float(err) / size, followers

    widened_only, followers_before = frontal_error(0)
    with_plain, followers = frontal_error(5)
    assert followers_before == [(1.8, False)]      # found widened: the plain detector misses it at 65 degrees
    assert followers == [(1.8, True)]               # the widened follower now has a plain companion
    assert with_plain < 0.012 and with_plain < 0.5 * widened_only, (with_plain, widened_only)

    away_and_back = [turned_view(photo, 65.0 * abs(1 - k / 20)) for k in range(41)]   # 65 -> 0 -> 65 degrees
    with FaceLandmarkDetector(video=True, fps=25) as det:
        a = analyze_frames(enumerate(away_and_back), 25.0, det, start=0, end=len(away_and_back) - 1)
    assert len(a.tracks) == 1 and len(a.tracks[0].frames) == len(away_and_back)


def test_one_face_compares_eyes_and_nose_not_boxes():
    """The hand-over test between a widened follower and its plain companion: a mesh stretched down below
    the chin (what the widened view gave) is still the same face; a face beside it, or one 1.5x larger,
    is not."""
    from s2v_toolkit.faces.detector import _one_face, same_face

    face = posed_face((300.0, 300.0), 150.0)
    stretched = face.copy()
    below_eyes = stretched[:, 1] > face[L.NOSE_TIP, 1]
    stretched[below_eyes, 1] += 0.6 * (stretched[below_eyes, 1] - face[L.NOSE_TIP, 1])   # chin pulled down
    assert L.box_iou(L.landmark_box(face), L.landmark_box(stretched)) < 0.8
    assert _one_face(stretched, face)
    beside = face.copy()
    beside[:, 0] += 0.3 * float(L.face_size(face))   # a neighbour's face, its box still overlapping by a third
    assert same_face(beside, face) and not _one_face(beside, face)   # same_face is the looser test
    larger = face.copy()
    centre = face[L.NOSE_TIP, :2]
    larger[:, :2] = centre + 1.5 * (face[:, :2] - centre)
    assert not _one_face(larger, face)


def test_prefetched_decoding_keeps_order_raises_the_readers_error_and_stops_when_closed():
    """analyze_video decodes in a background thread: the frames arrive in order, a decode error reaches the
    caller, and a caller that stops early stops (and closes) the reader."""
    import threading

    from s2v_toolkit.faces.analyze import _prefetched

    assert list(_prefetched(iter(range(50)), 2)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("damaged packet")

    got = []
    with pytest.raises(ValueError, match="damaged packet"):
        for x in _prefetched(failing(), 2):
            got.append(x)
    assert got == [1]

    closed = threading.Event()

    def endless():
        try:
            k = 0
            while True:
                yield k
                k += 1
        finally:
            closed.set()

    stream = _prefetched(endless(), 2)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    stream.close()
    assert closed.wait(5), "the producer must close its source when the consumer stops"


def _three_small_faces(count: int) -> list[np.ndarray]:
    """720p frames with three astronaut faces ~150 px wide (under the whole-frame detector's limit, so
    each is a tile find followed by a landmarker of its own), drifting apart."""
    astro_face = np.ascontiguousarray(data.astronaut()[30:230, 120:330])
    frames = []
    for k in range(count):
        canvas = np.full((720, 1280, 3), 50, np.uint8)
        for j, (x, y) in enumerate([(250, 250), (640, 420), (1030, 260)]):
            _paste(canvas, astro_face, _similarity(0.75, 4 * j - 4, (105, 100), (x + 3 * k, y + 2 * k * (j - 1))), None)
        frames.append(canvas)
    return frames


@needs_bundle
def test_the_widened_search_runs_only_while_face_slots_are_free(monkeypatch):
    """A shot's first frame searches the tiles plainly and, for faces turned away, widened. Where the
    plain search's finds fill every face slot the widened one could add nothing: it must not run (it
    cost ~140 ms at 1080p). With a slot left it runs, after the plain finds were admitted."""
    from s2v_toolkit.faces import FaceLandmarkDetector
    from s2v_toolkit.faces import detector as D

    frames = _three_small_faces(3)
    plain_scan = D.FaceLandmarkDetector._scan
    for max_faces, widened in ((3, False), (4, True)):
        stretches = []

        def spy(self, rgb, known, stretch=1.0):
            stretches.append((stretch, len(self._followers)))
            return plain_scan(self, rgb, known, stretch)

        monkeypatch.setattr(D.FaceLandmarkDetector, "_scan", spy)
        with FaceLandmarkDetector(fps=25, max_faces=max_faces) as det:
            faces = det.detect(frames[0], 0)
        assert len(faces) == 3
        # the plain search first; the widened one only with a slot free, once the 3 finds were followed
        assert stretches == ([(1.0, 0), (det.turned_stretch, 3)] if widened else [(1.0, 0)])


@needs_bundle
def test_landmarkers_made_side_by_side_work_and_print_nothing(capfd):
    """The followers of a first frame are made on the thread pool under one capture of mediapipe's native
    notices: nothing reaches descriptor 2 (a capture per thread let a notice through: one thread restored
    the descriptor while another was still making its landmarker), and each one finds what a landmarker
    made on its own finds."""
    from concurrent.futures import ThreadPoolExecutor

    from s2v_toolkit.faces import detector as D

    path = D.ensure_landmarker_bundle(None)
    conf = (0.5, 0.5, 0.5)
    frame = _three_small_faces(1)[0][100:420, 80:420].copy()  # the first face, zoomed out a little
    capfd.readouterr()
    with ThreadPoolExecutor(3) as pool:
        made = D._landmarkers(pool, 3, path, True, 1, conf)
    assert capfd.readouterr().err == ""
    alone = D._landmarker(path, True, 1, conf)
    try:
        expected = D._run(alone, frame, 0)
        assert len(expected) == 1
        for lm in made:
            got = D._run(lm, frame, 0)
            assert len(got) == 1
            np.testing.assert_array_equal(got[0], expected[0])
    finally:
        for lm in (*made, alone):
            lm.close()


@needs_bundle
def test_followers_on_threads_give_the_same_tracks_as_one_after_the_other():
    """Three small faces (each followed by its own landmarker) drifting over 20 frames: the detector with
    its landmark calls on a thread pool finds exactly the landmarks of the sequential one, and did use it."""
    from s2v_toolkit.faces import FaceLandmarkDetector

    frames = _three_small_faces(20)
    results = {}
    for workers in (1, 3):
        with FaceLandmarkDetector(fps=25, workers=workers) as det:
            a = analyze_frames(enumerate(frames), 25.0, det, start=0, end=len(frames) - 1)
            results[workers] = (a, det._pool is not None)
    (seq, seq_pool), (par, par_pool) = results[1], results[3]
    assert not seq_pool and par_pool  # the threaded run really ran on threads
    assert len(seq.tracks) == 3 and (seq.faces_per_frame == 3).all()
    assert [t.frames.tolist() for t in par.tracks] == [t.frames.tolist() for t in seq.tracks]
    for s, p in zip(seq.tracks, par.tracks):
        np.testing.assert_array_equal(p.landmarks, s.landmarks)


@needs_bundle
def test_tracking_on_its_own_thread_gives_what_inline_tracking_gives(monkeypatch, reference_landmarks):
    """analyze_frames runs each frame's tracking, occlusion cues and descriptors on a thread of its own
    while the detector works on the next frame: tracks, descriptors and occlusion scores must be exactly
    those of the inline loop (one core), and an error in a frame's tracking must still be raised."""
    import s2v_toolkit.faces.analyze as analyze_module
    from s2v_toolkit.faces import AnalysisParams, FaceLandmarkDetector

    astro, _, hopper, _ = reference_landmarks
    frames = []
    for k in range(16):
        canvas = np.full((480, 854, 3), 70, np.uint8)
        _paste(canvas, astro[40:220, 130:320], _similarity(1.0, 0, (95, 90), (220 + 4 * k, 240)), None)
        _paste(canvas, hopper[60:420, 110:430], _similarity(0.5, 0, (160, 180), (620 - 4 * k, 250)), None)
        frames.append(canvas)

    def run(**kwargs):
        with FaceLandmarkDetector(fps=25) as det:
            return analyze_frames(enumerate(frames), 25.0, det, start=0, end=len(frames) - 1,
                                  params=AnalysisParams(**kwargs))

    import threading

    seen_on = set()
    real_features = analyze_module.mouth_features

    def recording(*args, **kwargs):
        seen_on.add(threading.current_thread().name)
        return real_features(*args, **kwargs)

    monkeypatch.setattr(analyze_module, "mouth_features", recording)
    threaded = run()
    if (analyze_module.os.cpu_count() or 1) > 1:  # one core: inline by design
        assert seen_on and all(name.startswith("s2vt-track") for name in seen_on)  # it did run on its thread
    seen_on.clear()
    inline = run(tracking_thread=False)
    assert seen_on == {threading.main_thread().name}
    assert len(inline.tracks) == 2
    assert [t.frames.tolist() for t in threaded.tracks] == [t.frames.tolist() for t in inline.tracks]
    for a, b in zip(threaded.tracks, inline.tracks):
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
        np.testing.assert_array_equal(threaded.occlusion[a.track_id].scores, inline.occlusion[b.track_id].scores)
    assert threaded.descriptors.keys() == inline.descriptors.keys()
    for tid in inline.descriptors:
        np.testing.assert_array_equal(threaded.descriptors[tid].texture, inline.descriptors[tid].texture)
    np.testing.assert_array_equal(threaded.faces_per_frame, inline.faces_per_frame)

    def broken(*args, **kwargs):
        raise RuntimeError("mouth cue failed")

    monkeypatch.setattr(analyze_module, "mouth_features", broken)
    with pytest.raises(RuntimeError, match="mouth cue failed"):
        run()


@needs_bundle
def test_landmarks_read_from_the_c_result_equal_mediapipes_public_api(monkeypatch):
    """``_run`` reads the points from mediapipe's C result struct with numpy instead of its per-point
    dataclasses: the same faces and the same float32 landmarks as the public ``detect`` /
    ``detect_for_video`` (two real faces moving, IMAGE and VIDEO mode), and the public API is what runs
    when the struct can't be read (an older mediapipe)."""
    import mediapipe as mp

    from s2v_toolkit.faces import detector as D

    astro_face = np.ascontiguousarray(data.astronaut()[30:230, 120:330])
    frames = []
    for k in range(6):
        canvas = np.full((480, 960, 3), 60, np.uint8)
        for j, (x, y) in enumerate([(240, 240), (720, 240)]):
            _paste(canvas, astro_face, _similarity(1.5, 6 * j - 3, (105, 100), (x + 2 * k, y + k)), None)
        frames.append(canvas)
    path = D.ensure_landmarker_bundle(None)
    conf = (0.5, 0.5, 0.5)
    for video in (False, True):
        fast, public, fallback = (D._landmarker(path, video, 4, conf) for _ in range(3))
        try:
            for k, frame in enumerate(frames):
                ts = k * 40 if video else None
                h, w = frame.shape[:2]
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=frame)
                result = public.detect(image) if ts is None else public.detect_for_video(image, ts)
                expected = [np.array([(p.x * w, p.y * h, p.z * w) for p in pts], np.float32)
                            for pts in result.face_landmarks]
                got = D._run(fast, frame, ts)
                assert len(expected) == 2 and len(got) == 2
                for a, b in zip(got, expected):
                    np.testing.assert_array_equal(a, b)
                with monkeypatch.context() as m:
                    m.setattr(D, "_landmark_arrays", lambda *a: None)
                    for a, b in zip(D._run(fallback, frame, ts), expected):
                        np.testing.assert_array_equal(a, b)
        finally:
            for lm in (fast, public, fallback):
                lm.close()
