"""The few-step schedule (LightX2V's step-distill scheduler): sigmas, float timesteps, the Euler update."""

from __future__ import annotations

import pytest
import torch

from s2v_toolkit.models import make_scheduler, step_distill_schedule


def test_schedule_of_1000_750_500_250_at_shift_5():
    t = step_distill_schedule([1000, 750, 500, 250], 5.0)
    # shifted grid value at index 1000 - t: sigma = 1 - idx/1000, then 5 s / (1 + 4 s)
    want = [5 * s / (1 + 4 * s) for s in (1.0, 0.75, 0.5, 0.25)] + [0.0]
    assert t.sigmas.tolist() == pytest.approx(want, abs=1e-6)
    assert t.timesteps.tolist() == pytest.approx([1000.0, 937.5, 833.3333, 625.0], abs=1e-3)  # unrounded


def test_euler_update_is_x0_plus_next_sigma_times_v():
    sched = make_scheduler("euler")
    sched.set_denoising_steps([1000, 750, 500, 250], shift=5.0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 2, 3, 3, generator=g)
    sig = sched.sigma_values
    for i in range(4):
        v = torch.randn(x.shape, generator=g)
        want = (x - sig[i] * v) + sig[i + 1] * v  # LightX2V step_post: x0 = x - s v; next = x0 + s' v
        x = sched.step(v, i, x)
        torch.testing.assert_close(x, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError):
        step_distill_schedule([1000, 0], 5.0)
