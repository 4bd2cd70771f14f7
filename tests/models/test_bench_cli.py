"""``s2vt bench`` plumbing on the CPU (--device cpu --tiny). Not a benchmark: no timing is asserted."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from s2v_toolkit.commands import models as bench_cmd


def _run(argv):
    parser = argparse.ArgumentParser(prog="s2vt")
    sub = parser.add_subparsers()
    bench_cmd.register(sub)
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


def test_tiny_cpu_bench_times_every_part_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = _run(["--device", "cpu", "--tiny", "--dtype", "fp32", "--size", "64x64", "--frames", "8",
               "--what", "forward,step", "--repeat", "2", "--warmup", "0", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    rows = {(r["what"], r["size"]): r for r in doc["results"]}
    assert set(rows) == {("forward", "64x64"), ("step", "64x64")}
    fwd = rows[("forward", "64x64")]
    assert len(fwd["runs"]) == 2 and fwd["seconds"] > 0
    assert fwd["seconds"] == pytest.approx(sum(fwd["runs"]) / 2)  # the median of two runs
    # FLOPs come from the cost model; the CFG step counts two forwards.
    from s2v_toolkit.models import S2VTransformerConfig, forward_flops

    expected = forward_flops(S2VTransformerConfig.tiny(), 64, 64, frames=8).total
    assert fwd["flops"] == pytest.approx(expected)
    assert rows[("step", "64x64")]["flops"] == pytest.approx(2 * expected)
    assert fwd["tflops"] == pytest.approx(expected / fwd["seconds"] / 1e12)
    assert doc["options"]["sizes"] == ["64x64"] and doc["environment"]["device"] == "cpu"
    assert "forward" in capsys.readouterr().out


def test_tiny_cpu_bench_of_vae_and_encoders(tmp_path):
    out = tmp_path / "parts.json"
    assert _run(["--device", "cpu", "--tiny", "--dtype", "fp32", "--size", "16x32", "--frames", "4",
                 "--what", "vae,text,audio", "--repeat", "1", "--warmup", "0", "--json", str(out)]) == 0
    rows = {r["what"]: r for r in json.loads(out.read_text())["results"]}
    assert set(rows) == {"vae_encode", "vae_decode", "text", "audio"}
    assert rows["vae_encode"]["size"] == "16x32" and rows["vae_encode"]["extra"]["frames"] == 5
    assert all(r["seconds"] > 0 and r["flops"] is None for r in rows.values())


def test_baseline_mode_uses_plain_blocks_and_sdpa():
    from s2v_toolkit.models.attention import get_attention_backend, set_attention_backend
    from s2v_toolkit.models.fused import fused_blocks_enabled

    parser = argparse.ArgumentParser()
    bench_cmd.register(parser.add_subparsers())
    try:
        for mode, backend, fused in (("baseline", "sdpa", False), ("optimized", "auto", True)):
            args = parser.parse_args(["bench", "--device", "cpu", "--tiny", "--mode", mode])
            opts = bench_cmd.BenchOptions.from_args(args)
            model = bench_cmd.build_transformer(opts)
            bench_cmd.configure_transformer(model, opts)
            assert get_attention_backend() == backend
            assert fused_blocks_enabled(model) is fused
    finally:
        set_attention_backend("auto")


@pytest.mark.parametrize("argv, message", [
    ([], "needs a CUDA GPU"),
    (["--device", "cpu"], "add --tiny"),
    (["--device", "cpu", "--tiny", "--size", "100x64"], "multiples of 16"),
    (["--device", "cpu", "--tiny", "--size", "big"], "HEIGHTxWIDTH"),
    (["--device", "cpu", "--tiny", "--what", "forward,nap"], "choose from"),
    (["--device", "cpu", "--tiny", "--frames", "10"], "multiple of 4"),
])
def test_unusable_requests_are_one_line_errors(argv, message):
    if not argv and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(bench_cmd.BenchError, match=message) as info:
        _run(argv)
    assert "\n" not in str(info.value)


def test_s2vt_bench_through_the_cli_exits_2_with_one_line(capsys):
    from s2v_toolkit import cli

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli.main(["bench", "--size", "448x832"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("s2vt: error:") and "CUDA" in err and "\n" not in err


def test_unavailable_attention_backend_is_a_bench_error():
    from s2v_toolkit.models.attention import set_attention_backend

    parser = argparse.ArgumentParser()
    bench_cmd.register(parser.add_subparsers())
    opts = bench_cmd.BenchOptions.from_args(
        parser.parse_args(["bench", "--device", "cpu", "--tiny", "--attention", "flash"]))
    model = bench_cmd.build_transformer(opts)
    try:
        import flash_attn  # noqa: F401
        pytest.skip("flash_attn is installed here")
    except ImportError:
        pass
    try:
        with pytest.raises(bench_cmd.BenchError, match="--attention flash"):
            bench_cmd.configure_transformer(model, opts)
    finally:
        set_attention_backend("auto")
