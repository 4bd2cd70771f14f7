"""Mouth occlusion on real footage of ../shared/corpus/media.

WolfgangLanger_Pexels.mp4 (472 frames, 23.976 fps): a woman cries, then laughs. Looked at frame by frame
(a contact sheet of every 12th frame): her mouth is clear in frames 0-55, her palm covers it from about
frame 60 to 100, the hand then covers her nose and a side of the mouth, fingers lie over the lips' corner
until about frame 225, and from frame 240 to the end the hand is gone and she laughs with her mouth open.
retalking_face3.mp4, retalking_face5.mp4, single_face.mp4 (a man who smiles with his teeth from about
frame 19: lips move away from skin in colour alone), carphone.mp4: nothing over the mouth.

Targets: the covered range is flagged, and so are the fingers over one corner of the lips (a partial cover,
found by the corners' asymmetry: frames 150-225 from the contact sheet); clear frames almost never are (a flag costs a re-dubbed frame).
"""

from __future__ import annotations

import numpy as np
import pytest

from corpus_testkit import corpus_dir, needs_corpus

pytestmark = [pytest.mark.corpus, needs_corpus]


def _analysis(name):
    from s2v_toolkit.faces import analyze_video, find_landmarker_bundle

    if find_landmarker_bundle() is None:
        pytest.skip("no face landmark bundle (s2vt faces setup)")
    path = corpus_dir() / "media" / name
    if not path.is_file():
        pytest.skip(f"{name} not in the corpus")
    a = analyze_video(path)
    assert len(a.tracks) == 1, name
    return a, a.tracks[0].track_id


def _share(flagged: set[int], frames) -> float:
    frames = list(frames)
    return sum(f in flagged for f in frames) / len(frames)


def test_hand_over_the_mouth_is_flagged_and_clear_frames_are_not():
    a, tid = _analysis("WolfgangLanger_Pexels.mp4")
    flagged = set(a.occluded_frames(tid))
    assert _share(flagged, range(64, 97)) >= 0.8          # palm over the mouth
    assert _share(flagged, range(150, 226)) >= 0.7        # fingers over one corner of the lips
    assert _share(flagged, range(0, 56)) <= 0.05          # crying, mouth clear
    assert _share(flagged, range(240, a.end + 1)) <= 0.02  # laughing, mouth open, no hand
    assert any(i.kind == "mouth_occluded" and i.start <= 96 and i.end >= 64 for i in a.issues)


@pytest.mark.parametrize("name", ["retalking_face3.mp4", "retalking_face5.mp4", "single_face.mp4", "carphone.mp4"])
def test_talking_head_without_occluder_is_not_flagged(name):
    a, tid = _analysis(name)
    flagged = set(a.occluded_frames(tid))
    assert _share(flagged, range(a.start, a.end + 1)) <= 0.02
