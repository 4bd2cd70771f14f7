"""Graph surgery that turns mediapipe's attention face-landmark model into the Tasks API's format.

Recent mediapipe wheels (the Tasks API) ship no model files; the 0.10.21 wheel still carries the
Apache-2.0 ``face_landmark_with_attention.tflite`` used by the legacy FaceMesh solution. The Tasks
``FaceLandmarker`` graph wants a landmark model with exactly two outputs: ``[0]`` 478x3 floats
(468 mesh points + 10 iris points, pixel coordinates of the model input) and ``[1]`` the face flag.
The attention model has seven outputs instead (mesh 468x3, lips 80x2, two eyes 71x2, two irises
5x2, face flag); the legacy solution merged them on the CPU (``LandmarksRefinementCalculator``).

A zip of the unmodified model therefore fails (the graph reads the lips output as landmarks). We
append builtin TFLite ops to the model that perform that same merge inside the network:

* x, y of every landmark: the mesh value, overwritten by the lips, then the eyes refinements
  (later refinements win, as in the legacy calculator); the 10 iris points come from the iris outputs.
* z: the mesh's z; each iris point gets the mean z of its eye's 16 contour points (the first 16 of
  the eye's refinement indices), which is what the legacy calculator did for points without z.

Facts (output names, refinement index tables, the z rule) come from mediapipe's
``tensors_to_face_landmarks_with_attention`` graph and the project's recipe
(docs/faces.md). Only builtin ops (RESHAPE, SLICE, CONCATENATION, GATHER, MEAN) are used so the
stock TFLite runtime inside mediapipe runs it.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

# Which mesh landmark each row of a refinement output overwrites (legacy FaceMesh refinement tables).
LIPS_REFINEMENT = (
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306, 184, 74, 73, 72, 11, 302, 303, 304, 408,
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292, 183, 42, 41, 38, 12, 268, 271, 272, 407,
)
LEFT_EYE_REFINEMENT = (
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
    130, 25, 110, 24, 23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190,
    226, 31, 228, 229, 230, 231, 232, 233, 244, 113, 225, 224, 223, 222, 221, 189,
    35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121, 128, 245,
    156, 70, 63, 105, 66, 107, 55, 193,
)
RIGHT_EYE_REFINEMENT = (
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
    359, 255, 339, 254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414,
    446, 261, 448, 449, 450, 451, 452, 453, 464, 342, 445, 444, 443, 442, 441, 413,
    265, 353, 276, 283, 282, 295, 372, 340, 346, 347, 348, 349, 350, 357, 465,
    383, 300, 293, 334, 296, 336, 285, 417,
)
EYE_CONTOUR_POINTS = 16  # first 16 rows of each eye table: the eye contour, whose mean z the iris takes

MESH_POINTS = 468
IRIS_POINTS = 5
TOTAL_POINTS = MESH_POINTS + 2 * IRIS_POINTS  # 478

# Output tensor names of face_landmark_with_attention.tflite, in the order we consume them.
_REFINEMENT_OUTPUTS = (
    ("output_lips", LIPS_REFINEMENT),
    ("output_left_eye", LEFT_EYE_REFINEMENT),
    ("output_right_eye", RIGHT_EYE_REFINEMENT),
)
_IRIS_OUTPUTS = ("output_left_iris", "output_right_iris")
_MESH_OUTPUT = "output_mesh_identity"
_FLAG_OUTPUT = "conv_faceflag"
MERGED_OUTPUT = "output_landmarks_478"


def merge_source_rows() -> tuple[list[int], list[int]]:
    """Row indices into the stacked xy table and the extended z table for each of the 478 landmarks.

    The xy table stacks mesh (468), lips (80), left eye (71), right eye (71), left iris (5) and right
    iris (5) rows; the z table is the mesh z (468) followed by the left and right iris z (2 rows).
    Pure function, used by :func:`merge_attention_outputs` and by the tests (numpy reference).
    """
    xy_rows = list(range(MESH_POINTS)) + [0] * (2 * IRIS_POINTS)
    offset = MESH_POINTS
    for _, table in _REFINEMENT_OUTPUTS:
        for row, landmark in enumerate(table):
            xy_rows[landmark] = offset + row  # later tables overwrite earlier ones
        offset += len(table)
    for k in range(2 * IRIS_POINTS):
        xy_rows[MESH_POINTS + k] = offset + k
    z_rows = list(range(MESH_POINTS)) + [MESH_POINTS] * IRIS_POINTS + [MESH_POINTS + 1] * IRIS_POINTS
    return xy_rows, z_rows


def merge_reference(mesh: np.ndarray, refinements: dict[str, np.ndarray]) -> np.ndarray:
    """Numpy version of the appended ops (for tests): 468x3 mesh + refinement outputs -> 478x3."""
    mesh = np.asarray(mesh, np.float32).reshape(MESH_POINTS, 3)
    parts = [mesh[:, :2]] + [np.asarray(refinements[name], np.float32).reshape(-1, 2)
                             for name, _ in _REFINEMENT_OUTPUTS]
    parts += [np.asarray(refinements[name], np.float32).reshape(IRIS_POINTS, 2) for name in _IRIS_OUTPUTS]
    xy_rows, z_rows = merge_source_rows()
    xy = np.concatenate(parts, 0)[xy_rows]
    z_ext = np.concatenate([
        mesh[:, 2],
        [mesh[list(LEFT_EYE_REFINEMENT[:EYE_CONTOUR_POINTS]), 2].mean()],
        [mesh[list(RIGHT_EYE_REFINEMENT[:EYE_CONTOUR_POINTS]), 2].mean()],
    ])
    return np.concatenate([xy, z_ext[z_rows][:, None]], 1).astype(np.float32)


class _GraphEditor:
    """Appends tensors and builtin ops to subgraph 0 of an unpacked TFLite model (object API)."""

    def __init__(self, model, schema):
        self.model = model
        self.S = schema
        self.graph = model.subgraphs[0]

    def tensor_name(self, index: int) -> str:
        name = self.graph.tensors[index].name
        return name.decode() if isinstance(name, bytes) else name

    def _opcode_index(self, builtin: int) -> int:
        for k, code in enumerate(self.model.operatorCodes):
            if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
                return k
        code = self.S.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)  # schema keeps codes < 127 in the old field
        code.version = 1
        self.model.operatorCodes.append(code)
        return len(self.model.operatorCodes) - 1

    def new_tensor(self, name: str, shape, dtype=None, data: np.ndarray | None = None) -> int:
        S = self.S
        t = S.TensorT()
        t.name = name
        t.shape = [int(s) for s in shape]
        t.type = S.TensorType.FLOAT32 if dtype is None else dtype
        t.buffer = 0  # buffer 0 is the empty sentinel: activations
        if data is not None:
            buf = S.BufferT()
            buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            self.model.buffers.append(buf)
            t.buffer = len(self.model.buffers) - 1
        self.graph.tensors.append(t)
        return len(self.graph.tensors) - 1

    def int_constant(self, name: str, values) -> int:
        arr = np.asarray(values, np.int32)
        return self.new_tensor(name, arr.shape, self.S.TensorType.INT32, arr)

    def add_op(self, builtin: int, inputs, outputs, options_type: int = 0, options=None) -> None:
        op = self.S.OperatorT()
        op.opcodeIndex = self._opcode_index(builtin)
        op.inputs = list(inputs)
        op.outputs = list(outputs)
        op.builtinOptionsType = options_type
        op.builtinOptions = options
        self.graph.operators.append(op)

    # --- the five ops we need -------------------------------------------------------------
    def reshape(self, src: int, shape, name: str) -> int:
        S = self.S
        out = self.new_tensor(name, shape)
        opts = S.ReshapeOptionsT()
        opts.newShape = list(shape)
        self.add_op(S.BuiltinOperator.RESHAPE, [src, self.int_constant(name + "/shape", shape)], [out],
                    S.BuiltinOptions.ReshapeOptions, opts)
        return out

    def slice(self, src: int, begin, size, name: str) -> int:
        S = self.S
        out = self.new_tensor(name, size)
        self.add_op(S.BuiltinOperator.SLICE,
                    [src, self.int_constant(name + "/begin", begin), self.int_constant(name + "/size", size)],
                    [out], S.BuiltinOptions.SliceOptions, S.SliceOptionsT())
        return out

    def concat(self, srcs, axis: int, shape, name: str) -> int:
        S = self.S
        out = self.new_tensor(name, shape)
        opts = S.ConcatenationOptionsT()
        opts.axis = axis
        self.add_op(S.BuiltinOperator.CONCATENATION, srcs, [out], S.BuiltinOptions.ConcatenationOptions, opts)
        return out

    def gather_rows(self, src: int, rows, width: int, name: str) -> int:
        S = self.S
        out = self.new_tensor(name, [len(rows), width])
        opts = S.GatherOptionsT()
        opts.axis = 0
        self.add_op(S.BuiltinOperator.GATHER, [src, self.int_constant(name + "/rows", rows)], [out],
                    S.BuiltinOptions.GatherOptions, opts)
        return out

    def mean_rows(self, src: int, name: str) -> int:
        S = self.S
        out = self.new_tensor(name, [1, 1])
        opts = S.ReducerOptionsT()
        opts.keepDims = True
        self.add_op(S.BuiltinOperator.MEAN, [src, self.int_constant(name + "/axis", [0])], [out],
                    S.BuiltinOptions.ReducerOptions, opts)
        return out


def merge_attention_outputs(model_bytes: bytes) -> bytes:
    """Return ``face_landmark_with_attention.tflite`` rewritten to the Tasks API's 2-output format.

    Deterministic: the same input gives the same bytes. Model metadata (input normalisation) is kept.
    Raises ValueError if the model lacks the expected outputs (a different model file).
    """
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as S  # TFLite schema shipped by mediapipe

    model = S.ModelT.InitFromPackedBuf(model_bytes, 0)
    g = _GraphEditor(model, S)
    outputs = {g.tensor_name(i): i for i in g.graph.outputs}
    wanted = [_MESH_OUTPUT, _FLAG_OUTPUT, *(n for n, _ in _REFINEMENT_OUTPUTS), *_IRIS_OUTPUTS]
    missing = [n for n in wanted if n not in outputs]
    if missing:
        raise ValueError(f"not the attention face-landmark model: outputs {sorted(outputs)} lack {missing}")

    mesh = g.reshape(outputs[_MESH_OUTPUT], [MESH_POINTS, 3], "merge/mesh")
    parts = [g.reshape(outputs[name], [len(table), 2], f"merge/{name}") for name, table in _REFINEMENT_OUTPUTS]
    parts += [g.reshape(outputs[name], [IRIS_POINTS, 2], f"merge/{name}") for name in _IRIS_OUTPUTS]
    mesh_xy = g.slice(mesh, [0, 0], [MESH_POINTS, 2], "merge/mesh_xy")
    mesh_z = g.slice(mesh, [0, 2], [MESH_POINTS, 1], "merge/mesh_z")
    n_rows = MESH_POINTS + sum(len(t) for _, t in _REFINEMENT_OUTPUTS) + 2 * IRIS_POINTS
    stacked_xy = g.concat([mesh_xy, *parts], 0, [n_rows, 2], "merge/stacked_xy")
    xy_rows, z_rows = merge_source_rows()
    xy = g.gather_rows(stacked_xy, xy_rows, 2, "merge/xy")
    iris_z = [
        g.mean_rows(g.gather_rows(mesh_z, table[:EYE_CONTOUR_POINTS], 1, f"merge/{side}_contour_z"), f"merge/{side}_iris_z")
        for side, table in (("left", LEFT_EYE_REFINEMENT), ("right", RIGHT_EYE_REFINEMENT))
    ]
    z_ext = g.concat([mesh_z, *iris_z], 0, [MESH_POINTS + 2, 1], "merge/z_ext")
    z = g.gather_rows(z_ext, z_rows, 1, "merge/z")
    xyz = g.concat([xy, z], 1, [TOTAL_POINTS, 3], "merge/xyz")
    merged = g.reshape(xyz, [1, 1, 1, TOTAL_POINTS * 3], MERGED_OUTPUT)
    g.graph.outputs = [merged, outputs[_FLAG_OUTPUT]]

    builder = flatbuffers.Builder(len(model_bytes) + (1 << 16))
    with _aligned_buffer_packing(S):
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@contextmanager
def _aligned_buffer_packing(S):
    """Pack weight buffers 16-byte aligned (TFLite maps weights in place; misaligned data is copied).

    The generated ``BufferT.Pack`` writes the bytes with 1-byte alignment and one element at a time;
    ours writes the vector in one slice with 16-byte alignment. Patched only during our own ``Pack``.
    """

    def pack(self, builder):
        data = None
        if self.data is not None and len(self.data):
            raw = np.ascontiguousarray(self.data, np.uint8).tobytes()
            builder.StartVector(1, len(raw), 16)
            builder.head -= len(raw)
            builder.Bytes[builder.head:builder.head + len(raw)] = raw
            builder.vectorNumElems = len(raw)
            data = builder.EndVector()
        S.BufferStart(builder)
        if data is not None:
            S.BufferAddData(builder, data)
        S.BufferAddOffset(builder, self.offset)
        S.BufferAddSize(builder, self.size)
        return S.BufferEnd(builder)

    original = S.BufferT.Pack
    S.BufferT.Pack = pack
    try:
        yield
    finally:
        S.BufferT.Pack = original
