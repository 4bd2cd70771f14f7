"""Classifier-free guidance helper: formula, batched vs two forwards, the scale-1 shortcut."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from s2v_toolkit.pipelines.guidance import combine_guidance, guided_prediction


class TinyDenoiser(nn.Module):
    """A real (random-weight) module shaped like the DiT call: latent, timestep, text, audio."""

    def __init__(self, dim=8, text_dim=4, audio_dim=3):
        super().__init__()
        self.latent = nn.Linear(dim, dim)
        self.text = nn.Linear(text_dim, dim)
        self.audio = nn.Linear(audio_dim, dim)
        self.batch_sizes: list[int] = []
        self.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        self.batch_sizes.append(kwargs["x"].shape[0])

    def forward(self, x, t, context, audio):
        scale = t.to(x.dtype)[:, None] / 1000.0
        return self.latent(x) + self.text(context) + scale * torch.tanh(self.audio(audio))


def make_inputs(batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shared = {"x": torch.randn(batch, 8, generator=gen), "t": torch.full((batch,), 731)}
    cond = {"context": torch.randn(batch, 4, generator=gen), "audio": torch.randn(batch, 3, generator=gen)}
    uncond = {"context": torch.randn(batch, 4, generator=gen), "audio": torch.zeros(batch, 3)}
    return shared, cond, uncond


def test_combine_guidance_formula():
    cond, uncond = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0])
    assert torch.equal(combine_guidance(cond, uncond, 4.5), torch.tensor([5.5, -8.0]))
    assert torch.equal(combine_guidance(cond, uncond, 1.0), cond)
    assert torch.equal(combine_guidance(cond, uncond, 0.0), uncond)


@pytest.mark.parametrize("batched", [True, False])
def test_guided_prediction_matches_separate_branch_forwards(batched):
    torch.manual_seed(0)
    model = TinyDenoiser()
    shared, cond, uncond = make_inputs()
    with torch.no_grad():
        expected = combine_guidance(model(**shared, **cond), model(**shared, **uncond), 4.5)
        model.batch_sizes.clear()
        got = guided_prediction(model, shared, cond, uncond, scale=4.5, batched=batched)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    # batched: one forward of 2B (cond first); unbatched: two forwards of B
    assert model.batch_sizes == ([6] if batched else [3, 3])


def test_scale_one_runs_only_the_conditional_branch():
    model = TinyDenoiser()
    shared, cond, uncond = make_inputs()
    with torch.no_grad():
        got = guided_prediction(model, shared, cond, uncond, scale=1.0, batched=True)
        assert model.batch_sizes == [3]
        assert torch.equal(got, model(**shared, **cond))


def test_branches_are_really_different_and_order_is_cond_first():
    """A swapped cond/uncond order in the batched path would change the result."""
    model = TinyDenoiser()
    shared, cond, uncond = make_inputs(seed=2)
    with torch.no_grad():
        right = guided_prediction(model, shared, cond, uncond, scale=3.0)
        swapped = guided_prediction(model, shared, uncond, cond, scale=3.0)
        c, u = model(**shared, **cond), model(**shared, **uncond)
    assert not torch.allclose(c, u)
    torch.testing.assert_close(right, u + 3.0 * (c - u), rtol=1e-6, atol=1e-6)
    assert not torch.allclose(right, swapped)


def test_list_inputs_and_outputs_wan_style():
    lin = nn.Linear(4, 4)

    def model(x, context):
        # per-sample lists, as the official Wan modules take and return them
        return [lin(xi) + ci.sum() for xi, ci in zip(x, context)]

    gen = torch.Generator().manual_seed(1)
    x = [torch.randn(4, generator=gen)]
    cond, uncond = [torch.randn(5, 4, generator=gen)], [torch.zeros(5, 4)]
    with torch.no_grad():
        out = guided_prediction(model, {"x": x}, {"context": cond}, {"context": uncond}, scale=2.0)
        want = combine_guidance(model(x, cond)[0], model(x, uncond)[0], 2.0)
    assert isinstance(out, list) and len(out) == 1
    torch.testing.assert_close(out[0], want)


def test_static_inputs_and_scalar_tensors_are_not_batched():
    seen = []

    def model(x, context, lengths, t):
        seen.append((x.shape[0], lengths, t.shape))
        return x * context

    x, t = torch.ones(2, 3), torch.tensor(500)
    out = guided_prediction(model, {"x": x, "t": t}, {"context": torch.full((2, 3), 2.0)},
                            {"context": torch.zeros(2, 3)}, scale=1.5, static={"lengths": [7, 9]})
    assert seen == [(4, [7, 9], torch.Size([]))]
    assert torch.equal(out, torch.full((2, 3), 3.0))


def test_mismatched_branches_are_rejected():
    model = TinyDenoiser()
    shared, cond, uncond = make_inputs()
    with pytest.raises(ValueError, match="same keys"):
        guided_prediction(model, shared, cond, {"context": uncond["context"]}, scale=2.0)
    with pytest.raises(ValueError, match="shape"):
        guided_prediction(model, shared, cond, {**uncond, "context": torch.zeros(3, 5)}, scale=2.0)
    with pytest.raises(ValueError, match="more than one group"):
        guided_prediction(model, shared, cond, uncond, scale=2.0, static={"x": shared["x"]})
