"""Bit depth and colour: 10/12-bit sources decode at 16 bits, compositing in the source's own planes keeps
every sample outside the mask, colour tags are carried, DPX/EXR sequences in and out numbered by timecode."""

from fractions import Fraction

import av
import numpy as np
import pytest

from s2v_toolkit.errors import MediaError
from s2v_toolkit.faces import CompositeParams, MaskParams, composite_crop, face_crop_transform, mouth_mask
from s2v_toolkit.faces.synthetic import posed_face
from s2v_toolkit.media import (
    ColourInfo,
    PlanarFrame,
    VideoReader,
    from_av,
    from_rgb,
    probe,
    sample_masks,
    scale_from_16,
    scale_to_16,
    to_av,
    to_rgb,
    write_video,
)

FPS = Fraction(25)
HDR = ColourInfo("bt2020", "arib-std-b67", "bt2020nc", "tv")


def _plate16(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth 16-bit R'G'B' gradients with fine texture: content whose 10/12-bit LSBs matter."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for k in range(n):
        base = np.stack([x / w, y / h, 0.5 + 0.3 * np.sin((x + 3 * k) / 17.0) * np.cos(y / 11.0)], -1)
        base = 0.1 + 0.8 * base + rng.normal(0, 0.004, base.shape)
        out.append(np.clip(np.rint(base * 65535), 0, 65535).astype(np.uint16))
    return np.stack(out)


def _source(tmp_path, name, preset, pix_fmt, colour=None, n=3, size=(144, 256)):
    frames = [from_rgb(f, pix_fmt, colour) for f in _plate16(n, *size)]
    return write_video(tmp_path / name, frames, FPS, preset=preset, pix_fmt=pix_fmt if preset == "ffv1" else None)


def _hevc(tmp_path, pix_fmt="yuv420p12le", n=3, size=(144, 256)):
    """A 12-bit HEVC (libx265) file, encoded here directly (no HEVC preset in the writer)."""
    from media_factory import encode_video

    frames = (to_av(from_rgb(f, pix_fmt, ColourInfo(matrix="bt709", range="tv"))) for f in _plate16(n, *size))
    return encode_video(tmp_path / "hevc12.mkv", frames, "libx265", pix_fmt=pix_fmt,
                        options={"x265-params": "log-level=none"})


def test_bit_depth_scaling_is_exact_and_reversible():
    for bits in (8, 10, 12, 16):
        v = np.arange(1 << bits)
        up = scale_to_16(v, bits)
        assert up[0] == 0 and up[-1] == 65535 and np.all(np.diff(up.astype(int)) > 0)
        assert np.array_equal(scale_from_16(up, bits), v)
    assert scale_to_16(np.array([512]), 10)[0] == round(512 * 65535 / 1023)


@pytest.mark.parametrize("matrix, rng, sws", [("bt709", "tv", "ITU709"), ("smpte170m", "tv", "ITU601"),
                                               ("bt709", "pc", "ITU709"), ("bt2020nc", "tv", "BT2020")])
def test_ycbcr_conversions_use_the_tagged_matrix_and_range(matrix, rng, sws):
    rgb = _plate16(1, 32, 48)[0]
    pf = from_rgb(rgb, "yuv444p10le", ColourInfo(matrix=matrix, range=rng))
    assert (pf.colour.matrix, pf.colour.range) == (matrix, rng)
    ours = to_rgb(pf, 16).astype(int)
    # independent: FFmpeg's swscale with the same matrix and range (its 8-bit output)
    ref = to_av(pf).reformat(format="rgb24", src_colorspace=sws,
                             src_color_range="MPEG" if rng == "tv" else "JPEG").to_ndarray().astype(int)
    assert np.abs(to_rgb(pf, 8).astype(int) - ref).max() <= 1
    assert np.abs(ours - rgb.astype(int)).max() <= 2 * 64  # back at the plate's values, within 10-bit steps
    other = ColourInfo(matrix="smpte170m" if matrix != "smpte170m" else "bt709", range=rng)
    wrong = to_rgb(PlanarFrame(pf.pix_fmt, pf.planes, other), 16).astype(int)
    assert np.abs(wrong - rgb.astype(int)).max() > 1000    # the matrix matters: a wrong one is caught


@pytest.mark.parametrize("preset, pix_fmt, bits, codec", [
    ("prores_hq", "yuv422p10le", 10, "prores"),
    ("prores_4444", "yuv444p12le", 12, "prores"),      # written at 10 bits; FFmpeg decodes 4444 at 12
    ("dnxhr_hqx", "yuv422p10le", 10, "dnxhd"),
    ("dnxhr_444", "yuv444p10le", 10, "dnxhd"),
    ("ffv1", "yuv422p12le", 12, "ffv1"),
    ("ffv1", "gbrp10le", 10, "ffv1"),
])
def test_high_bit_depth_sources_decode_at_16_bits(tmp_path, preset, pix_fmt, bits, codec):
    # (FFmpeg's MXF muxer records no range for DNxHR 444: that one is tested in .mov)
    ext = ".mxf" if preset == "dnxhr_hqx" else ".mkv" if preset == "ffv1" else ".mov"
    path = _source(tmp_path, "src" + ext, preset, pix_fmt.replace("p12", "p10") if codec == "prores" else pix_fmt,
                   HDR)
    v = probe(path).video
    assert (v.codec, v.pix_fmt, v.bit_depth) == (codec, pix_fmt, bits)
    # colour tags read back from the file (R'G'B' planes have no Y'CbCr matrix)
    assert v.colour == {**HDR.to_dict(), **({"matrix": "gbr"} if pix_fmt.startswith("gbr") else {})}, v.colour
    with VideoReader(path, depth="native") as r:
        native = r.read(0, 3)
    with VideoReader(path, depth=16) as r:
        rgb16 = r.read(0, 3)
    with VideoReader(path) as r:
        rgb8 = r.read(0, 3)
    assert rgb16.dtype == np.uint16 and rgb8.dtype == np.uint8
    pf = native[1]
    assert pf.pix_fmt == pix_fmt and pf.planes[0].dtype == np.uint16 and pf.colour.to_dict() == v.colour
    # real high-bit-depth samples: the LSBs below 8 bits vary (an 8-bit decode would lose them)
    assert len(np.unique(pf.planes[0] % (1 << (bits - 8)))) == 1 << (bits - 8)
    assert np.array_equal(to_rgb(pf, 16), rgb16[1])      # the 16-bit read is the planes' conversion
    if pf.kind == "gbr":                                  # planar R'G'B': exact and reversible
        assert np.array_equal(scale_from_16(rgb16[1][..., 0], bits), pf.planes[2])
    # the 8-bit read (swscale, same matrix and range) agrees; 4:2:2 differs by its chroma interpolation
    assert np.abs(rgb16[1].astype(int) / 257 - rgb8[1]).max() <= (1.5 if pf.subsampling(1) == (1, 1) else 4.5)


def test_ten_bit_h264_and_twelve_bit_hevc_decode_natively(tmp_path):
    h264 = write_video(tmp_path / "h264_10.mp4", [from_rgb(f, "yuv420p10le") for f in _plate16(3, 144, 256)],
                       FPS, preset="h264", pix_fmt="yuv420p10le")
    for path, fmt, bits in ((h264, "yuv420p10le", 10), (_hevc(tmp_path), "yuv420p12le", 12)):
        assert (probe(path).video.pix_fmt, probe(path).video.bit_depth) == (fmt, bits)
        with VideoReader(path, depth="native") as r:
            pf = r.read(1, 1)[0]
        assert pf.pix_fmt == fmt and pf.planes[0].max() > 255
        assert len(np.unique(pf.planes[0] % (1 << (bits - 8)))) == 1 << (bits - 8)


def _mouth_patch(pf: PlanarFrame, size: int = 64):
    """A face crop transform, a mouth mask and a regenerated crop (16-bit, clearly different)."""
    h, w = pf.shape
    lm = posed_face((w * 0.5, h * 0.45), w * 0.35, angle_deg=4.0, mouth_open=0.3)
    transform = face_crop_transform(lm, size)
    crop = transform.crop(pf)
    assert crop.dtype == np.uint16 and crop.shape == (size, size, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = (((xx + yy) // 3) % 2).astype(np.float64)               # a "mouth" nothing like the plate
    crop = np.stack([20000 + 40000 * stripes, 50000 - 30000 * stripes, 10000 + 20000 * (1 - stripes)], -1)
    crop = crop.astype(np.uint16)
    mask = mouth_mask((h, w), lm, MaskParams())
    return transform, crop, mask


@pytest.mark.parametrize("preset, pix_fmt", [("prores_hq", "yuv422p10le"), ("dnxhr_hqx", "yuv422p10le"),
                                             ("ffv1", "yuv420p12le"), ("dnxhr_444", "yuv444p10le")])
def test_composite_in_the_source_planes_is_bit_identical_outside_the_mask_through_lossless_ffv1(
        tmp_path, preset, pix_fmt):
    ext = ".mxf" if preset.startswith("dnxhr") else ".mkv" if preset == "ffv1" else ".mov"
    src_path = _source(tmp_path, "plate" + ext, preset, pix_fmt, ColourInfo("bt709", "bt709", "bt709", "tv"))
    with VideoReader(src_path, depth="native") as r:
        source = r.read(0, 3)                            # decoded in its own pixel format
    transform, crop, mask = _mouth_patch(source[1])
    done = [source[0], composite_crop(source[1], crop, transform, mask, CompositeParams()), source[2]]
    out = write_video(tmp_path / "out.mkv", done, FPS, preset="ffv1")   # FFV1 at the source's pix_fmt
    v = probe(out).video
    assert (v.pix_fmt, v.colour["matrix"], v.colour["primaries"]) == (pix_fmt, "bt709", "bt709")
    with VideoReader(out, depth="native") as r:
        back = r.read(0, 3)
    assert back[0].equal(source[0]) and back[2].equal(source[2])       # untouched frames: every sample
    touched, core = sample_masks(source[1], mask), sample_masks(source[1], mask > 0.5)
    for plane, (a, b, t, c) in enumerate(zip(back[1].planes, source[1].planes, touched, core)):
        assert np.array_equal(a[~t], b[~t]), f"plane {plane}: a sample outside the mask changed"
        assert np.abs(a[c].astype(int) - b[c]).mean() > 8, f"plane {plane}: the mouth was not composited"
    # the composite itself looks like the RGB composite (the same blend, done in Y'CbCr)
    rgb_src = to_rgb(source[1], 16)
    rgb_ref = composite_crop(rgb_src, crop, transform, mask, CompositeParams()).astype(int)
    inside = mask > 0.5
    assert np.abs(to_rgb(back[1], 16).astype(int)[inside] - rgb_ref[inside]).mean() < 2500


def test_colour_tags_are_carried_and_untagged_hd_is_bt709(tmp_path):
    path = _source(tmp_path, "hlg.mov", "prores_hq", "yuv422p10le", HDR)
    with VideoReader(path, depth="native") as r:
        frames = r.read(0, 3)
    out = write_video(tmp_path / "copy.mov", frames, FPS)                # ProRes, from the planes
    assert probe(out).video.colour == HDR.to_dict()
    # 8-bit R'G'B' written with no tags: HD is tagged BT.709 and converted with BT.709, not swscale's 601
    rgb = (_plate16(1, 720, 1280)[0] // 257).astype(np.uint8)
    hd = write_video(tmp_path / "hd.mkv", [rgb], FPS, preset="ffv1", pix_fmt="yuv444p10le")
    assert probe(hd).video.colour["matrix"] == "bt709"
    with VideoReader(hd, depth="native") as r:
        planes = r.read(0, 1)[0]
    ours = from_rgb(rgb, "yuv444p10le", ColourInfo(matrix="bt709", range="tv"))
    assert max(np.abs(a.astype(int) - b).max() for a, b in zip(planes.planes, ours.planes)) <= 2


# -------------------------------------------------------------------------------------------------
# Image sequences
# -------------------------------------------------------------------------------------------------
def test_dpx_sequence_is_10_bit_exact_and_numbered_by_timecode(tmp_path):
    planes = [from_rgb(f, "gbrp10le") for f in _plate16(4, 64, 96)]
    audio = np.sin(np.linspace(0, 200, 48000 * 4 // 25)).astype(np.float32)
    pattern = write_video(tmp_path / "plate.dpx", planes, 24, start_timecode="01:00:00:00", audio=audio)
    assert pattern == tmp_path / "plate.%07d.dpx"
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["plate.0086400.dpx", "plate.0086401.dpx", "plate.0086402.dpx", "plate.0086403.dpx",
                     "plate.wav"]                                           # 01:00:00:00 at 24 fps = 86400
    # FFmpeg itself reads the rate and timecode we put in the DPX TV/film headers
    with av.open(str(tmp_path / "plate.0086402.dpx")) as c:
        frame = next(c.decode(video=0))
        assert frame.metadata.get("timecode") == "01:00:00:02" and c.streams.video[0].codec_context.framerate == 24
    for src in (pattern, tmp_path):                                         # a pattern or its folder
        v = probe(src).video
        assert (v.codec, v.frame_count, v.fps, v.start_timecode, v.bit_depth) == ("dpx", 4, 24, "01:00:00:00", 10)
    with VideoReader(pattern, depth="native") as r:
        back = r.read(1, 3)
        # the time-mapped interface of a video's reader: a sequence's map is one to one
        m = r.read_mapped(0, 4)[1]
        assert m.source == [0, 1, 2, 3] and m.kinds == ["exact"] * 4 and m.exact
    assert all(b.equal(p) for b, p in zip(back, planes[1:]))              # 10-bit samples, bit for bit
    with VideoReader(pattern, fps=48, warn_vfr=False) as r:                 # on another grid: placed by time
        assert r.frame_count == 8 and r.read_mapped(0, 8)[1].source == [0, 0, 1, 1, 2, 2, 3, 3]
    (tmp_path / "again").mkdir()
    with VideoReader(tmp_path, depth=16) as r:
        again = write_video(tmp_path / "again" / "p.dpx", r.read(0, 4), 24, start_timecode="01:00:00:00")
    with VideoReader(again, depth="native") as r:
        assert all(b.equal(p) for b, p in zip(r.read(0, 4), planes))       # 16-bit round trip is exact
    # a sequence converts to a movie (it has no display matrix to carry: session 16's rotation check broke this)
    from s2v_toolkit.media import convert_report, display_transform

    assert display_transform(pattern) == (0, None)
    movie = convert_report(pattern, tmp_path / "again" / "plate.mkv").info.video
    assert (movie.frame_count, movie.fps, movie.start_timecode) == (4, 24, "01:00:00:00")
    with VideoReader(tmp_path / "again" / "plate.mkv", depth="native") as r:
        assert all(b.equal(p) for b, p in zip(r.read(0, 4), planes))       # FFV1 keeps the 10-bit planes
    (tmp_path / "plate.0086401.dpx").unlink()
    with pytest.raises(MediaError, match=r"frames 86401 are missing"):
        probe(pattern)


def test_exr_half_sequence_round_trips_and_keeps_rate_and_timecode(tmp_path):
    rgb = _plate16(3, 48, 64)
    pattern = write_video(tmp_path / "comp.exr", rgb, Fraction(24000, 1001), start_timecode="00:59:59:00")
    v = probe(pattern).video
    assert (v.codec, v.frame_count, v.fps, v.start_timecode) == ("exr", 3, Fraction(24000, 1001), "00:59:59:00")
    first = 3599 * 24
    assert sorted(p.name for p in tmp_path.iterdir())[0] == f"comp.{first:07d}.exr"
    with VideoReader(pattern, depth=16) as r:
        back = r.read(0, 3)
    assert np.abs(back.astype(int) - rgb).max() <= 40                     # half float: 11 significant bits
    with av.open(str(tmp_path / f"comp.{first:07d}.exr")) as c:            # FFmpeg still reads the file
        assert next(c.decode(video=0)).format.name == "gbrpf16le"


def test_convert_keeps_the_source_planes_depth_and_colour(tmp_path):
    from s2v_toolkit.media import convert

    src = _source(tmp_path, "master.mov", "prores_hq", "yuv422p10le", HDR)
    info = convert(src, tmp_path / "copy.mkv")                         # FFV1: lossless
    assert (info.video.pix_fmt, info.video.colour) == ("yuv422p10le", HDR.to_dict())
    with VideoReader(src, depth="native") as a, VideoReader(tmp_path / "copy.mkv", depth="native") as b:
        assert all(x.equal(y) for x, y in zip(a.read(0, 3), b.read(0, 3)))


@pytest.mark.filterwarnings("ignore::s2v_toolkit.errors.MediaWarning")
def test_depths_read_a_variable_rate_10_bit_file_by_time(tmp_path):
    """Every depth places frames by presentation time: a 10-bit FFV1 file missing one frame reads with the
    same frame map at 8, 16 and native depth; the gap repeats the frame shown then, at full depth."""
    from s2v_toolkit.media import VideoReader

    h, w, missing = 32, 48, 3
    codes = [np.full((h, w), 100 * k + 7, np.uint16) for k in range(8)]  # 10-bit code per frame
    path = tmp_path / "vfr10.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "gbrp10le"
        s.time_base = Fraction(1, 1000)
        for k in range(8):
            if k == missing:
                continue
            f = av.VideoFrame(w, h, "gbrp10le")
            for plane in f.planes:
                dst = np.frombuffer(memoryview(plane).cast("B"), dtype="<u2")
                dst.reshape(plane.height, plane.line_size // 2)[:, :w] = codes[k]
            f.pts, f.time_base = k * 40, Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    maps = {}
    with VideoReader(path, depth=16) as r16, VideoReader(path, depth="native") as rn, VideoReader(path) as r8:
        assert r16.frame_count == 8
        f16, maps[16] = r16.read_mapped(0, 8)
        fn, maps["native"] = rn.read_mapped(0, 8)
        f8, maps[8] = r8.read_mapped(0, 8)
    assert f16.dtype == np.uint16 and f8.dtype == np.uint8 and fn[0].pix_fmt == "gbrp10le"
    assert maps[8].to_dict() == maps[16].to_dict() == maps["native"].to_dict()
    assert maps[16].indexes("duplicated") == [missing]
    shown = [k if k != missing else missing - 1 for k in range(8)]
    for g, k in enumerate(shown):
        assert np.array_equal(fn[g].planes[0], codes[k])                        # the exact 10-bit codes
        assert np.array_equal(f16[g][..., 0], scale_to_16(codes[k], 10))         # exact 10 -> 16 bit
    assert fn[missing] is not fn[missing - 1]        # a repeated frame is its own copy (safe to composite)


def test_full_range_jpeg_style_source_keeps_its_samples_through_lossless_ffv1(tmp_path):
    # phone video decodes as yuvj420p (FFmpeg's full-range alias), which FFV1 refuses: a re-dub of a real
    # Android clip stopped with a raw "avcodec_open2(ffv1) returned 22". Its planes are yuv420p samples
    # tagged full range
    src = tmp_path / "phone.mp4"
    rng = np.random.default_rng(7)
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=25, options={"qp": "0"})
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        for i in range(3):
            rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuvj420p")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    with VideoReader(src, depth="native") as r:
        frames = r.read(0, 3)
    assert frames[0].pix_fmt == "yuv420p" and frames[0].colour.range == "pc"
    out = write_video(tmp_path / "out.mkv", frames, 25, preset="ffv1")
    assert probe(out).video.pix_fmt == "yuv420p"
    with VideoReader(out, depth="native") as r:
        back = r.read(0, 3)
    assert back[0].colour.range == "pc"
    for a, b in zip(frames, back):
        assert all(np.array_equal(p, q) for p, q in zip(a.planes, b.planes))
