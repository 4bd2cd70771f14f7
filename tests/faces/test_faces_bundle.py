"""The offline face_landmarker.task: graph merge, bundle layout, lookup, and the real model when built.

The merge is checked numerically by running a stand-in model (same output names and sizes as
mediapipe's attention landmark model) through LiteRT; the real bundle (built once by
`s2vt faces setup` in CI) is checked on the astronaut photo.
"""

import hashlib
import zipfile

import numpy as np
import pytest

from s2v_toolkit.faces import bundle as B
from s2v_toolkit.faces import landmarker_model as LM

OUTPUTS = (("output_mesh_identity", 1404), ("output_lips", 160), ("output_left_eye", 142),
           ("output_right_eye", 142), ("output_left_iris", 10), ("output_right_iris", 10), ("conv_faceflag", 1))


def fake_attention_model(names=OUTPUTS) -> bytes:
    """A TFLite model with one input per output of the attention model, reshaped to its output name."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as S

    m = S.ModelT()
    m.version = 3
    m.buffers = [S.BufferT()]
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.RESHAPE
    code.version = 1
    m.operatorCodes = [code]
    g = S.SubGraphT()
    g.tensors, g.operators, g.inputs, g.outputs = [], [], [], []

    def tensor(name, shape, ttype=S.TensorType.FLOAT32, data=None):
        t = S.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), ttype, 0
        if data is not None:
            buf = S.BufferT()
            buf.data = np.frombuffer(np.asarray(data, np.int32).tobytes(), np.uint8)
            m.buffers.append(buf)
            t.buffer = len(m.buffers) - 1
        g.tensors.append(t)
        return len(g.tensors) - 1

    for name, n in names:
        src = tensor("in_" + name, [1, n])
        dst = tensor(name, [1, 1, 1, n])
        shape = tensor(name + "/shape", [4], S.TensorType.INT32, [1, 1, 1, n])
        op = S.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [src, shape], [dst]
        op.builtinOptionsType = S.BuiltinOptions.ReshapeOptions
        op.builtinOptions = S.ReshapeOptionsT()
        op.builtinOptions.newShape = [1, 1, 1, n]
        g.operators.append(op)
        g.inputs.append(src)
        g.outputs.append(dst)
    m.subgraphs = [g]
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def legacy_refinement(mesh, parts):
    """The legacy FaceMesh refinement written out longhand: start from the mesh, let the lips, then
    the eyes overwrite x/y of their landmarks, append the irises with their eye's mean contour z."""
    out = np.zeros((478, 3), np.float32)
    out[:468] = mesh.reshape(468, 3)
    for name, table in (("output_lips", LM.LIPS_REFINEMENT), ("output_left_eye", LM.LEFT_EYE_REFINEMENT),
                        ("output_right_eye", LM.RIGHT_EYE_REFINEMENT)):
        xy = parts[name].reshape(-1, 2)
        for row, idx in enumerate(table):
            out[idx, :2] = xy[row]
    for base, name, table in ((468, "output_left_iris", LM.LEFT_EYE_REFINEMENT),
                              (473, "output_right_iris", LM.RIGHT_EYE_REFINEMENT)):
        out[base:base + 5, :2] = parts[name].reshape(5, 2)
        out[base:base + 5, 2] = np.mean([out[i, 2] for i in table[:16]])
    return out


def _random_outputs(seed=0):
    rng = np.random.default_rng(seed)
    return {name: rng.normal(0, 100, (1, n)).astype(np.float32) for name, n in OUTPUTS}


def test_numpy_merge_matches_the_legacy_refinement_rules():
    x = _random_outputs()
    ref = LM.merge_reference(x["output_mesh_identity"], x)
    assert np.array_equal(ref, legacy_refinement(x["output_mesh_identity"], x))


def test_appended_ops_compute_the_merge_inside_the_model():
    pytest.importorskip("mediapipe")
    litert = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert runs the merged graph")
    merged = LM.merge_attention_outputs(fake_attention_model())
    assert merged == LM.merge_attention_outputs(fake_attention_model())  # deterministic bytes
    it = litert.Interpreter(model_content=merged)
    it.allocate_tensors()
    outs = it.get_output_details()
    assert [o["name"] for o in outs] == [LM.MERGED_OUTPUT, "conv_faceflag"]
    assert list(outs[0]["shape"]) == [1, 1, 1, 1434]
    x = _random_outputs(1)
    for d in it.get_input_details():
        it.set_tensor(d["index"], x[d["name"][3:]])
    it.invoke()
    got = it.get_tensor(outs[0]["index"]).reshape(478, 3)
    assert np.allclose(got, legacy_refinement(x["output_mesh_identity"], x), atol=1e-4)
    assert np.array_equal(it.get_tensor(outs[1]["index"]).ravel(), x["conv_faceflag"].ravel())


def test_merge_refuses_a_model_without_the_attention_outputs():
    pytest.importorskip("mediapipe")
    with pytest.raises(ValueError, match="output_lips"):
        LM.merge_attention_outputs(fake_attention_model([n for n in OUTPUTS if n[0] != "output_lips"]))


def _fake_wheel(path, landmark_model: bytes, detector: bytes = b"detector-bytes" * 10):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(B.DETECTOR_MEMBER, detector)
        z.writestr(B.LANDMARK_MEMBER, landmark_model)
        z.writestr("mediapipe-0.10.21.dist-info/LICENSE", "Apache License\nVersion 2.0, January 2004\n")
    return path


def test_build_from_a_wheel_writes_an_aligned_bundle_and_its_licence_notice(tmp_path, monkeypatch):
    pytest.importorskip("mediapipe")
    model = fake_attention_model()
    wheel = _fake_wheel(tmp_path / "mediapipe-0.10.21-fake.whl", model)
    # the real hashes pin the real wheel's files; accept the stand-ins for this test
    monkeypatch.setattr(B, "SOURCE_SHA256", {B.DETECTOR_MEMBER: hashlib.sha256(b"detector-bytes" * 10).hexdigest(),
                                             B.LANDMARK_MEMBER: hashlib.sha256(model).hexdigest()})
    out = tmp_path / "data" / "face_landmarker.task"
    info = B.build_landmarker_bundle(out, wheel=wheel)
    assert info.path == out and out.is_file()
    with zipfile.ZipFile(out) as z:
        members = {i.filename: i for i in z.infolist()}
        assert set(members) == {B.BUNDLE_DETECTOR, B.BUNDLE_LANDMARKS}
        assert all(i.compress_type == zipfile.ZIP_STORED for i in members.values())
        assert z.read(B.BUNDLE_DETECTOR) == b"detector-bytes" * 10
        assert z.read(B.BUNDLE_LANDMARKS) == LM.merge_attention_outputs(model)
    raw = out.read_bytes()
    for name, i in members.items():
        # local header: 30 bytes + name + extra; the data must start 16-byte aligned
        n_name, n_extra = np.frombuffer(raw[i.header_offset + 26:i.header_offset + 30], "<u2")
        assert (i.header_offset + 30 + n_name + n_extra) % 16 == 0, name
    notice = info.notice.read_text()
    assert "Apache License" in notice and "MODIFIED" in notice
    assert hashlib.sha256(model).hexdigest() in notice
    again = B.build_landmarker_bundle(tmp_path / "again.task", wheel=wheel)
    assert again.sha256 == info.sha256  # reproducible


def test_wrong_or_incomplete_wheel_is_refused(tmp_path):
    wheel = _fake_wheel(tmp_path / "w.whl", b"not the model")
    with pytest.raises(B.FaceModelMissing, match="sha256"):
        B.read_source_models(wheel)
    with zipfile.ZipFile(tmp_path / "empty.whl", "w") as z:
        z.writestr("x", "y")
    with pytest.raises(B.FaceModelMissing, match="lacks"):
        B.read_source_models(tmp_path / "empty.whl")
    (tmp_path / "junk.whl").write_bytes(b"junk")
    with pytest.raises(B.FaceModelMissing, match="not a readable wheel"):
        B.read_source_models(tmp_path / "junk.whl")


def test_bundle_lookup_order(tmp_path, monkeypatch):
    for var in (B.ENV_BUNDLE, B.ENV_HOME, "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert B.configured_bundle_path() == tmp_path / "home" / ".cache" / "s2v-toolkit" / "face_landmarker.task"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert B.configured_bundle_path() == tmp_path / "xdg" / "s2v-toolkit" / "face_landmarker.task"
    monkeypatch.setenv(B.ENV_HOME, str(tmp_path / "s2vt"))
    assert B.configured_bundle_path() == tmp_path / "s2vt" / "face_landmarker.task"
    monkeypatch.setenv(B.ENV_BUNDLE, str(tmp_path / "official.task"))
    assert B.configured_bundle_path() == tmp_path / "official.task"
    assert B.find_landmarker_bundle() is None
    (tmp_path / "official.task").write_bytes(b"x")
    assert B.find_landmarker_bundle() == tmp_path / "official.task"


def test_missing_bundle_offline_names_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.delenv(B.ENV_BUNDLE, raising=False)
    monkeypatch.setenv(B.ENV_HOME, str(tmp_path))
    monkeypatch.setenv(B.ENV_OFFLINE, "1")
    with pytest.raises(B.FaceModelMissing, match="s2vt faces setup"):
        B.ensure_landmarker_bundle()
    monkeypatch.setenv(B.ENV_BUNDLE, str(tmp_path / "nope.task"))
    with pytest.raises(B.FaceModelMissing, match="S2VT_FACE_LANDMARKER"):
        B.ensure_landmarker_bundle()


def test_missing_mediapipe_is_a_clear_error_with_the_install_command(monkeypatch, capsys):
    import sys

    from s2v_toolkit.cli import main
    from s2v_toolkit.faces import FaceLandmarkDetector

    monkeypatch.setitem(sys.modules, "mediapipe.tasks.python.vision", None)  # import now fails
    with pytest.raises(B.MediapipeMissing, match="pip install --no-deps mediapipe==1.2.3"):
        FaceLandmarkDetector()
    assert main(["faces", "setup", "--output", "/nonexistent/dir/x.task"]) == 2
    err = capsys.readouterr().err
    assert "pip install --no-deps mediapipe" in err and "Traceback" not in err


def test_cli_setup_check_reports_a_missing_bundle(tmp_path, monkeypatch, capsys):
    from s2v_toolkit.cli import main

    monkeypatch.setenv(B.ENV_BUNDLE, str(tmp_path / "none.task"))
    assert main(["faces", "setup", "--check"]) == 1
    assert "missing" in capsys.readouterr().out


needs_bundle = pytest.mark.skipif(B.find_landmarker_bundle() is None,
                                  reason="face_landmarker.task not built: run `s2vt faces setup` first")


@needs_bundle
def test_real_bundle_finds_the_astronaut_with_refined_eyes_and_irises():
    from skimage import data

    from s2v_toolkit.faces import FaceLandmarkDetector

    img = data.astronaut()
    with FaceLandmarkDetector(video=False) as det:
        faces = det.detect(img)
    assert len(faces) == 1
    lm = faces[0].landmarks
    assert lm.shape == (478, 3)
    x0, y0, x1, y1 = faces[0].box
    assert 165 < x0 < 195 and 255 < x1 < 285 and 55 < y0 < 85 and 165 < y1 < 190  # her face in the photo
    for iris, (outer, inner) in ((lm[468], (lm[33], lm[133])), (lm[473], (lm[263], lm[362]))):
        lo, hi = sorted((outer[0], inner[0]))
        assert lo < iris[0] < hi  # each iris centre lies between its eye's corners
        assert abs(iris[1] - (outer[1] + inner[1]) / 2) < 6
    assert lm[61, 0] < lm[13, 0] < lm[291, 0] and lm[13, 1] < lm[14, 1]  # lips in place, mouth open a bit


@needs_bundle
def test_cli_setup_check_and_self_test_on_the_built_bundle(capsys):
    from s2v_toolkit.cli import main

    assert main(["faces", "setup", "--check", "--json"]) == 0
    assert '"sha256"' in capsys.readouterr().out
    assert main(["faces", "setup"]) == 0  # present: loads it once (self-check), builds nothing
