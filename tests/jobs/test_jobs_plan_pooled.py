"""The planner pools a character's lines on one shot: lines the audio leaves undecided alone are decided
by the pooled evidence of all of them (FaceChecker.pool). Synthetic face analyses and noise-burst speech."""

from __future__ import annotations

import numpy as np

from s2v_toolkit.faces import FaceAnalysis, FaceTrack, SpeakerParams
from s2v_toolkit.faces.synthetic import posed_face
from s2v_toolkit.jobs import FaceChecker, ShotContext
from s2v_toolkit.jobs.cast import Character
from s2v_toolkit.jobs.plan import ShotJob

from faces_testkit import syllable_speech

FPS = 25.0
LINE = 55       # frames: 2.2 s lines
GAP = 10        # frames between lines
LINES = 6
SPF = 640       # 16 kHz samples per frame


def speech(seed, n):
    return syllable_speech(seed, n, int(FPS), SPF * int(FPS))


class ShotFile:
    """A 'media file' of two talking faces: track A speaks the character's lines, its mouth following the
    loudness only weakly; track B talks to its own rhythm. ``analyze`` gives each call new track ids (a
    separate analysis, as the real tracker does) and the faces in a different order."""

    def __init__(self, seed=4, follow=0.5):
        self.n = LINES * (LINE + GAP)
        self.audio, loud = speech(seed, self.n)
        self.mouths = [0.05 + 0.3 * (follow * np.roll(loud, 1) + (1 - follow) * speech(seed + 1, self.n)[1]),
                       0.05 + 0.3 * speech(seed + 2, self.n)[1]]
        self.xs = [400, 900]
        self.calls = 0
        self.analyses = []

    def analyze(self, path, first, last):
        self.calls += 1
        frames = np.arange(first, last + 1)
        tracks = []
        for k in ((0, 1) if self.calls % 2 else (1, 0)):
            lm = np.stack([posed_face((self.xs[k], 300), 160, 0, mouth_open=float(self.mouths[k][f])) for f in frames])
            lm[:, :, :2] += np.random.default_rng(k).normal(0, 0.2, lm[:, :, :2].shape)
            tracks.append(FaceTrack(10 * self.calls + len(tracks), frames, lm.astype(np.float32),
                                    np.ones(len(frames), np.float32)))
        self.analyses.append(FaceAnalysis(first, last, FPS, 1280, 720, tracks, np.full(len(frames), 2)))
        return self.analyses[-1]


def contexts(shot: ShotFile, audio: np.ndarray):
    char = Character(id="ana", name="Ana")
    out = []
    for k in range(LINES):
        a = k * (LINE + GAP)
        job = ShotJob(id=f"j{k}", label=f"L{k}", action="skip", reason="", line=k + 1, character="ana",
                      record_in=a, record_out=a + LINE, clip_id="clip1", media_path="shot.mov")
        out.append(ShotContext(job, char, "shot.mov", a, a + LINE - 1, audio[a * SPF:(a + LINE) * SPF]))
    return out


def run_checker(shot, audio):
    checker = FaceChecker(analyze=shot.analyze)
    ctxs = contexts(shot, audio)
    for ctx in ctxs:
        v = checker(ctx)
        ctx.job.action, ctx.job.reason, ctx.job.face = v.action, v.reason, v.face
    alone = [(c.job.action, c.job.reason) for c in ctxs]
    checker.pool()
    return checker, ctxs, alone


def test_undecided_lines_of_one_character_on_one_shot_are_decided_pooled():
    shot = ShotFile()
    checker, ctxs, alone = run_checker(shot, shot.audio)
    undecided = [k for k, (action, why) in enumerate(alone) if "speaking face was not found" in why]
    assert len(undecided) >= LINES // 2, alone  # most lines are too weak alone
    cut = SpeakerParams().audio_confidence
    for k, ctx in enumerate(ctxs):
        job = ctx.job
        assert job.action == "redub", job.reason
        pooled = job.face["pooled"]
        assert pooled["lines"] == list(range(1, LINES + 1)) and len(pooled["line_z"]) == LINES
        assert pooled["confidence"] >= cut
        assert np.isclose(pooled["z"], sum(pooled["line_z"]) / np.sqrt(LINES), atol=0.01)
        if k in undecided:
            assert "pooled with the character's other lines" in job.reason
            assert job.face["confidence"] >= cut > job.face["line_confidence"]
        else:  # decided alone: its own choice and reason stay
            assert job.reason == alone[k][1] and "line_confidence" not in job.face
        assert not job.notes  # the pool agrees with the lines decided alone
    # each job's track id is track A's id in that line's own analysis (what the renderer sees: calls
    # 1..LINES), not its id in the pooled analysis
    ids = [ctx.job.face["track_id"] for ctx in ctxs]
    assert [i // 10 for i in ids] == list(range(1, LINES + 1))
    for k, tid in enumerate(ids):
        assert abs(shot.analyses[k].track(tid).landmarks[0, 1, 0] - 400) < 20  # the face at x = 400 speaks


def test_unrelated_audio_stays_undecided_with_the_pooled_reason():
    shot = ShotFile()
    other = speech(99, shot.n)[0]
    checker, ctxs, alone = run_checker(shot, other)
    undecided = [k for k, (action, why) in enumerate(alone) if action == "skip"]
    assert len(undecided) >= LINES // 2, alone
    for k, ctx in enumerate(ctxs):
        if k in undecided:  # the pool does not pick a face for a line it does not belong to
            assert ctx.job.action == "skip"
            assert "pooled with the character's other lines on this shot: low confidence" in ctx.job.reason
        else:  # a chance pick of one line alone stays, with the pool's verdict recorded next to it
            assert ctx.job.face["pooled"]["confidence"] < SpeakerParams().audio_confidence


def test_lines_on_other_shots_or_of_other_characters_are_not_pooled():
    shot = ShotFile()
    checker = FaceChecker(analyze=shot.analyze)
    ctxs = contexts(shot, shot.audio)
    for k, ctx in enumerate(ctxs):
        ctx.job.clip_id = f"clip{k}"  # every line on its own shot
        v = checker(ctx)
        ctx.job.action, ctx.job.reason, ctx.job.face = v.action, v.reason, v.face
    calls = shot.calls
    checker.pool()
    assert shot.calls == calls  # nothing to pool: no second analysis
    assert all("pooled" not in c.job.reason and "pooled" not in (c.job.face or {}) for c in ctxs)
    assert sum(c.job.action == "skip" for c in ctxs) >= LINES // 2  # what the lines alone decided


def test_build_plan_pools_after_every_line_is_checked(tmp_path):
    """build_plan hands a FaceChecker's pool the lines once all of them are checked (and the pool's
    decisions are what the plan keeps)."""
    from jobs_helpers import DEMO, demo_turns
    from s2v_toolkit.jobs import FaceVerdict, build_plan

    class Recording(FaceChecker):
        def __init__(self):
            super().__init__()
            self.seen, self.pooled_after = [], None

        def __call__(self, ctx):
            self.seen.append(ctx)
            return FaceVerdict("skip", "the speaking face was not found (test)")

        def pool(self):
            self.pooled_after = len(self.seen)
            for ctx in self.seen:
                ctx.job.action, ctx.job.reason = "redub", "decided by the pool (test)"

    checker = Recording()
    plan = build_plan(DEMO / "scene.otio", DEMO / "cast.yaml", turns=demo_turns(), face_check=checker)
    assert checker.seen and checker.pooled_after == len(checker.seen)
    checked = [ctx.job for ctx in checker.seen]
    assert all(j.action == "redub" and j.reason == "decided by the pool (test)" for j in checked)
    assert all(any(j is p for p in plan.jobs) for j in checked)
