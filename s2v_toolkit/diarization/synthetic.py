"""Synthetic speech with known voices (espeak-ng), for tests and benchmarks with exact turn times."""

from __future__ import annotations

import io
import subprocess

import numpy as np


def espeak_speech(voice: str, options: list[str], text: str, sample_rate: int = 16000,
                  trim_db: float = 40.0) -> np.ndarray:
    """``text`` spoken by espeak-ng ``voice`` as float32 at ``sample_rate``, trimmed to its voiced extent.

    The extent is the first to last 10 ms frame whose RMS is within ``trim_db`` of the loudest, so a
    reference turn built from it starts and ends where the voice does.
    """
    import soundfile as sf
    import soxr

    wav = subprocess.run(["espeak-ng", "-v", voice, *options, "--stdout", text],
                         capture_output=True, check=True).stdout
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    x = soxr.resample(x, rate, sample_rate).astype(np.float32)
    hop = sample_rate // 100
    n = len(x) // hop
    rms = np.sqrt((x[: n * hop].reshape(n, hop) ** 2).mean(axis=1))
    on = np.nonzero(rms > rms.max() * 10 ** (-trim_db / 20))[0]
    return x[on[0] * hop:(on[-1] + 1) * hop]


def microphone_tilt(samples: np.ndarray, tilt_db: float, sample_rate: int = 16000,
                    corner_hz: float = 1000.0) -> np.ndarray:
    """``samples`` as heard through a microphone ``tilt_db`` brighter (or duller, when negative) above
    ``corner_hz``: a second-order high-shelf filter (Robert Bristow-Johnson's audio EQ cookbook, slope 1)."""
    from scipy.signal import lfilter

    a_gain = 10 ** (tilt_db / 40)
    w0 = 2 * np.pi * corner_hz / sample_rate
    alpha = np.sin(w0) / 2 * np.sqrt(2)
    cos, two_sqrt_a_alpha = np.cos(w0), 2 * np.sqrt(a_gain) * alpha
    b = [a_gain * ((a_gain + 1) + (a_gain - 1) * cos + two_sqrt_a_alpha),
         -2 * a_gain * ((a_gain - 1) + (a_gain + 1) * cos),
         a_gain * ((a_gain + 1) + (a_gain - 1) * cos - two_sqrt_a_alpha)]
    a = [(a_gain + 1) - (a_gain - 1) * cos + two_sqrt_a_alpha, 2 * ((a_gain - 1) - (a_gain + 1) * cos),
         (a_gain + 1) - (a_gain - 1) * cos - two_sqrt_a_alpha]
    return lfilter(np.array(b) / a[0], np.array(a) / a[0], np.asarray(samples, dtype=np.float64)).astype(np.float32)


def cut_at_pauses(samples: np.ndarray, sample_rate: int = 16000, longest: float = 3.5) -> list[np.ndarray]:
    """Pieces of one voice's recording cut at the pauses the VAD finds, each up to about ``longest``
    seconds (VAD regions are joined until the next would make the piece longer)."""
    from s2v_toolkit.diarization.vad import speech_probabilities, speech_regions

    x = np.asarray(samples, dtype=np.float32)
    if sample_rate != 16000:
        import soxr

        x, sample_rate = soxr.resample(x, sample_rate, 16000).astype(np.float32), 16000
    pieces, cur = [], None
    for a, b in speech_regions(speech_probabilities(x), len(x) / sample_rate):
        if cur is None:
            cur = [a, b]
        elif b - cur[0] < longest:
            cur[1] = b
        else:
            pieces.append(x[int(cur[0] * sample_rate):int(cur[1] * sample_rate)])
            cur = [a, b]
    if cur:
        pieces.append(x[int(cur[0] * sample_rate):int(cur[1] * sample_rate)])
    return pieces


MICROPHONES_DB = (0.0, 6.0, -6.0)  # high shelf above 1 kHz, in turn: the microphone changes of issue 18


def microphone_change_scenes(pieces: dict[str, list[np.ndarray]], tilted: bool = True, noise: float = 0.002):
    """Scenes where readers change microphone from piece to piece, from pieces of real voices (16 kHz; e.g.
    :func:`cut_at_pauses` of voice samples), as ``[(name, signal, reference SpeakerTurns)]``.

    The four readers with the most speech (then sorted by name): each alone, through the microphones of ``MICROPHONES_DB`` in
    turn; the third with a changing microphone and the fourth without; the first changing every second
    piece and the second without; all four, every one changing. Pieces are 0.3-0.8 s apart (seeded), with
    light noise. ``tilted=False`` gives the same scenes without the microphone changes (the control)."""
    from s2v_toolkit.diarization.turns import SpeakerTurn, SpeakerTurns

    readers = sorted(sorted(pieces, key=lambda r: -sum(len(p) for p in pieces[r]))[:4])
    tilts = MICROPHONES_DB

    def build(name, plan, seed):
        rng, pools = np.random.default_rng(seed), {r: list(pieces[r]) for r in readers}
        sig, turns, t = [np.zeros(8000, np.float32)], [], 0.5
        for reader, tilt in plan:
            if not pools[reader]:
                continue
            x = pools[reader].pop(0)
            x = microphone_tilt(x, tilt) if tilt and tilted else x
            turns.append(SpeakerTurn(t, t + len(x) / 16000, reader))
            gap = rng.uniform(0.3, 0.8)
            sig += [x, np.zeros(int(gap * 16000), np.float32)]
            t += len(x) / 16000 + gap
        y = np.concatenate(sig)
        y += np.random.default_rng(seed).normal(0, noise, len(y)).astype(np.float32)
        return name + ("" if tilted else " (no tilt)"), y, SpeakerTurns(turns, name, len(y) / 16000)

    out = [build(f"reader {r}, 3 microphones", [(r, tilts[i % 3]) for i in range(12)], 1) for r in readers]
    if len(readers) >= 4:
        a, b, c, d = readers
        out.append(build(f"{c} (3 microphones) + {d}", [(s, tilts[i % 3] if s == c else 0.0)
                                                        for i, s in enumerate([c, d] * 6)], 2))
        out.append(build(f"{a} (3 microphones) + {b}", [(s, tilts[(i // 2) % 3] if s == a else 0.0)
                                                        for i, s in enumerate([a, b] * 6)], 3))
        out.append(build("4 readers, all changing microphone", [(s, tilts[i % 3]) for i, s in
                                                                enumerate(readers * 4)], 4))
    return out


def microphone_changes_in_turns(samples: np.ndarray, turns, speaker: str | None = None,
                                sample_rate: int = 16000) -> np.ndarray:
    """A copy of a conversation where ``speaker``'s turns (every speaker's with ``None``) go through the
    microphones of ``MICROPHONES_DB`` in turn, one microphone per turn (``turns``: its reference turns)."""
    out = np.asarray(samples, dtype=np.float32).copy()
    k = 0
    for t in sorted(turns, key=lambda u: u.start):
        if speaker is not None and t.speaker != speaker:
            continue
        tilt = MICROPHONES_DB[k % len(MICROPHONES_DB)]
        k += 1
        a, b = int(round(t.start * sample_rate)), int(round(t.end * sample_rate))
        if tilt and b > a:
            out[a:b] = microphone_tilt(samples[a:b], tilt, sample_rate)
    return out


CAST_SCENE_KINDS = ("recorded", "microphones", "stranger")


def cast_scenes(pieces: dict[str, list[np.ndarray]], count: int, kind: str = "recorded", seed: int = 11,
                readers: list[str] | None = None, noise: float = 0.002):
    """Conversations of 2-4 readers with a cast of their voices, from pieces of real voices (16 kHz; e.g.
    :func:`cut_at_pauses` of voice samples), as ``[(name, signal, reference SpeakerTurns, {character: [(samples,
    16000)]}, characters)]``. Each reader takes 1-3 turns of one piece each (5-13 turns in all), 0.2-0.8 s
    apart. Half of each reader's pieces (the even ones) make the scenes, the other half the cast's samples, so
    no sample is heard in a scene. ``kind``: ``recorded``; ``microphones`` (each scene piece through a
    microphone of ``MICROPHONES_DB``, at random: the cast recorded elsewhere); ``stranger`` (the last reader
    left out of the cast: their turns are ``unknown`` in the reference). Characters are ``c<reader>``."""
    from s2v_toolkit.diarization.turns import UNKNOWN, SpeakerTurn, SpeakerTurns

    if kind not in CAST_SCENE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(CAST_SCENE_KINDS)}")
    readers = readers or sorted(r for r in pieces if len(pieces[r]) >= 4)
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        n = int(rng.integers(2, min(4, len(readers)) + 1))
        who = [str(w) for w in rng.choice(readers, n, replace=False)]
        stranger = who[-1] if kind == "stranger" else None
        samples = {f"c{w}": [(np.concatenate(pieces[w][1::2]), 16000)] for w in who if w != stranger}
        order = who + [str(w) for w in rng.choice(who, int(rng.integers(3, 10)))]
        rng.shuffle(order)
        used = {w: 0 for w in who}
        parts, turns, t = [np.zeros(4800, np.float32)], [], 0.3
        for w in order:
            own = pieces[w][0::2]
            x = own[used[w] % len(own)]
            used[w] += 1
            if kind == "microphones":
                x = microphone_tilt(x, float(rng.choice(MICROPHONES_DB)))
            turns.append(SpeakerTurn(t, t + len(x) / 16000, UNKNOWN if w == stranger else f"c{w}"))
            gap = np.zeros(int(rng.uniform(0.2, 0.8) * 16000), np.float32)
            parts += [x, gap]
            t += (len(x) + len(gap)) / 16000
        sig = np.concatenate(parts)
        sig = sig + rng.normal(0, noise, len(sig)).astype(np.float32)
        out.append((f"{kind} {k}: {n} readers, {len(order)} turns, {len(sig) / 16000:.0f} s", sig,
                    SpeakerTurns(turns, f"{kind}{k}", len(sig) / 16000), samples, list(samples)))
    return out

