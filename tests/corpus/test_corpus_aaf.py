"""Every corpus AAF (Media Composer, Resolve, Premiere, Pro Tools exports) read against facts walked
out of the file with pyaaf2 here, independently of the reader, and written back unchanged."""

from __future__ import annotations

from fractions import Fraction

import pytest

from aaf_testkit import assert_only_additions
from corpus_testkit import corpus_params

pytestmark = pytest.mark.corpus
AAFS = corpus_params("timelines", "aaf_*.aaf")
GAIN_IDS = ("e4962321-2267-11d3-8a4c-0050040ef7d2",)
GAIN_OP_ID = "9d2ea894-0968-11d3-8a38-0050040ef7d2"     # AAF's MonoAudioGain operation


def _rate(r) -> Fraction:
    r = Fraction(r.numerator, r.denominator)
    # NTSC rates written rounded (23.976, 29.97, 59.94, 119.88) stand for n * 1000/1001
    for s in (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(48000, 1001), Fraction(60000, 1001),
              Fraction(120000, 1001)):
        if abs(r - s) / s < Fraction(5, 10000):
            return s
    return r


def _amplitude_db(op):
    """dB of an "Audio Gain" operation's Amplitude (constant, or keyframes all at one level);
    ``None`` for a level that changes over the clip."""
    import math

    db = 0.0
    for p in op.parameters:
        if str(p["Definition"].value) not in GAIN_IDS and p.name not in ("AvidControlClipRatio",):
            continue
        if type(p).__name__ == "ConstantValue":
            values = [p.value]
        else:
            values = [cp.value for cp in p["PointList"].value]
        if len(set(values)) != 1:
            return None
        v = float(Fraction(values[0]))
        db += 20 * math.log10(v) if v > 0 else -144.0
    return db


def _op_def(node):
    """The OperationDef of an OperationGroup: pyaaf2's ``Operation``, ``OperationDefinition`` as AAF 1.0 files
    (Avid Xpress Pro) name it in their own dictionary."""
    key = next((k for k in ("Operation", "OperationDefinition") if k in node.keys()), None)
    return node[key].value if key else None


def _placed(seq):
    """(component, start) of a Sequence's components: a transition overlaps its neighbours, the next
    component starts under it."""
    placed, pos = [], 0
    for c in seq.components:
        if type(c).__name__ == "Transition":
            pos -= c.length
            placed.append((c, pos))
            continue
        placed.append((c, pos))
        pos += c.length
    return placed


def _leaves(node, rate, pos, lo, hi, muted=False, db=0.0, speed=False):
    """(record start, length, muted, dB or None, source start or None, retimed) of each clip under
    ``node`` (which starts at record ``pos``) that shows in the record window [lo, hi)."""
    t = type(node).__name__
    if hi <= lo:
        return
    if t == "SourceClip":
        mob = node.mob
        if mob is None:
            return
        if type(mob).__name__ == "CompositionMob":
            # a subclip / nested sequence: the editor sees the clips of the composition it points at
            slot = mob.slot_at(node["SourceMobSlotID"].value)
            if _rate(slot.edit_rate) == rate and not speed:
                yield from _leaves(slot.segment, rate, pos - node.start, lo, hi, muted, db, speed)
            return
        # under a speed effect Avid counts the input at the rate of the media it plays
        own = _rate(node.slot.edit_rate) if speed else rate
        src = Fraction(node.start) / own
        if lo != pos:
            src = None if speed else src + Fraction(lo - pos) / rate
        yield lo, hi - lo, muted, db, src, speed
    elif t == "EssenceGroup":
        choices = list(node["Choices"].value)
        if choices:
            yield from _leaves(choices[0], rate, pos, lo, hi, muted, db, speed)
    elif t == "Selector":
        flagged = any("DISABLE_CLIP" in a.name for a in node["ComponentAttributeList"].value) \
            if "ComponentAttributeList" in node.keys() else False
        selected = node["Selected"].value
        if "Alternates" in node.keys() and (type(selected).__name__ == "Filler" or
                                             (flagged and type(selected).__name__ == "ScopeReference")):
            # Avid's clip mute: silence (sound) or the layer below (picture) selected, the clip an alternate
            yield from _leaves(node["Alternates"].value[0], rate, pos, lo, hi, True, db, speed)
        else:
            yield from _leaves(selected, rate, pos, lo, hi, muted, db, speed)
    elif t == "OperationGroup":
        op = _op_def(node)
        name = op.name or ""
        if "Title" in name:
            return
        inputs = list(node.segments)
        if str(op.auid) == GAIN_OP_ID or name.endswith("Audio Gain"):   # "Mono Audio Gain" too
            gain = _amplitude_db(node)
            db = None if gain is None or db is None else db + gain
        if name in ("Motion Control", "Audio Warp"):
            speed = True
        if name == "Audio Channel Combiner":
            for i in inputs:
                yield from _leaves(i, rate, pos, lo, hi, muted, db, speed)
        elif inputs:
            yield from _leaves(inputs[0], rate, pos, lo, hi, muted, db, speed)
    elif t == "Sequence":
        if speed:       # a retimed input: one clip filling the effect (its own time is not the record's)
            comps = [c for c in node.components if type(c).__name__ != "Filler"]
            if len(comps) == 1:
                yield from _leaves(comps[0], rate, pos, lo, hi, muted, db, speed)
            return
        placed = _placed(node)
        for k, (c, cpos) in enumerate(placed):
            if type(c).__name__ in ("Transition", "Filler", "ScopeReference"):
                continue
            clo, chi = cpos, cpos + c.length     # the editor sees each side of a transition up to its cut
            if k > 0 and type(placed[k - 1][0]).__name__ == "Transition":
                tr, tpos = placed[k - 1]
                clo = tpos + tr["CutPoint"].value
            if k + 1 < len(placed) and type(placed[k + 1][0]).__name__ == "Transition":
                tr, tpos = placed[k + 1]
                chi = tpos + tr["CutPoint"].value
            yield from _leaves(c, rate, pos + cpos, max(lo, pos + clo), min(hi, pos + chi), muted, db, speed)


def _top_mob(f):
    """What the editor opens: the top-level composition; without one, the composition no other uses;
    without any composition, the exported master clip."""
    top = list(f.content.toplevel())
    if top:
        return top[0]
    comps = list(f.content.compositionmobs())
    used = {str(m.mob_id) for c in comps for m in c.dependant_mobs()}
    roots = [c for c in comps if str(c.mob_id) not in used] or comps
    return roots[0] if roots else next(iter(f.content.mastermobs()), None)


def _mixer_switches(path) -> tuple[dict, dict]:
    """Per slot of the composition: Avid's track mute and solo switches, as the slot's
    TimelineMobAttributeList tags them (``AudioMixerCompMute``, ``AudioMixerCompSolo``)."""
    import aaf2

    mute, solo = {}, {}
    with aaf2.open(str(path), "r") as f:
        comp = _top_mob(f)
        for slot in (comp.slots if comp is not None else []):
            try:
                attrs = {a.name: a.value for a in (slot["TimelineMobAttributeList"].value or [])}
            except (KeyError, AttributeError):
                continue
            mute[slot.slot_id] = bool(attrs.get("AudioMixerCompMute"))
            solo[slot.slot_id] = bool(attrs.get("AudioMixerCompSolo"))
    return mute, solo


def _facts(path):
    """For every clip of every picture/sound slot (and every layer of Avid's layered video) of the
    composition the editor opens: (slot id, edit rate, record position, length, mute, dB, source start),
    positions in the slot's edit units, walked here with pyaaf2 (Avid mute Selectors, "Audio Gain"
    amplitudes, channel combiners, speed effects, subclips / nested compositions, essence groups;
    transitions cut both sides at their cut point)."""
    import aaf2

    out = []
    with aaf2.open(str(path), "r") as f:
        comp = _top_mob(f)
        for slot in (comp.slots if comp is not None else []):
            seg = slot.segment
            # AAF 1.0 files (Avid Xpress) say LegacyPicture / LegacySound
            if (seg.media_kind or "").lower().replace("datadef_", "").replace("legacy", "") not in ("picture", "sound"):
                continue
            layers = list(seg["Slots"].value) if type(seg).__name__ == "NestedScope" else [seg]
            rate = _rate(slot.edit_rate)
            for layer in layers:
                if layer.length is None:
                    continue
                for lo, length, muted, db, src, _ in _leaves(layer, rate, 0, 0, layer.length):
                    out.append((slot.slot_id, rate, lo, length, muted,
                                None if db is None else round(max(db, -144.0), 2), src))
    return out


def _no_timeline(path) -> bool:
    """A file with no composition and no master clip (an empty file, a file of source mobs only) holds
    nothing an editor opens: the reader must refuse it in one line naming the file (checked here)."""
    import aaf2

    from s2v_toolkit.timeline import TimelineError, read_timeline

    with aaf2.open(str(path), "r") as f:
        if _top_mob(f) is not None:
            return False
    with pytest.raises(TimelineError) as err:
        read_timeline(path)
    assert path.name in str(err.value) and len(str(err.value).splitlines()) == 1, str(err.value)
    return True


@pytest.mark.parametrize("path", AAFS)
def test_every_clip_at_its_record_range_with_mute_gain_and_source(path):
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    if _no_timeline(path):
        return
    desc = describe_timeline(read_timeline(path), check_media=False)
    facts = _facts(path)
    clips: dict = {}
    for c in desc.clips:
        if "locator" in c.s2v:
            key = (c.s2v["locator"]["slot_id"], round(c.s2v["locator"]["record_start"], 6))
            clips.setdefault(key, []).append(c)
    if not facts:   # an empty cut (or titles only) is an empty timeline, not an error
        assert not [c for c in desc.clips if not c.s2v.get("generator")], f"{path.name}: clips read from none"
    for slot_id, rate, pos, length, muted, db, src_start in facts:
        cands = clips.get((slot_id, float(pos)), [])
        assert cands, f"{path.name}: no clip at slot {slot_id} position {pos}"
        assert any(_matches(desc, c, rate, pos, length, muted, db, src_start) for c in cands), \
            (path.name, slot_id, pos, length, muted, db, src_start, [(c.name, c.gain_db, c.s2v) for c in cands])
    # nothing the file holds is lost: every clip read is one the file walk found (or a title/nest)
    assert len(desc.clips) >= len(facts)


def _matches(desc, c, rate, pos, length, muted, db, src_start) -> bool:
    # record range in seconds from the composition start, exactly as the file counts it
    if abs(c.record.start_seconds - Fraction(pos) / rate) >= Fraction(1, 10 ** 6):
        return False
    if abs(c.record.duration_seconds - Fraction(length) / rate) >= Fraction(1, 10 ** 6):
        return False
    if bool(c.s2v.get("muted")) != muted or c.active is muted:
        return False
    if db is not None and abs(c.gain_db - db) >= 0.01:
        return False
    if db is None and not c.s2v.get("gain_envelope"):
        return False
    # source: seconds into the media file (source timecode minus the file's first timecode)
    avail = desc.otio_items[c.id].media_reference.available_range
    if src_start is not None and avail is not None:
        into = c.source.start.seconds - Fraction(avail.start_time.value).limit_denominator(10 ** 6) \
            / Fraction(avail.start_time.rate).limit_denominator(10 ** 6)
        if abs(into - src_start) >= Fraction(1, 1000):
            return False
    return True


@pytest.mark.parametrize("path", AAFS)
def test_write_back_changes_nothing_but_the_additions(path, tmp_path):
    from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline

    if _no_timeline(path):
        return
    loaded = read_timeline(path)
    desc = describe_timeline(loaded, check_media=False)
    target = next((c for c in desc.clips if c.active), None)
    import opentimelineio as otio

    from s2v_toolkit.timeline import Span

    rt = otio.opentime.RationalTime
    render = RenderResult(media_path=str(tmp_path / "render.mov"), clip_id=target.id) if target else \
        RenderResult(media_path=str(tmp_path / "render.mov"),
                     record=Span.from_otio(otio.opentime.TimeRange(rt(0, desc.rate), rt(10, desc.rate))))
    result = conform(loaded, [render], tmp_path / "out")
    out = result.outputs["AAF"]
    added = assert_only_additions(path, out, loaded.timeline.metadata["s2v_toolkit"]["mob_id"])
    assert len(added) == (2 if target else 1)       # the render track (+ the markers' event slot)
    # what was added reads back: the render clip over the clip it replaces, its marker on that clip
    back = describe_timeline(read_timeline(out), check_media=False)
    renders = [c for c in back.clips if c.name.endswith("S2V v001")]
    assert len(renders) == 1 and renders[0].s2v.get("version") == 1
    if target:
        assert renders[0].record.to_otio() == target.record.to_otio() or \
            abs(renders[0].record.start_seconds - target.record.start_seconds) <= Fraction(1, 2 * int(round(desc.rate)))
        marked = [c for c in back.clips if any(m.name.startswith("S2V v001") for m in c.markers)]
        assert marked, f"{path.name}: marker on the replaced clip not read back"


@pytest.mark.parametrize("path", AAFS)
def test_dialogue_levels_follow_the_files_gain_and_mute(path):
    """Where the corpus has a clip's media: the extracted dialogue's level over the clip is the media's
    own level (decoded here with soundfile) plus the gain the file gives the clip; muted is silent."""
    import numpy as np
    import soundfile

    from corpus_testkit import corpus_dir
    from s2v_toolkit.timeline import describe_timeline, extract_dialogue, read_timeline

    if _no_timeline(path):
        return
    desc = describe_timeline(read_timeline(path), search_dirs=[corpus_dir() / "timelines" / "media"])
    facts = {(slot, float(pos)): (muted, db) for slot, _, pos, _, muted, db, _ in _facts(path)}
    track_mute, track_solo = _mixer_switches(path)
    soloing = any(track_solo.values())
    playable = [c for c in desc.clips if c.kind == "audio" and c.media.status == "ok" and c.source_channel is None
                and not any(c.s2v.get(k) for k in ("gain_envelope", "fade_in", "fade_out"))]
    if not playable:
        pytest.skip("none of this AAF's audio media is in the corpus")
    for track_id in sorted({c.track for c in playable}):
        (t,) = extract_dialogue(desc, [track_id], allow_missing_media=True)
        for c in (c for c in playable if c.track == track_id):
            slot = c.s2v["locator"]["slot_id"]
            muted, db = facts[(slot, round(c.s2v["locator"]["record_start"], 6))]
            # Avid's mixer: a muted track is silent, and while any track is soloed only soloed tracks sound
            muted = muted or track_mute.get(slot, False) or (soloing and not track_solo.get(slot, False))
            data, _ = soundfile.read(c.media.path, dtype="float64", always_2d=True)
            media_db = 20 * np.log10(np.sqrt(np.mean(data.mean(axis=1) ** 2)))
            a = int(c.record.start_seconds * t.sample_rate) + 800
            b = int((c.record.start_seconds + c.record.duration_seconds) * t.sample_rate) - 800
            x = t.signal[a:b].astype(np.float64)
            level = 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-30)
            if muted or db <= -90:
                assert level < -90, (c.id, level)          # a clip at -99 dB or muted comes out silent
            else:
                assert level == pytest.approx(media_db + db, abs=0.5), (c.id, level, media_db, db)
