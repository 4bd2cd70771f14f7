"""The Wan S2V networks, their weight loaders, schedulers and expert switching.

Public API (everything else in this package is internal):
- transformer: :class:`S2VTransformerConfig`, :class:`WanS2VTransformer`, :func:`load_s2v_transformer`,
  :func:`forward_flops`, :func:`random_s2v_transformer`, :func:`write_tiny_checkpoint`
- VAE: :class:`WanVAE`, :class:`WanVAEConfig`, :func:`load_wan_vae`, :func:`write_tiny_vae`
- text: :class:`UMT5TextEncoder`, :func:`load_umt5_text_encoder`, :func:`write_tiny_umt5`
- audio: :class:`Wav2Vec2AudioEncoder`, :func:`load_audio_encoder`, :func:`write_tiny_wav2vec2`
- sampling: :func:`make_scheduler` (UniPC, DPM++, Euler), :func:`step_distill_schedule`, :class:`ExpertSchedule`,
  :class:`ExpertOffloader`
- LoRA: :func:`apply_loras`, :func:`remove_loras`, :class:`LoraSpec`, :func:`parse_lora_spec`
- step caching: :class:`TeaCache`, :func:`parse_cache`
"""

from s2v_toolkit.models.attention import set_attention_backend  # (the attention() function stays in its module)
from s2v_toolkit.models.audio_encoder import (
    WAV2VEC2_DIRNAME,
    Wav2Vec2AudioEncoder,
    bucket_per_frame,
    frames_in_samples,
    load_audio_encoder,
    official_audio_buckets,
    samples_for_frames,
    to_transformer_layout,
    write_tiny_wav2vec2,
)
from s2v_toolkit.models.checkpoint import (
    CheckpointError,
    expected_tensor_shapes,
    load_s2v_transformer,
    read_transformer_config,
    write_tiny_checkpoint,
)
from s2v_toolkit.models.fp8 import FP8_MODES, Fp8Linear, apply_fp8_mode, enable_fp8_linears, fp8_gemm_support
from s2v_toolkit.models.fused import disable_fused_blocks, enable_fused_blocks
from s2v_toolkit.models.lora import LoraError, LoraSpec, apply_loras, parse_lora_spec, remove_loras
from s2v_toolkit.models.step_cache import TeaCache, parse_cache
from s2v_toolkit.models.offload import BlockOffloader, disable_block_offload, enable_block_offload
from s2v_toolkit.models.parallel import (
    SequenceParallelTransformer,
    cfg_and_sequence_groups,
    cfg_parallel_prediction,
    sequence_parallel_forward,
    ulysses_attention,
)
from s2v_toolkit.models.experts import Expert, ExpertOffloader, ExpertSchedule, ExpertStep, OffloadEvent, module_device
from s2v_toolkit.models.rope import s2v_token_positions
from s2v_toolkit.models.s2v_transformer import (
    ForwardFlops,
    S2VTransformerConfig,
    WanS2VTransformer,
    forward_flops,
    init_random_weights,
    random_s2v_transformer,
)
from s2v_toolkit.models.schedulers import (
    SCHEDULER_NAMES,
    DPMSolverPlusPlusScheduler,
    EulerFlowScheduler,
    FlowMatchScheduler,
    UniPCMultistepScheduler,
    make_scheduler,
    sigma_schedule,
    step_distill_schedule,
)
from s2v_toolkit.models.umt5 import (
    T5_FILENAME,
    TOKENIZER_DIRNAME,
    UMT5Config,
    UMT5Encoder,
    UMT5TextEncoder,
    build_umt5_encoder,
    clean_prompt,
    load_umt5_encoder,
    load_umt5_text_encoder,
    load_umt5_tokenizer,
    relative_position_bucket,
    write_tiny_umt5,
)
from s2v_toolkit.models.wan_vae import (
    LATENT_MEAN,
    LATENT_STD,
    VAE_FILENAME,
    WanVAE,
    WanVAEConfig,
    build_wan_vae,
    load_wan_vae,
    write_tiny_vae,
)
from s2v_toolkit.models.weights import WeightsError

__all__ = [name for name in dir() if not name.startswith("_") and name not in {"annotations"}]
