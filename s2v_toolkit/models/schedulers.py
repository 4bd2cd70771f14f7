"""Flow-matching samplers for Wan S2V: UniPC (order 2, bh2), DPM++ (2M) and Euler.

Facts and equations: ``shared/spec/flow_unipc.md``. Conventions used throughout:

* flow matching: ``x_sigma = (1 - sigma) * x0 + sigma * noise``; the DiT predicts the velocity
  ``v ~ noise - x0`` (= dx/dsigma);
* ``alpha = 1 - sigma``, ``lambda = ln(alpha / sigma)`` (-inf at sigma = 1, +inf at sigma = 0);
* the multistep solvers work on the x0 prediction ``m = x - sigma * v``, and every update has the form
  ``(sigma_t / sigma_s) * x + (1 - sigma_t / sigma_s) * (x0 estimate)``.

All schedulers share one small interface::

    sched.set_timesteps(num_steps, shift, device)
    sched.timesteps            # int64 [N] on `device`: what the DiT receives
    sched.sigmas               # float32 [N + 1] on the CPU, last entry 0
    x = sched.step(v, i, x)    # i = 0..N-1, called in order; returns the sample at step i + 1
    sched.add_noise(x0, noise, i)   # re-noise a clean latent to step i's noise level (i = 0..N)

Solver coefficients are precomputed as Python floats from the CPU sigma table, so ``step`` does only
tensor arithmetic on the sample's device: no host synchronisation, no data-dependent branches, and
the same inputs always give bit-identical outputs.
"""

from __future__ import annotations

import math
import numpy as np
import torch

__all__ = [
    "SCHEDULER_NAMES",
    "DPMSolverPlusPlusScheduler",
    "EulerFlowScheduler",
    "FlowMatchScheduler",
    "SigmaSchedule",
    "UniPCMultistepScheduler",
    "flow_lambda",
    "make_scheduler",
    "shift_sigmas",
    "sigma_schedule",
    "step_distill_schedule",
    "unipc_bh2_corrector_coefficients",
]

#: names accepted by :func:`make_scheduler` (the official ``--sample_solver`` values plus ``euler``).
SCHEDULER_NAMES = ("unipc", "dpm++", "euler")

#: sigma grids. "train": the UniPC grid, linspace from the training grid's largest sigma (0.999 for
#: 1000 training steps) to 0. "unit": the DPM++ grid (``get_sampling_sigmas``), linspace from exactly 1.
SIGMA_GRIDS = ("train", "unit")


def shift_sigmas(sigmas: np.ndarray, shift: float) -> np.ndarray:
    """Timestep shift ``s * sigma / (1 + (s - 1) * sigma)`` (identity for ``s == 1``), in float64."""
    sigmas = np.asarray(sigmas, dtype=np.float64)
    return shift * sigmas / (1.0 + (shift - 1.0) * sigmas)


def flow_lambda(sigma: float) -> float:
    """Half log-SNR ``ln((1 - sigma) / sigma)`` with the limits -inf at sigma = 1 and +inf at sigma = 0."""
    alpha = 1.0 - sigma
    if sigma <= 0.0:
        return math.inf
    if alpha <= 0.0:
        return -math.inf
    return math.log(alpha) - math.log(sigma)


class SigmaSchedule:
    """The shifted sigma / timestep table for one sampling run.

    ``sigmas`` holds N + 1 float32 values (the N step sigmas and a terminal 0), ``timesteps`` the N
    int64 model timesteps ``trunc(1000 * sigma)`` computed in float64 before the float32 cast, as the
    official schedulers do.
    """

    def __init__(self, sigmas: torch.Tensor, timesteps: torch.Tensor):
        self.sigmas = sigmas
        self.timesteps = timesteps

    @property
    def num_steps(self) -> int:
        return int(self.timesteps.numel())


def sigma_schedule(num_steps: int, shift: float, grid: str = "train",
                   num_train_timesteps: int = 1000) -> SigmaSchedule:
    """Build the shifted schedule of ``flow_unipc.md`` for ``num_steps`` steps.

    ``grid="train"`` is FlowUniPCMultistepScheduler.set_timesteps (sigma_max = the float32 value of
    1 - 1/num_train_timesteps, i.e. 0.999 for 1000), ``grid="unit"`` is get_sampling_sigmas (the DPM++
    path, starting at exactly sigma = 1 -> t_0 = 1000).
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if not shift > 0:
        raise ValueError(f"shift must be > 0, got {shift}")
    if grid == "train":
        # Training grid: 1 - reverse(linspace(1, 1/T, T)), stored as float32; its first entry is
        # sigma_max and its last is exactly 0.
        train = 1.0 - np.linspace(1.0, 1.0 / num_train_timesteps, num_train_timesteps)[::-1]
        train32 = train.astype(np.float32)
        sigma_max, sigma_min = float(train32[0]), float(train32[-1])
    elif grid == "unit":
        sigma_max, sigma_min = 1.0, 0.0
    else:
        raise ValueError(f"unknown sigma grid {grid!r}; expected one of {SIGMA_GRIDS}")
    base = np.linspace(sigma_max, sigma_min, num_steps + 1)[:-1]
    shifted = shift_sigmas(base, shift)
    timesteps = torch.from_numpy((shifted * num_train_timesteps).astype(np.int64))
    sigmas = torch.from_numpy(np.concatenate([shifted, [0.0]]).astype(np.float32))
    return SigmaSchedule(sigmas, timesteps)


def step_distill_schedule(denoising_steps: list[int] | tuple[int, ...], shift: float,
                          num_train_timesteps: int = 1000) -> SigmaSchedule:
    """The schedule of step-distilled Wan models (LightX2V ``WanStepDistillScheduler``): the
    training grid ``linspace(1, 0, T + 1)[:-1]`` (float32), shifted, then the entries at indices
    ``T - t`` for each listed ``t``. The model receives ``1000 * sigma`` *unrounded* (a float
    timestep: [1000, 750, 500, 250] at shift 5 -> 1000, 937.5, 833.33, 625). Terminal sigma 0.
    """
    steps = [int(t) for t in denoising_steps]
    if not steps or any(not 0 < t <= num_train_timesteps for t in steps):
        raise ValueError(f"denoising steps {steps} must lie in 1..{num_train_timesteps}")
    grid = torch.linspace(1.0, 0.0, num_train_timesteps + 1)[:-1]
    grid = shift * grid / (1 + (shift - 1) * grid)
    index = [num_train_timesteps - t for t in steps]
    sigmas = grid[index]
    timesteps = sigmas * num_train_timesteps
    return SigmaSchedule(torch.cat([sigmas, sigmas.new_zeros(1)]), timesteps)


def unipc_bh2_corrector_coefficients(h: float, r: float) -> tuple[float, float, float, float]:
    """The UniC order-2 (bh2, x0-prediction) coefficients: returns (b1, b2, rho0, rho1).

    ``k = -h``, ``phi = e^k - 1 = B(h)``, ``g1 = phi/k - 1``, ``b1 = g1/B``, ``g2 = g1/k - 1/2``,
    ``b2 = 2 g2 / B``, and (rho0, rho1) solves [[1, 1], [r, 1]] rho = (b1, b2). For r = -inf (the
    previous-previous sigma was 1) the limit is rho0 = 0, rho1 = b1.
    """
    k = -h
    phi = math.expm1(k)
    g1 = phi / k - 1.0
    b1 = g1 / phi
    g2 = g1 / k - 0.5
    b2 = 2.0 * g2 / phi
    rho0 = (b1 - b2) / (1.0 - r)
    rho1 = b1 - rho0
    return b1, b2, rho0, rho1


class FlowMatchScheduler:
    """Common state and helpers of the flow-matching schedulers (see the module docstring)."""

    #: default sigma grid of the scheduler class
    default_grid = "train"

    def __init__(self, num_train_timesteps: int = 1000, sigma_grid: str | None = None):
        self.num_train_timesteps = int(num_train_timesteps)
        self.sigma_grid = sigma_grid or self.default_grid
        if self.sigma_grid not in SIGMA_GRIDS:
            raise ValueError(f"unknown sigma grid {self.sigma_grid!r}; expected one of {SIGMA_GRIDS}")
        self.sigmas: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None
        self.shift: float | None = None
        self._sigma_values: list[float] = []
        self._timestep_values: list[int] = []
        self._lambdas: list[float] = []
        self._next_index: int | None = None

    # -- schedule ---------------------------------------------------------------------------------
    def set_timesteps(self, num_steps: int, shift: float = 3.0,
                      device: torch.device | str | None = None) -> torch.Tensor:
        """Prepare an ``num_steps`` run with timestep shift ``shift``; returns ``self.timesteps``.

        Also clears any multistep history, so one scheduler object can be reused per clip.
        """
        table = sigma_schedule(num_steps, shift, self.sigma_grid, self.num_train_timesteps)
        return self.set_schedule(table, shift, device)

    def set_denoising_steps(self, denoising_steps: list[int] | tuple[int, ...], shift: float,
                            device: torch.device | str | None = None) -> torch.Tensor:
        """Prepare a run on an explicit timestep list (:func:`step_distill_schedule`, few-step models)."""
        return self.set_schedule(step_distill_schedule(denoising_steps, shift, self.num_train_timesteps),
                                 shift, device)

    def set_schedule(self, table: SigmaSchedule, shift: float,
                     device: torch.device | str | None = None) -> torch.Tensor:
        """Prepare a run on a given sigma / timestep table (see :meth:`set_timesteps`)."""
        self.shift = float(shift)
        self.sigmas = table.sigmas  # float32, CPU, like the official code
        self.timesteps = table.timesteps.to(device) if device is not None else table.timesteps
        # Host copies: coefficients come from these, never from device tensors.
        self._sigma_values = [float(s) for s in table.sigmas.tolist()]
        # int64 tables give ints; a step-distill table keeps its float timesteps
        self._timestep_values = [t for t in table.timesteps.tolist()]
        self._lambdas = [flow_lambda(s) for s in self._sigma_values]
        self.reset()
        return self.timesteps

    @property
    def num_steps(self) -> int:
        return len(self._timestep_values)

    @property
    def timestep_values(self) -> list[int]:
        """The timesteps as Python ints (a host copy; reading it never touches the device)."""
        return list(self._timestep_values)

    @property
    def sigma_values(self) -> list[float]:
        """The N + 1 sigmas (float32 values) as Python floats."""
        return list(self._sigma_values)

    def sigma(self, index: int) -> float:
        """Sigma of step ``index`` (0..N; index N is the terminal sigma 0)."""
        self._require_schedule()
        if not 0 <= index <= self.num_steps:
            raise IndexError(f"step index {index} outside 0..{self.num_steps}")
        return self._sigma_values[index]

    def reset(self) -> None:
        """Forget the multistep history; the next ``step`` may start at any index."""
        self._next_index = None

    # -- noise ------------------------------------------------------------------------------------
    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timestep_index: int) -> torch.Tensor:
        """Re-noise a clean latent to the noise level of step ``timestep_index`` (0..N).

        ``x = (1 - sigma_i) * x0 + sigma_i * noise``; index N (sigma 0) returns ``original`` unchanged
        in value. The result has the dtype of ``original``.
        """
        sigma = self.sigma(timestep_index)
        dtype = torch.promote_types(original.dtype, noise.dtype)
        out = (1.0 - sigma) * original.to(dtype) + sigma * noise.to(dtype)
        return out.to(original.dtype)

    #: diffusers-style name for the same operation
    scale_noise = add_noise

    def predict_x0(self, model_output: torch.Tensor, timestep_index: int,
                   sample: torch.Tensor) -> torch.Tensor:
        """x0 estimate ``m = x - sigma * v`` (float32 or wider)."""
        sigma = self.sigma(timestep_index)
        dtype = _compute_dtype(sample, model_output)
        return sample.to(dtype) - sigma * model_output.to(dtype)

    # -- stepping ---------------------------------------------------------------------------------
    def step(self, model_output: torch.Tensor, timestep_index: int, sample: torch.Tensor) -> torch.Tensor:
        """One solver step from step ``timestep_index`` to ``timestep_index + 1``."""
        raise NotImplementedError

    def _require_schedule(self) -> None:
        if self.sigmas is None:
            raise RuntimeError(f"{type(self).__name__}: call set_timesteps() before stepping")

    def _begin_step(self, timestep_index: int) -> int:
        """Check that steps are taken in order (multistep history depends on it)."""
        self._require_schedule()
        i = int(timestep_index)
        if not 0 <= i < self.num_steps:
            raise IndexError(f"step index {i} outside 0..{self.num_steps - 1}")
        if self._next_index is not None and i != self._next_index:
            raise RuntimeError(
                f"{type(self).__name__}: step {i} called after step {self._next_index - 1}; "
                "steps must be consecutive (call reset() or set_timesteps() to restart)")
        return i

    def _end_step(self, i: int) -> None:
        self._next_index = i + 1


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float32, or wider if an input is wider (float64 tests keep full precision)."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


class EulerFlowScheduler(FlowMatchScheduler):
    """Plain Euler on the flow ODE: ``x_{i+1} = x_i + (sigma_{i+1} - sigma_i) * v_i``.

    Stateless apart from the step-order check; the result has the sample's dtype.
    """

    order = 1

    def step(self, model_output, timestep_index, sample):
        i = self._begin_step(timestep_index)
        d_sigma = self._sigma_values[i + 1] - self._sigma_values[i]
        dtype = _compute_dtype(sample, model_output)
        out = sample.to(dtype) + d_sigma * model_output.to(dtype)
        self._end_step(i)
        return out.to(sample.dtype)


class DPMSolverPlusPlusScheduler(FlowMatchScheduler):
    """DPM-Solver++ (2M, midpoint) on the flow ODE, as FlowDPMSolverMultistepScheduler.

    Grid "unit" by default (sigma_0 = 1, t_0 = 1000). First order at the first step of a run and at
    the last step (terminal sigma 0), second order otherwise:
    ``x_{i+1} = a x_i + (1 - a)(m_i + D1 / 2)`` with ``a = sigma_{i+1}/sigma_i``,
    ``r0 = (lambda_i - lambda_{i-1}) / (lambda_{i+1} - lambda_i)`` and ``D1 = (m_i - m_{i-1}) / r0``.
    As in the official scheduler the sample is upcast to float32 for the update and the result has
    the model output's dtype.
    """

    default_grid = "unit"
    order = 2

    def reset(self) -> None:
        super().reset()
        self._prev_m: torch.Tensor | None = None

    def step(self, model_output, timestep_index, sample):
        i = self._begin_step(timestep_index)
        dtype = _compute_dtype(sample, model_output)
        m = sample.to(dtype) - self._sigma_values[i] * model_output.to(dtype)
        a = self._sigma_values[i + 1] / self._sigma_values[i]
        first_order = self._prev_m is None or i == self.num_steps - 1
        if first_order:
            x0_estimate = m
        else:
            lam_prev, lam, lam_next = self._lambdas[i - 1], self._lambdas[i], self._lambdas[i + 1]
            r0 = (lam - lam_prev) / (lam_next - lam)  # +inf when sigma_{i-1} = 1 -> D1 = 0
            coeff = 0.5 / r0
            x0_estimate = m + coeff * (m - self._prev_m)
        out = a * sample.to(dtype) + (1.0 - a) * x0_estimate
        self._prev_m = m
        self._end_step(i)
        return out.to(model_output.dtype)


class UniPCMultistepScheduler(FlowMatchScheduler):
    """UniPC multistep (order 2, bh2, x0 prediction, lower_order_final) on the flow ODE.

    Follows FlowUniPCMultistepScheduler as written down in ``flow_unipc.md``: at step i the x0
    estimate ``m_i`` is taken from the *uncorrected* sample; if a previous step exists, the UniC
    corrector (of the order the previous predictor used) replaces x_i by x_i^c; then the UniP
    predictor of order ``min(2, N - i, steps taken + 1)`` gives x_{i+1}. Exactly one model
    evaluation per step. The corrected sample and the result are cast to the sample's dtype (bf16
    latents stay bf16); m's are kept in float32 (or wider).

    ``use_corrector=False`` gives the plain UniP predictor, which on the "unit" grid is algebraically
    DPM-Solver++(2M).
    """

    default_grid = "train"
    order = 2

    def __init__(self, num_train_timesteps: int = 1000, sigma_grid: str | None = None,
                 use_corrector: bool = True):
        self.use_corrector = bool(use_corrector)
        super().__init__(num_train_timesteps, sigma_grid)

    def reset(self) -> None:
        super().reset()
        # (step index, m) of the last two steps, oldest first
        self._history: list[tuple[int, torch.Tensor]] = []
        self._last_sample: torch.Tensor | None = None
        self._last_order = 0
        self._steps_taken = 0

    def step(self, model_output, timestep_index, sample):
        i = self._begin_step(timestep_index)
        dtype = _compute_dtype(sample, model_output)
        m = sample.to(dtype) - self._sigma_values[i] * model_output.to(dtype)

        x = sample
        if self.use_corrector and self._last_sample is not None:
            x = self._correct(i, m)

        self._history = (self._history + [(i, m)])[-2:]
        order = min(2, self.num_steps - i, self._steps_taken + 1)
        out = self._predict(i, x, order, dtype)

        self._last_sample = x
        self._last_order = order
        self._steps_taken += 1
        self._end_step(i)
        return out.to(sample.dtype)

    def _predict(self, i: int, x: torch.Tensor, order: int, dtype: torch.dtype) -> torch.Tensor:
        """UniP from step i (sample x, already corrected) to step i + 1."""
        sig, lam = self._sigma_values, self._lambdas
        a = sig[i + 1] / sig[i]
        m_i = self._history[-1][1]
        x0_estimate = m_i
        if order == 2:
            m_prev = self._history[-2][1]
            h = lam[i + 1] - lam[i]
            r = (lam[i - 1] - lam[i]) / h
            # D = (m_{i-1} - m_i) / r, weighted by the fixed 1/2 of the bh2 order-2 predictor
            x0_estimate = m_i + (0.5 / r) * (m_prev - m_i)
        return a * x.to(dtype) + (1.0 - a) * x0_estimate

    def _correct(self, i: int, m_i: torch.Tensor) -> torch.Tensor:
        """UniC: re-do the step i-1 -> i with the new evaluation m_i; returns x_i^c."""
        sig, lam = self._sigma_values, self._lambdas
        base = self._last_sample
        assert base is not None
        order = self._last_order
        m_last = self._history[-1][1]  # m_{i-1}
        a = sig[i] / sig[i - 1]
        dtype = m_i.dtype
        if order == 1:
            correction = 0.5 * (m_i - m_last)
        else:
            m_last2 = self._history[-2][1]  # m_{i-2}
            h = lam[i] - lam[i - 1]
            r = (lam[i - 2] - lam[i - 1]) / h
            _, _, rho0, rho1 = unipc_bh2_corrector_coefficients(h, r)
            correction = (rho0 / r) * (m_last2 - m_last) + rho1 * (m_i - m_last)
        corrected = a * base.to(dtype) + (1.0 - a) * (m_last + correction)
        return corrected.to(base.dtype)


_SCHEDULERS = {
    "unipc": UniPCMultistepScheduler,
    "dpm++": DPMSolverPlusPlusScheduler,
    "euler": EulerFlowScheduler,
}


def make_scheduler(name: str, num_train_timesteps: int = 1000, **kwargs) -> FlowMatchScheduler:
    """Scheduler by name: "unipc" (official default), "dpm++" or "euler"."""
    try:
        cls = _SCHEDULERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown scheduler {name!r}; expected one of {SCHEDULER_NAMES}") from None
    return cls(num_train_timesteps=num_train_timesteps, **kwargs)

