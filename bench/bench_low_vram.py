"""One 704x1280, 80-frame S2V clip phase by phase, in ``max_vram_gb`` mode under an enforced cap, then resident.

    python bench/bench_low_vram.py --out bench_out [--budget-gb 24] [--size 704x1280] [--steps 2]
    python bench/bench_low_vram.py --tiny --device cpu     # plumbing check of this script on a CPU

Full-size random weights built in memory (nothing read or downloaded): the S2V-14B DiT in bf16
(``random_s2v_transformer``), umT5-XXL in bf16, the Wan2.1 VAE in fp32 and wav2vec2-large (the
xlsr-53 architecture) in fp32. The phases run through :class:`S2VGenerator`'s own code (its text
cache, its VAE/wav2vec2 placement, its expert offloader and host-side decode), as ``generate`` runs
them for one clip with motion latents:

  text    prompt + negative prompt through the text cache (umT5 visits the device per prompt when capped)
  audio   wav2vec2 features of 5 s, one row per frame
  vae_enc reference frame + the 73 motion frames
  denoise ``--steps`` steps, classifier-free guidance as two forwards per step
  vae_dec the clip's 20 latents behind the 19 motion latents (``_decode_to_host`` when capped)

Capped run: ``S2VGenerator.load``'s placement (blocks in pinned host memory, prefetch 1; encoders and
VAE on the CPU at rest) and ``torch.cuda.set_per_process_memory_fraction(budget / total)`` set before
the first phase, so any phase over the budget fails with an out-of-memory error. Then the cap is
lifted, the blocks go back onto the GPU and the same phases run resident. Peak = max allocated
(and reserved) within the phase; the fused (torch.compile) blocks are off in both runs (compile time
would not fit this run's time limit). Writes ``bench_low_vram.json`` under --out after every phase.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


class RandomPromptEncoder:
    """Stands in for UMT5TextEncoder (no tokenizer files): a prompt becomes ``tokens`` random ids,
    padded to the encoder's text length, and goes through the real encoder."""

    def __init__(self, model, tokens: int = 120):
        self.model = model
        self.tokens = tokens

    def encode(self, texts):
        cfg = self.model.config
        device = next(self.model.parameters()).device
        out = []
        for i, _ in enumerate(texts):
            g = torch.Generator().manual_seed(1000 + i)
            ids = torch.randint(0, cfg.vocab_size, (1, cfg.text_len), generator=g)
            mask = torch.zeros_like(ids)
            mask[:, : self.tokens] = 1
            with torch.no_grad():
                hidden = self.model(ids.to(device), mask.to(device))
            out.append(hidden[0, : self.tokens])
        return out


def build_components(tiny: bool, device: torch.device):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from s2v_toolkit.commands.models import randomize_
    from s2v_toolkit.models import (
        S2VTransformerConfig,
        UMT5Config,
        UMT5Encoder,
        Wav2Vec2AudioEncoder,
        WanVAEConfig,
        build_wan_vae,
        random_s2v_transformer,
    )

    cuda = device.type == "cuda"
    dit_dtype = torch.bfloat16 if cuda else torch.float32
    if tiny:
        dit_cfg = S2VTransformerConfig.tiny()
        t5_cfg = UMT5Config.tiny()
        vae_cfg = WanVAEConfig.tiny()
        w2v_cfg = Wav2Vec2Config(hidden_size=24, num_hidden_layers=4, num_attention_heads=2, intermediate_size=48,
                                 conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                                 do_stable_layer_norm=True, feat_extract_norm="layer", conv_bias=True)
    else:
        dit_cfg = S2VTransformerConfig()
        t5_cfg = UMT5Config.full()
        vae_cfg = WanVAEConfig.full()
        # the architecture of wav2vec2-large-xlsr-53
        w2v_cfg = Wav2Vec2Config(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                 intermediate_size=4096, do_stable_layer_norm=True, feat_extract_norm="layer",
                                 conv_bias=True)
    t0 = time.perf_counter()
    dit = random_s2v_transformer(dit_cfg, device=device, dtype=dit_dtype).requires_grad_(False)
    with torch.device("meta"):
        t5 = UMT5Encoder(t5_cfg).to(dit_dtype)
    t5 = randomize_(t5.to_empty(device=device), 1).eval().requires_grad_(False)
    vae = build_wan_vae(vae_cfg, device=device)
    with torch.device("meta"):
        w2v = Wav2Vec2Model(w2v_cfg)
    w2v = randomize_(w2v.to_empty(device=device), 2).eval().requires_grad_(False)
    audio = Wav2Vec2AudioEncoder(w2v, Wav2Vec2FeatureExtractor(), device=device)
    print(f"built components in {time.perf_counter() - t0:.1f} s", flush=True)
    return dit, RandomPromptEncoder(t5), vae, audio, dit_dtype


def run_phases(gen, size: tuple[int, int], frames: int, steps: int, record: list, label: str, save) -> None:
    """The phases of one clip through ``gen`` (an S2VGenerator); appends one dict per phase."""
    from s2v_toolkit.models import ExpertSchedule, make_scheduler, to_transformer_layout
    from s2v_toolkit.pipelines.sampling import denoise_clip

    device = gen.device
    cuda = device.type == "cuda"
    h, w = size
    motion_frames = gen.config.motion_frames
    lat_frames = frames // 4
    state = {}

    def phase(name, fn):
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        row = {"run": label, "phase": name, "seconds": round(time.perf_counter() - t0, 3)}
        if cuda:
            row.update(start_gb=round(base / 1e9, 2),
                       peak_gb=round(torch.cuda.max_memory_allocated(device) / 1e9, 2),
                       peak_reserved_gb=round(torch.cuda.max_memory_reserved(device) / 1e9, 2),
                       end_gb=round(torch.cuda.memory_allocated(device) / 1e9, 2))
        record.append(row)
        print(row, flush=True)
        save()

    schedule = ExpertSchedule.single(next(iter(gen.experts)), 4.5)
    gen.offloader = gen.expert_offloader(schedule)

    def text():
        if gen.max_vram_gb is not None:  # as _sample_plan: the DiT's resident part off the device first
            gen.offloader.offload_all()
        gen.text_cache._cache.clear()
        state["cond"], state["uncond"] = gen.encode_prompts("prompt", "negative prompt")

    def audio():
        g = torch.Generator().manual_seed(3)
        wave = (0.1 * torch.randn(int(16000 * frames / 16), generator=g)).numpy()
        state["feats"] = gen.frame_features(wave, Fraction(16), frames)

    def vae_encode():
        g = torch.Generator().manual_seed(4)
        ref = torch.rand(1, 3, 1, h, w, generator=g).mul_(2).sub_(1)
        motion = torch.rand(1, 3, motion_frames, h, w, generator=g).mul_(2).sub_(1).to(device)
        state["ref_latent"] = gen.encode_reference(ref)
        state["motion_latents"] = gen.encode_motion(motion)

    def denoise():
        scheduler = make_scheduler("unipc")
        g = torch.Generator().manual_seed(5)
        noise = torch.randn(1, 16, lat_frames, h // 8, w // 8, generator=g).to(device)
        audio_cond = to_transformer_layout(state["feats"])
        shared = {"ref_latents": state["ref_latent"], "motion_latents": state["motion_latents"],
                  "drop_motion_frames": False}
        state["latents"] = denoise_clip(
            gen.offloader, schedule, scheduler, noise, shared,
            cond={"text_embeddings": state["cond"], "audio_features": audio_cond},
            uncond={"text_embeddings": state["uncond"], "audio_features": torch.zeros_like(audio_cond)},
            steps=steps, shift=3.0, batched_cfg=False)

    def decode():
        latents = torch.cat([state["motion_latents"], state["latents"]], dim=2)
        if gen.max_vram_gb is not None:
            gen.offloader.offload_all()
            out = gen._decode_to_host(latents, frames)
        else:
            out = gen.vae.decode(latents, chunked=gen._vae_chunked)[:, :, -frames:].float()
        state["frames"] = out
        state["checksum"] = float(out.double().sum())

    for name, fn in (("text", text), ("audio", audio), ("vae_encode", vae_encode), ("denoise", denoise),
                     ("vae_decode", decode)):
        phase(name, fn)
    record.append({"run": label, "phase": "checksum", "latents_sum": float(state["latents"].double().sum()),
                   "frames_sum": state["checksum"]})
    save()
    return state


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--budget-gb", type=float, default=24.0)
    ap.add_argument("--size", default="704x1280")
    ap.add_argument("--frames", type=int, default=80)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--device", default=None)
    ap.add_argument("--tiny", action="store_true", help="tiny configs (check this script on a CPU)")
    ap.add_argument("--skip-resident", action="store_true")
    args = ap.parse_args()

    from s2v_toolkit.models import disable_block_offload, enable_block_offload
    from s2v_toolkit.pipelines.s2v_generator import S2VGenerator, _move_resident_part, apply_vram_budget

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    h, w = (int(v) for v in args.size.split("x"))
    record = {"command": " ".join(sys.argv), "size": args.size, "frames": args.frames, "steps": args.steps,
              "budget_gb": args.budget_gb, "device": torch.cuda.get_device_name(device) if device.type == "cuda"
              else "cpu", "torch": torch.__version__, "phases": [], "setup": {}, "errors": []}

    def save():
        (out / "bench_low_vram.json").write_text(json.dumps(record, indent=2) + "\n")

    dit, text_encoder, vae, audio, dit_dtype = build_components(args.tiny, device)
    cpu = torch.device("cpu")
    try:
        # -- capped: S2VGenerator.load's placement for max_vram_gb
        t0 = time.perf_counter()
        enable_block_offload(dit, device, prefetch=1)
        text_encoder.model.to(cpu)
        vae.to(cpu)
        audio.model.to(cpu)
        audio.device = cpu
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            record["setup"]["offload_s"] = round(time.perf_counter() - t0, 1)
            record["setup"]["allocated_after_setup_gb"] = round(torch.cuda.memory_allocated(device) / 1e9, 2)
            record["setup"]["fraction"] = apply_vram_budget(device, args.budget_gb)
            record["setup"]["total_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 1e9, 1)
        save()
        capped = S2VGenerator(None, {"expert1": dit}, vae, text_encoder, audio, device, dit_dtype,
                              max_vram_gb=args.budget_gb)
        a = run_phases(capped, (h, w), args.frames, args.steps, record["phases"], f"capped {args.budget_gb:g} GB",
                       save)
    except Exception:
        record["errors"].append(traceback.format_exc())
        print(record["errors"][-1], flush=True)
        save()
        a = None
    if args.skip_resident:
        return 0
    try:
        # -- resident: cap lifted, everything on the device
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
        disable_block_offload(dit)
        _move_resident_part(dit, device)
        text_encoder.model.to(device)
        vae.to(device)
        audio.model.to(device)
        audio.device = device
        resident = S2VGenerator(None, {"expert1": dit}, vae, text_encoder, audio, device, dit_dtype)
        b = run_phases(resident, (h, w), args.frames, args.steps, record["phases"], "resident", save)
        if a is not None:
            record["capped_equals_resident"] = {
                "latents": bool(torch.equal(a["latents"].cpu(), b["latents"].cpu())),
                "frames": bool(torch.equal(a["frames"].cpu(), b["frames"].cpu())),
                "frames_max_abs": float((a["frames"].cpu() - b["frames"].cpu()).abs().max())}
            # Each phase's output, capped against resident: the first phase that differs is where the
            # difference starts (later phases inherit it through their inputs).
            per_phase = {}
            for key in ("cond", "uncond", "feats", "ref_latent", "motion_latents", "latents", "frames"):
                xa, xb = a.get(key), b.get(key)
                if isinstance(xa, (list, tuple)):
                    xa, xb = torch.cat([t.flatten() for t in xa]), torch.cat([t.flatten() for t in xb])
                if not isinstance(xa, torch.Tensor):
                    continue
                xa, xb = xa.detach().float().cpu(), xb.detach().float().cpu()
                per_phase[key] = {"equal": bool(torch.equal(xa, xb)),
                                  "max_abs": float((xa - xb).abs().max()),
                                  "rel_l2": float((xa - xb).norm() / xb.norm().clamp(min=1e-30))}
            record["capped_vs_resident_per_output"] = per_phase
            print(per_phase, flush=True)
            print(record["capped_equals_resident"], flush=True)
    except Exception:
        record["errors"].append(traceback.format_exc())
        print(record["errors"][-1], flush=True)
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
