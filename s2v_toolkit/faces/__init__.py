"""faces stage: face tracks, active-speaker choice, mouth-region masks, aligned crops, compositing back.

Public API (see docs/faces.md)::

    # model bundle (mediapipe Tasks FaceLandmarker, built offline by `s2vt faces setup`)
    build_landmarker_bundle(out=None, wheel=None) -> BundleInfo
    find_landmarker_bundle() -> Path | None ; ensure_landmarker_bundle() -> Path ; FaceModelMissing
    FaceLandmarkDetector(bundle=None, max_faces=4, video=True, fps=25).detect(frame, index) -> [FaceObservation]

    # shots
    analyze_video(path, start=None, end=None) -> FaceAnalysis (tracks, descriptors, per-range issues)
    analyze_frames((index, frame) pairs, fps, detector, start=, end=) -> FaceAnalysis
    FaceTracker / track_observations(...) -> [FaceTrack]   (identities, gaps, One-Euro smoothing)

    # the speaking face
    face_descriptor(image, landmarks) ; face_similarity(a, b)
    audio_envelope / speech_envelope(samples, rate, fps, n_frames) ; audio_evidence(mouth, envelope, fps) ; choose_speaker(tracks, start, end, envelope=, reference=, ...)
    reference_descriptor(image) ; speaker_for_line(analysis, start, end, audio=, reference=) -> SpeakerChoice
    line_audio_z(tracks, start, end, envelope) ; pool_audio_z(per_line_z) -> PooledChoice (Stouffer over lines)
    speakers_pooled(analysis, [(start, end, audio), ...]) ; matching_track(track, other_tracks, start, end)
    # the audio-visual active-speaker network (Light-ASD, shipped weights), used by speaker_for_line
    load_light_asd() -> asd_model.LightASD (torch, imported on first use) ; load_networks() -> [(name, network)]
    (Light-ASD and LR-ASD; S2VT_ASD_NETWORKS picks) ; combine_evidence([AsdEvidence]) -> AsdEvidence (mean z)
    network_evidence(analysis, tracks, start, end, audio) -> {track id: AsdEvidence} (the networks averaged)

    # mouth occlusion (hand, microphone, object over the mouth): FaceAnalysis.occlusion[track_id]
    OcclusionParams(threshold=4.0, release=2.5, min_run=3) ; track_occlusion(track, features) -> TrackOcclusion
    FaceAnalysis.occluded_frames(track_id, start, end) -> [frame]

    # masks, crops, compositing
    mouth_mask(shape, landmarks, MaskParams(...)) -> float32 (H, W) ; mouth_mask_in_crop(landmarks, transform)
    mouth_mask_window(shape, landmarks, params) -> (alpha window, (x0, y0)) ; mouth_mask_in_crop_window(...)
    face_crop_transform(landmarks, size=512) -> CropTransform (.crop(frame), .matrix, .inverse)
    composite_crop(frame, crop, transform, mask, CompositeParams(...), origin=(0, 0), out=None) -> frame
"""

from s2v_toolkit.faces.align import CropTransform, face_crop_transform, fit_similarity, track_crop_transforms
from s2v_toolkit.faces.asd import AsdEvidence, combine_evidence, load_light_asd, load_networks, network_evidence
from s2v_toolkit.faces.analyze import AnalysisParams, FaceAnalysis, RangeIssue, analyze_frames, analyze_video
from s2v_toolkit.faces.bundle import (
    BundleInfo,
    FaceModelMissing,
    build_landmarker_bundle,
    configured_bundle_path,
    ensure_landmarker_bundle,
    find_landmarker_bundle,
)
from s2v_toolkit.faces.composite import CompositeParams, composite_crop, psnr
from s2v_toolkit.faces.detector import FaceLandmarkDetector
from s2v_toolkit.faces.identity import FaceDescriptor, face_descriptor, face_similarity
from s2v_toolkit.faces.landmarks import FaceObservation, face_size, mouth_opening
from s2v_toolkit.faces.mask import MaskParams, mouth_mask, mouth_mask_in_crop, mouth_mask_in_crop_window, mouth_mask_window
from s2v_toolkit.faces.occlusion import OcclusionParams, TrackOcclusion, track_occlusion
from s2v_toolkit.faces.smoothing import LandmarkSmoothing, OneEuroParams
from s2v_toolkit.faces.speaker import (
    PooledChoice,
    SpeakerChoice,
    SpeakerParams,
    audio_envelope,
    audio_evidence,
    choose_speaker,
    line_audio_z,
    matching_track,
    pool_audio_z,
    reference_descriptor,
    speaker_for_line,
    speakers_pooled,
    speech_envelope,
)
from s2v_toolkit.faces.tracking import FaceTrack, FaceTracker, TrackerParams, track_observations

__all__ = [
    "AnalysisParams", "BundleInfo", "CompositeParams", "CropTransform", "FaceAnalysis", "FaceDescriptor",
    "FaceLandmarkDetector", "FaceModelMissing", "FaceObservation", "FaceTrack", "FaceTracker", "LandmarkSmoothing",
    "MaskParams", "OcclusionParams", "OneEuroParams", "RangeIssue", "SpeakerChoice", "SpeakerParams", "TrackOcclusion", "TrackerParams",
    "analyze_frames", "analyze_video", "audio_envelope", "audio_evidence", "build_landmarker_bundle", "choose_speaker",
    "composite_crop", "configured_bundle_path", "ensure_landmarker_bundle", "face_crop_transform",
    "face_descriptor", "face_similarity", "face_size", "find_landmarker_bundle", "fit_similarity",
    "mouth_mask", "mouth_mask_in_crop", "mouth_opening", "psnr", "reference_descriptor", "speaker_for_line",
    "speech_envelope", "track_crop_transforms", "track_observations", "track_occlusion",
    "mouth_mask_window", "mouth_mask_in_crop_window",
    "PooledChoice", "line_audio_z", "matching_track", "pool_audio_z", "speakers_pooled",
    "AsdEvidence", "combine_evidence", "load_light_asd", "load_networks", "network_evidence",
]
