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


def _rate(r) -> Fraction:
    r = Fraction(r.numerator, r.denominator)
    for s in (Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)):
        if abs(r - s) / s < Fraction(5, 10000):
            return s
    return r


def _facts(path):
    """(slot id, position, length, mute, constant Amplitude gain) of every simple clip of every
    picture/sound slot of the top-level composition, positions in the slot's edit units: a
    SourceClip of a master mob straight in the sequence, or under Avid's mute Selector, or under
    "Audio Gain" operations with constant amplitudes."""
    import aaf2

    out = []
    with aaf2.open(str(path), "r") as f:
        comp = next(iter(f.content.toplevel()))
        for slot in comp.slots:
            seg = slot.segment
            if type(seg).__name__ != "Sequence" or (seg.media_kind or "").lower().replace("datadef_", "") \
                    not in ("picture", "sound"):
                continue
            # (component, start): a transition overlaps its neighbours, the next one starts under it
            placed, pos = [], 0
            for c in seg.components:
                if type(c).__name__ == "Transition":
                    pos -= c.length
                    placed.append((c, pos))
                    continue
                placed.append((c, pos))
                pos += c.length
            for k, (c, pos) in enumerate(placed):
                if type(c).__name__ == "Transition":
                    continue
                # the editor sees each side of a transition up to its cut point
                lo, hi = pos, pos + c.length
                if k > 0 and type(placed[k - 1][0]).__name__ == "Transition":
                    t, tpos = placed[k - 1]
                    lo = tpos + t["CutPoint"].value
                if k + 1 < len(placed) and type(placed[k + 1][0]).__name__ == "Transition":
                    t, tpos = placed[k + 1]
                    hi = tpos + t["CutPoint"].value
                node, muted, db, ok = c, False, 0.0, True
                while ok and type(node).__name__ != "SourceClip":
                    t = type(node).__name__
                    if t == "Selector" and "Alternates" in node.keys() and type(node["Selected"].value).__name__ == "Filler":
                        muted, node = True, node["Alternates"].value[0]
                    elif t == "OperationGroup" and node.operation.name == "Audio Gain" and len(node.segments) == 1:
                        for p in node.parameters:
                            if type(p).__name__ == "ConstantValue" and str(p["Definition"].value) in GAIN_IDS:
                                import math
                                db += 20 * math.log10(float(Fraction(p.value))) if p.value else -144
                            elif type(p).__name__ == "VaryingValue":
                                ok = False
                        node = node.segments[0]
                    else:
                        ok = False
                if ok and type(node.mob).__name__ == "MasterMob":
                    out.append((slot.slot_id, _rate(slot.edit_rate), lo, hi - lo, muted, round(max(db, -144.0), 2),
                                Fraction(node.start + lo - pos) / _rate(slot.edit_rate)))
    return out


@pytest.mark.parametrize("path", AAFS)
def test_every_simple_clip_at_its_record_range_with_mute_and_gain(path):
    from s2v_toolkit.timeline import describe_timeline, read_timeline

    desc = describe_timeline(read_timeline(path), check_media=False)
    facts = _facts(path)
    clips = {(c.s2v["locator"]["slot_id"], round(c.s2v["locator"]["record_start"], 6)): c
             for c in desc.clips if "locator" in c.s2v}
    assert facts or desc.clips
    for slot_id, rate, pos, length, muted, db, src_start in facts:
        c = clips.get((slot_id, float(pos)))
        assert c is not None, f"{path.name}: no clip at slot {slot_id} position {pos}"
        # record range in seconds from the composition start, exactly as the file counts it
        assert abs(c.record.start_seconds - Fraction(pos) / rate) < Fraction(1, 10 ** 6)
        assert abs(c.record.duration_seconds - Fraction(length) / rate) < Fraction(1, 10 ** 6)
        assert bool(c.s2v.get("muted")) == muted and (c.active is not muted)
        assert abs(c.gain_db - db) < 0.01, (c.name, c.gain_db, db)
        # source: seconds into the media file (source timecode minus the file's first timecode)
        avail = desc.otio_items[c.id].media_reference.available_range
        if avail is not None:
            into = c.source.start.seconds - Fraction(avail.start_time.value).limit_denominator(10 ** 6) \
                / Fraction(avail.start_time.rate).limit_denominator(10 ** 6)
            assert abs(into - src_start) < Fraction(1, 1000), (c.name, float(into), float(src_start))


@pytest.mark.parametrize("path", AAFS)
def test_write_back_changes_nothing_but_the_additions(path, tmp_path):
    from s2v_toolkit.timeline import RenderResult, conform, describe_timeline, read_timeline

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
