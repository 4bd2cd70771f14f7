"""Flow-matching schedulers: the spec's worked example (shared/spec/flow_unipc.md) and convergence
on analytic distributions with exact oracle denoisers."""

from __future__ import annotations

import math

import pytest
import torch

from s2v_toolkit.models.schedulers import (
    SCHEDULER_NAMES,
    DPMSolverPlusPlusScheduler,
    EulerFlowScheduler,
    UniPCMultistepScheduler,
    make_scheduler,
    unipc_bh2_corrector_coefficients,
)

# flow_unipc.md, "UniPC sigma schedule" item 3 (N=40, shift 3)
SPEC_UNIPC_T_40_SHIFT3 = [
    999, 991, 982, 973, 963, 954, 944, 933, 922, 911, 899, 887, 874, 861, 847, 832, 817, 801, 785,
    767, 749, 730, 710, 688, 666, 642, 617, 590, 562, 531, 499, 465, 428, 388, 345, 299, 249, 195, 136, 71,
]


# ---------------------------------------------------------------------------------------------
# schedule numbers
# ---------------------------------------------------------------------------------------------
def test_unipc_timesteps_and_sigmas_match_spec():
    sched = UniPCMultistepScheduler()
    timesteps = sched.set_timesteps(40, shift=3.0)
    assert timesteps.dtype == torch.int64
    assert timesteps.tolist() == SPEC_UNIPC_T_40_SHIFT3
    assert len(set(timesteps.tolist())) == 40
    assert sched.sigmas.dtype == torch.float32 and sched.sigmas.device.type == "cpu"
    assert sched.sigmas.shape == (41,)
    sig = sched.sigma_values
    for got, want in zip(sig[:4], [0.9996665, 0.9911891, 0.9824195, 0.9733424]):
        assert got == pytest.approx(want, abs=6e-8)
    assert sig[39] == pytest.approx(0.071361, abs=6e-7)
    assert sig[40] == 0.0
    lambdas = [math.log((1 - s) / s) for s in sig[:4]]
    # the spec prints lambda_1 as -4.72291 (float64 and float32 both give -4.722918): 1e-5 tolerance
    for got, want in zip(lambdas, [-8.00539, -4.72291, -4.02323, -3.59766]):
        assert got == pytest.approx(want, abs=1e-5)


def test_dpm_grid_starts_at_one_and_differs_from_unipc_by_one_where_spec_says():
    sched = DPMSolverPlusPlusScheduler()
    t = sched.set_timesteps(40, shift=3.0).tolist()
    assert t[:5] == [1000, 991, 982, 973, 964]
    assert t[-3:] == [195, 136, 71]
    assert sched.sigma_values[0] == 1.0 and sched.sigma_values[-1] == 0.0
    # "later t can differ by 1, e.g. 963 vs 964"
    assert SPEC_UNIPC_T_40_SHIFT3[4] == 963


def test_shift_one_is_linear_and_shift_bends_towards_high_noise():
    plain = EulerFlowScheduler(sigma_grid="unit")
    plain.set_timesteps(4, shift=1.0)
    assert plain.sigma_values == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    shifted = EulerFlowScheduler(sigma_grid="unit")
    shifted.set_timesteps(4, shift=3.0)
    # s*x / (1 + (s-1)*x) at x = 0.5 -> 0.75
    assert shifted.sigma_values[2] == pytest.approx(0.75)
    assert all(a > b for a, b in zip(shifted.sigma_values[1:4], plain.sigma_values[1:4]))


def test_timesteps_go_to_requested_device_sigmas_stay_on_cpu():
    sched = make_scheduler("unipc")
    sched.set_timesteps(10, shift=5.0, device="cpu")
    assert sched.timesteps.device.type == "cpu"
    assert sched.num_steps == 10
    with pytest.raises(ValueError):
        make_scheduler("ddim")
    with pytest.raises(ValueError):
        sched.set_timesteps(0, shift=3.0)


# ---------------------------------------------------------------------------------------------
# worked example: the first three UniPC steps
# ---------------------------------------------------------------------------------------------
def test_unipc_corrector_coefficients_match_spec():
    b1, b2, rho0, rho1 = unipc_bh2_corrector_coefficients(0.699691, -4.691320)
    assert (b1, b2) == pytest.approx((0.557837, 0.392515), abs=2e-6)
    assert (rho0, rho1) == pytest.approx((0.029048, 0.528789), abs=2e-6)
    assert rho0 / -4.691320 == pytest.approx(-0.0061919, abs=2e-7)


def test_unipc_first_three_steps_match_spec_worked_example():
    gen = torch.Generator().manual_seed(3)
    shape = (2, 3, 5)
    x0 = torch.randn(shape, generator=gen, dtype=torch.float64)
    v = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3)]
    sched = UniPCMultistepScheduler()
    sched.set_timesteps(40, shift=3.0)

    x1 = sched.step(v[0], 0, x0)
    x2 = sched.step(v[1], 1, x1)
    x3 = sched.step(v[2], 2, x2)

    # the spec's numbers, written out independently of the implementation
    m0 = x0 - 0.9996665 * v[0]
    e1 = 0.9915198 * x0 + 0.0084802 * m0
    e1_euler = x0 - 0.0084774 * v[0]
    m1 = e1 - 0.9911891 * v[1]
    x1c = 0.9915198 * x0 + 0.0084802 * 0.5 * (m0 + m1)
    e2 = 0.9911525 * x1c + 0.0088475 * (m1 - 0.106580 * (m0 - m1))
    m2 = e2 - 0.9824195 * v[2]
    x2c = 0.9911525 * x1c + 0.0088475 * (m1 - 0.0061919 * (m0 - m1) + 0.528789 * (m2 - m1))
    e3 = 0.9907604 * x2c + 0.0092396 * (m2 - 0.304111 * (m1 - m2))

    tol = dict(rtol=0, atol=3e-6)
    torch.testing.assert_close(x1, e1, **tol)
    torch.testing.assert_close(x1, e1_euler, **tol)
    torch.testing.assert_close(x2, e2, **tol)
    torch.testing.assert_close(x3, e3, **tol)
    assert x3.dtype == torch.float64


def test_unipc_keeps_sample_dtype_and_dpm_returns_model_dtype():
    x = torch.randn(4, 4).to(torch.bfloat16)
    for name, want in [("unipc", torch.bfloat16), ("euler", torch.bfloat16), ("dpm++", torch.float32)]:
        sched = make_scheduler(name)
        sched.set_timesteps(5, shift=3.0)
        y = x
        for i in range(5):
            y = sched.step(torch.randn(4, 4), i, y)
        assert y.dtype == want, name


# ---------------------------------------------------------------------------------------------
# exact oracles
# ---------------------------------------------------------------------------------------------
def point_mass_velocity(x, sigma, x0):
    """Exact velocity when the data is the single point x0: x = (1-s) x0 + s e -> v = (x - x0)/s."""
    return (x - x0) / sigma


class GaussianOracle:
    """Data x0 ~ N(mu, s^2) per element. Exact v(x, sigma) = (x - E[x0|x]) / sigma, with
    E[x0|x] = mu + (1-sigma) s^2 / V (x - (1-sigma) mu), V = (1-sigma)^2 s^2 + sigma^2.
    The probability-flow ODE keeps z = (x - (1-sigma) mu) / sqrt(V) fixed, so the exact endpoint
    of a run started at (sigma_0, z) is mu + s z."""

    def __init__(self, n=2048, seed=0):
        gen = torch.Generator().manual_seed(seed)
        self.mu = torch.randn(n, generator=gen, dtype=torch.float64) * 2
        self.s = torch.rand(n, generator=gen, dtype=torch.float64) * 1.5 + 0.5
        self.z = torch.randn(n, generator=gen, dtype=torch.float64)

    def _var(self, sigma):
        return (1 - sigma) ** 2 * self.s**2 + sigma**2

    def velocity(self, x, sigma):
        posterior_mean = self.mu + (1 - sigma) * self.s**2 / self._var(sigma) * (x - (1 - sigma) * self.mu)
        return (x - posterior_mean) / sigma

    def start(self, sigma):
        return (1 - sigma) * self.mu + self._var(sigma).sqrt() * self.z

    def endpoint(self):
        return self.mu + self.s * self.z


def run_gaussian(sched, oracle, num_steps, shift=3.0):
    sched.set_timesteps(num_steps, shift=shift)
    x = oracle.start(sched.sigma(0))
    for i in range(num_steps):
        x = sched.step(oracle.velocity(x, sched.sigma(i)), i, x)
    return (x - oracle.endpoint()).pow(2).mean().sqrt().item()


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_point_mass_every_scheduler_lands_exactly_on_x0(name):
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    sched = make_scheduler(name)
    sched.set_timesteps(40, shift=3.0)
    x = sched.add_noise(x0, torch.randn(3, 8, generator=gen, dtype=torch.float64), 0)
    for i in range(40):
        x = sched.step(point_mass_velocity(x, sched.sigma(i), x0), i, x)
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name,tol", [("unipc", 6e-3), ("dpm++", 1.2e-2), ("euler", 7e-2)])
def test_forty_steps_reach_gaussian_endpoint(name, tol):
    """40 steps, shift 3 (the S2V defaults). Measured RMS errors: UniPC 3.4e-3, DPM++ 7.0e-3,
    Euler 5.0e-2 (first order)."""
    err = run_gaussian(make_scheduler(name), GaussianOracle(), 40)
    assert err < tol


def test_unipc_beats_euler_and_is_higher_order():
    oracle = GaussianOracle()
    euler = {n: run_gaussian(EulerFlowScheduler(), oracle, n) for n in (20, 40)}
    unipc = {n: run_gaussian(UniPCMultistepScheduler(), oracle, n) for n in (20, 40)}
    # measured: Euler/UniPC = 10.0 at 20 steps, 14.4 at 40 steps
    assert euler[20] / unipc[20] > 6
    assert euler[40] / unipc[40] > 9
    # Euler halves its error when the steps double (first order); UniPC does clearly better
    # (measured 1.96 vs 2.83 at shift 3; the final step is first order by design)
    assert 1.8 < euler[20] / euler[40] < 2.2
    assert unipc[20] / unipc[40] > 2.5


def test_unipc_corrector_improves_on_the_bare_predictor():
    oracle = GaussianOracle()
    with_c = run_gaussian(UniPCMultistepScheduler(), oracle, 20, shift=1.0)
    without = run_gaussian(UniPCMultistepScheduler(use_corrector=False), oracle, 20, shift=1.0)
    assert with_c < 0.6 * without


def test_unipc_predictor_alone_equals_dpm_plus_plus_on_the_same_grid():
    """The spec: the DPM++ 2M update is algebraically the UniPC order-2 predictor (incl. the D1 = 0
    second step caused by lambda_0 = -inf)."""
    oracle = GaussianOracle(n=256, seed=5)
    results = []
    for sched in (UniPCMultistepScheduler(sigma_grid="unit", use_corrector=False), DPMSolverPlusPlusScheduler()):
        sched.set_timesteps(12, shift=3.0)
        x = oracle.start(sched.sigma(0))
        trajectory = []
        for i in range(12):
            x = sched.step(oracle.velocity(x, sched.sigma(i)), i, x)
            trajectory.append(x)
        results.append(torch.stack(trajectory))
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_same_inputs_give_bit_identical_outputs():
    oracle = GaussianOracle(n=64, seed=2)
    outs = []
    for _ in range(2):
        sched = UniPCMultistepScheduler()
        sched.set_timesteps(8, shift=3.0)
        x = oracle.start(sched.sigma(0)).float()
        for i in range(8):
            x = sched.step(oracle.velocity(x.double(), sched.sigma(i)).float(), i, x)
        outs.append(x)
    assert torch.equal(outs[0], outs[1])


# ---------------------------------------------------------------------------------------------
# re-noising and partial runs (masked re-dub)
# ---------------------------------------------------------------------------------------------
def test_add_noise_is_the_flow_matching_interpolation():
    sched = UniPCMultistepScheduler()
    sched.set_timesteps(40, shift=3.0)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 16, 4, 6, generator=gen)
    noise = torch.randn(2, 16, 4, 6, generator=gen)
    for i in (0, 1, 17, 39):
        sigma = float(sched.sigmas[i])
        torch.testing.assert_close(sched.add_noise(x0, noise, i), (1 - sigma) * x0 + sigma * noise)
    assert torch.equal(sched.add_noise(x0, noise, 40), x0)  # terminal sigma 0
    assert sched.add_noise(x0.to(torch.bfloat16), noise, 5).dtype == torch.bfloat16
    unit = DPMSolverPlusPlusScheduler()
    unit.set_timesteps(10, shift=3.0)
    assert torch.equal(unit.add_noise(x0, noise, 0), noise)  # sigma_0 = 1: pure noise
    with pytest.raises(IndexError):
        sched.add_noise(x0, noise, 41)


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_run_started_mid_schedule_from_renoised_latent(name):
    """Re-dub path: noise a clean latent to step k, run steps k..N-1 with an exact point-mass oracle."""
    gen = torch.Generator().manual_seed(4)
    x0 = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    sched = make_scheduler(name)
    sched.set_timesteps(30, shift=3.0)
    k = 18
    x = sched.add_noise(x0, torch.randn(5, 5, generator=gen, dtype=torch.float64), k)
    for i in range(k, 30):
        x = sched.step(point_mass_velocity(x, sched.sigma(i), x0), i, x)
    torch.testing.assert_close(x, x0, rtol=0, atol=1e-10)


def test_steps_must_be_consecutive_until_reset():
    sched = UniPCMultistepScheduler()
    with pytest.raises(RuntimeError):
        sched.step(torch.zeros(2), 0, torch.zeros(2))  # no schedule yet
    sched.set_timesteps(10, shift=3.0)
    x = sched.step(torch.zeros(2), 0, torch.ones(2))
    with pytest.raises(RuntimeError):
        sched.step(torch.zeros(2), 2, x)
    with pytest.raises(IndexError):
        sched.step(torch.zeros(2), 10, x)
    sched.reset()
    sched.step(torch.zeros(2), 4, x)  # a fresh run may start anywhere


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_step_does_not_synchronise_with_host_on_cuda(name):
    sched = make_scheduler(name)
    sched.set_timesteps(10, shift=3.0, device="cuda")
    x = torch.randn(1, 16, 5, 8, 8, device="cuda", dtype=torch.bfloat16)
    v = torch.randn(1, 16, 5, 8, 8, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(10):
            x = sched.step(v, i, x)
            _ = sched.add_noise(x, v, i + 1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert x.device.type == "cuda"
