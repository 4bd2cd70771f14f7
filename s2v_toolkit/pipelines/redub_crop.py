"""Crop space for the re-dub: one aligned square crop per frame of the speaking face, its mouth mask.

The generator runs on these crops, so its cost depends on the crop size only (a 4K shot costs the
same as a 720p one). Frames where the tracked face is missing get a transform interpolated from the
nearest frames with the face (the model needs a continuous crop video), but an empty mask: nothing
is generated or pasted there, those frames pass through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from s2v_toolkit.faces import CropTransform, FaceTrack, MaskParams, face_crop_transform, mouth_mask_in_crop_window


def frame_runs(flags: np.ndarray, offset: int = 0) -> list[tuple[int, int]]:
    """Inclusive (start, end) ranges where ``flags`` is true, numbered from ``offset``."""
    f = np.concatenate([[0], np.asarray(flags, bool).astype(np.int8), [0]])
    d = np.diff(f)
    return [(int(a) + offset, int(b) - 1 + offset) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))]


@dataclass
class FaceCropPlan:
    """Per-frame crop transforms of one track over frames ``start..end`` (file frame numbers)."""

    start: int
    end: int
    size: int
    transforms: list[CropTransform]
    found: np.ndarray                          # (N,) bool: face found (landmarks) in that frame
    landmarks: list[np.ndarray | None] = field(default_factory=list)  # smoothed landmarks or None
    occluded: np.ndarray | None = None         # (N,) bool: mouth covered (hand, microphone): never masked
    occlusion_reasons: dict[int, str] = field(default_factory=dict)  # frame -> what covers it (lips / a corner)

    def __len__(self) -> int:
        return self.end - self.start + 1

    def transform(self, frame: int) -> CropTransform:
        return self.transforms[frame - self.start]

    def landmarks_at(self, frame: int) -> np.ndarray | None:
        return self.landmarks[frame - self.start]

    def is_occluded(self, frame: int) -> bool:
        return self.occluded is not None and bool(self.occluded[frame - self.start])

    def occluded_ranges(self) -> list[tuple[int, int]]:
        """Inclusive frame ranges where the face is found but its mouth is covered."""
        return frame_runs(self.occluded, self.start) if self.occluded is not None else []

    def occlusion_reason(self, frame: int) -> str:
        return self.occlusion_reasons.get(int(frame), "mouth occluded")

    def lost_ranges(self) -> list[tuple[int, int]]:
        """Inclusive frame ranges where the face is not found."""
        return frame_runs(~self.found, self.start)

    def crop_frames(self, frames: np.ndarray, first: int) -> np.ndarray:
        """Crops of ``frames`` (a block starting at file frame ``first``), clamped to the plan's range."""
        out = np.empty((len(frames), self.size, self.size, frames.shape[-1]), frames.dtype)
        for k, frame in enumerate(frames):
            f = min(max(first + k, self.start), self.end)
            out[k] = self.transform(f).crop(frame)
        return out

    def crop_masks(self, first: int, count: int, params: MaskParams, active: range | None = None) -> np.ndarray:
        """Mouth masks in crop space for frames ``first..first+count-1``; zero where the face is lost,
        its mouth occluded, outside the plan, or outside ``active`` (the line's frames)."""
        return self.crop_mask_windows(first, count, params, active).dense()

    def crop_mask_windows(self, first: int, count: int, params: MaskParams,
                          active: range | None = None) -> "MaskWindows":
        """:meth:`crop_masks` as windows (the non-zero part of each mask): no ``count`` x size² array."""
        windows: list[tuple[np.ndarray, tuple[int, int]] | None] = []
        for k in range(count):
            f = first + k
            lm = None
            if self.start <= f <= self.end and (active is None or f in active) and not self.is_occluded(f):
                lm = self.landmarks_at(f)
            windows.append(None if lm is None else mouth_mask_in_crop_window(lm, self.transform(f), params))
        return MaskWindows((count, self.size, self.size), windows)


@dataclass
class MaskWindows:
    """Float32 masks ``shape = (T, H, W)`` kept as their non-zero windows: per frame ``(alpha, (x0, y0))``
    (:func:`s2v_toolkit.faces.mouth_mask_window`) or None for an all-zero mask."""

    shape: tuple[int, int, int]
    windows: list[tuple[np.ndarray, tuple[int, int]] | None]

    def __len__(self) -> int:
        return self.shape[0]

    def frame(self, k: int) -> np.ndarray:
        """The full (H, W) mask of frame ``k``."""
        out = np.zeros(self.shape[1:], np.float32)
        self.add_to(k, out)
        return out

    def add_to(self, k: int, out: np.ndarray) -> None:
        """Write frame ``k``'s window into ``out`` (an (H, W) array of zeros there)."""
        if self.windows[k] is not None:
            win, (x0, y0) = self.windows[k]
            out[y0:y0 + win.shape[0], x0:x0 + win.shape[1]] = win

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape, np.float32)
        for k in range(len(self)):
            self.add_to(k, out[k])
        return out

    def any_positive(self, start: int, stop: int) -> np.ndarray:
        """(H, W) bool: where any of the masks ``start..stop-1`` is > 0."""
        out = np.zeros(self.shape[1:], bool)
        for k in range(start, stop):
            if self.windows[k] is not None:
                win, (x0, y0) = self.windows[k]
                out[y0:y0 + win.shape[0], x0:x0 + win.shape[1]] |= win > 0
        return out


def _interpolate_matrices(frames: np.ndarray, mats: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Linear interpolation of 2x3 matrices over frame numbers (held constant past the ends)."""
    flat = mats.reshape(len(mats), -1)
    out = np.stack([np.interp(wanted, frames, flat[:, j]) for j in range(flat.shape[1])], 1)
    return out.reshape(len(wanted), 2, 3)


def plan_face_crops(track: FaceTrack, start: int, end: int, size: int = 512,
                    face_fraction: float = 0.5, occluded_frames=(), occlusion_reasons=None) -> FaceCropPlan:
    """Crop transforms for ``track`` over frames ``start..end`` (smoothed landmarks); ``occluded_frames``:
    frames whose mouth is covered (:meth:`s2v_toolkit.faces.FaceAnalysis.occluded_frames`);
    ``occlusion_reasons``: frame -> reason (:meth:`s2v_toolkit.faces.FaceAnalysis.occlusion_reasons`)."""
    if size % 64:
        raise ValueError(f"crop size {size} must be a multiple of 64 (VAE stride 8, even latent size)")
    n = end - start + 1
    wanted = np.arange(start, end + 1)
    landmarks: list[np.ndarray | None] = [track.landmarks_at(int(f)) for f in wanted]
    found = np.array([lm is not None for lm in landmarks])
    if not found.any():
        # take the nearest frames of the track (outside the range) for a steady crop, mask stays empty
        have_frames = track.frames
        have_mats = np.stack([face_crop_transform(lm, size, face_fraction).matrix for lm in track.best_landmarks()])
    else:
        have_frames = wanted[found]
        have_mats = np.stack([face_crop_transform(landmarks[k], size, face_fraction).matrix
                              for k in np.flatnonzero(found)])
    mats = _interpolate_matrices(have_frames.astype(np.float64), have_mats, wanted.astype(np.float64))
    transforms = [CropTransform(m, int(size)) for m in mats]
    for k in np.flatnonzero(found):  # exact (not interpolated) where the face is
        transforms[k] = face_crop_transform(landmarks[k], size, face_fraction)
    assert len(transforms) == n
    occ = set(int(f) for f in occluded_frames)
    occluded = np.array([int(f) in occ for f in wanted]) & found
    return FaceCropPlan(start, end, int(size), transforms, found, landmarks, occluded,
                        {int(f): str(r) for f, r in (occlusion_reasons or {}).items()})
