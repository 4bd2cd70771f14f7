"""Named generation presets (``--preset``): groups of settings that belong together.

* ``exact`` (the defaults): official sampling (UniPC, 40 steps, shift 3, guidance 4.5, the S2V
  negative prompt, the official size rule and per-clip seeds) plus this toolkit's two deliberate
  improvements: the audio-aligned clip plan and the border-free reference fit.
* ``official``: reproduce the official ``generate.py --task s2v-14B`` output: additionally the official
  clip plan (output frame n shows the mouth of audio frame n + 3, see ``frame_math``) and the
  official reference transform (black padding where the rounded-up size is wider than the resized
  reference). The noise is drawn as the official draws it (on the compute device, in the DiT dtype).
  Left different on purpose and documented in docs/generation.md: latents stay float32 between
  steps (the official keeps bf16), the video ends with the audio (the official adds frames up to
  its clip count), the motion frames stay float tensors.
* ``fast``: ``exact`` with TeaCache step caching (``teacache:0.2``, :mod:`s2v_toolkit.models.step_cache`)
  and a fitted last clip (``fit_last_clip``: the last clip generates only the frames it keeps, rounded
  up to a multiple of 4, as the official ``--infer_frames`` allows; 5 s = 77 + 3 frames, so the second
  clip denoises 1 latent frame instead of 20). ``few-step`` fits the last clip too.
* ``few-step``: for step-distilled LoRAs (``--lora``): 4 steps on the timestep list
  [1000, 750, 500, 250] at shift 5 with the flow Euler update and no guidance (scale 1), the
  configuration LightX2V runs step-distilled Wan models with (``WanStepDistillScheduler``:
  sigmas of the shifted 1000-step grid at ``1000 - t``; x0 = x - sigma v, next x = x0 + sigma' v;
  config ``wan22/wan_s2v_distill_lora_4step.json``: ``denoising_step_list`` [1000, 750, 500, 250],
  ``sample_shift`` 5, ``enable_cfg`` false). Without a distilled LoRA the output is blurry: the
  preset does not make the base model a few-step model.

A preset sets defaults; options given explicitly on the command line win.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.pipelines.generation_inputs import GenerationSettings

__all__ = ["FEW_STEP_TIMESTEPS", "PRESETS", "apply_preset", "preset_values"]

#: LightX2V's 4-step list for step-distilled Wan 14B models (and its S2V 4-step LoRA config)
FEW_STEP_TIMESTEPS = (1000, 750, 500, 250)
FEW_STEP_SHIFT = 5.0

PRESETS: dict[str, dict[str, Any]] = {
    "exact": {},
    "official": {"aligned": False, "reference_fit": "official", "noise_device": "model"},
    "fast": {"cache": "teacache:0.2", "fit_last_clip": True},
    "few-step": {"steps": len(FEW_STEP_TIMESTEPS), "sampler_timesteps": list(FEW_STEP_TIMESTEPS),
                 "shift": FEW_STEP_SHIFT, "scheduler": "euler", "guidance": 1.0, "fit_last_clip": True},
}


def preset_values(name: str) -> dict[str, Any]:
    """The settings a preset changes (a copy)."""
    try:
        values = PRESETS[name]
    except KeyError:
        raise ConfigError(f"--preset {name!r}: choose one of {', '.join(PRESETS)}") from None
    return {k: (list(v) if isinstance(v, list) else v) for k, v in values.items()}


def apply_preset(settings: GenerationSettings, name: str | None,
                 explicit: set[str] | frozenset[str] = frozenset()) -> GenerationSettings:
    """``settings`` with preset ``name``'s values, except the fields named in ``explicit`` (given by the
    user); records the preset's name. None: unchanged."""
    if name is None:
        return settings
    values = {k: v for k, v in preset_values(name).items() if k not in explicit}
    if "steps" in explicit and "sampler_timesteps" in values and settings.steps != len(values["sampler_timesteps"]):
        # --steps N with the few-step preset: evenly spaced steps on the same shifted grid
        values["sampler_timesteps"] = [round(1000 - 1000 * i / settings.steps) for i in range(settings.steps)]
    return replace(settings, preset=name, **values)
