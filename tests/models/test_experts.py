"""Two-expert MoE switching (Wan2.2 A14B convention), per-expert guidance, and expert offloading."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from s2v_toolkit.errors import ConfigError
from s2v_toolkit.models.experts import (
    Expert,
    ExpertOffloader,
    ExpertSchedule,
    module_device,
)
from s2v_toolkit.models.schedulers import EulerFlowScheduler, UniPCMultistepScheduler
from s2v_toolkit.pipelines.guidance import guided_prediction


def t2v_a14b() -> ExpertSchedule:
    # spec: T2V-A14B boundary 0.875, guide (low 3.0, high 4.0)
    return ExpertSchedule.from_wan_config(0.875, (3.0, 4.0), high_name="high", low_name="low")


# ---------------------------------------------------------------------------------------------
# schedule
# ---------------------------------------------------------------------------------------------
def test_boundary_timestep_goes_to_the_high_noise_expert():
    schedule = t2v_a14b()
    plan = schedule.plan([999, 900, 876, 875, 874, 500, 1])
    assert [s.expert_name for s in plan] == ["high"] * 4 + ["low"] * 3
    assert [s.guidance_scale for s in plan] == [4.0] * 4 + [3.0] * 3
    assert [s.step_index for s in plan] == list(range(7))
    assert plan[3].timestep == 875 and plan[3].expert_index == 0


def test_from_wan_config_reads_guidance_pair_as_low_then_high():
    schedule = ExpertSchedule.from_wan_config(0.9, (2.0, 5.0))
    assert schedule.names == ["high_noise_model", "low_noise_model"]
    assert schedule.expert_for(900).guidance_scale == 5.0  # I2V boundary 0.900: t = 900 is high noise
    assert schedule.expert_for(899).guidance_scale == 2.0
    same = ExpertSchedule.from_wan_config(0.9, 3.5)
    assert [e.guidance_scale for e in same.experts] == [3.5, 3.5]


def test_plan_over_a_real_schedule_switches_once_where_t_crosses_the_boundary():
    sched = UniPCMultistepScheduler()
    sched.set_timesteps(40, shift=12.0)  # T2V-A14B sampling shift
    plan = t2v_a14b().plan(sched.timesteps)
    assert plan == t2v_a14b().plan(sched.timestep_values)  # tensor or host list: same plan
    expected = ["high" if t >= 875 else "low" for t in sched.timestep_values]
    assert [s.expert_name for s in plan] == expected
    switch = [i for i in range(1, 40) if plan[i].expert_name != plan[i - 1].expert_name]
    assert len(switch) == 1 and 0 < switch[0] < 39


def test_single_expert_is_used_for_every_step():
    schedule = ExpertSchedule.single("s2v", guidance_scale=4.5)
    sched = UniPCMultistepScheduler()
    sched.set_timesteps(40, shift=3.0)
    plan = schedule.plan(sched.timestep_values)
    assert {(s.expert_name, s.guidance_scale) for s in plan} == {("s2v", 4.5)}


def test_three_experts_generalise_the_boundary_rule():
    schedule = ExpertSchedule(
        experts=(Expert("a", 5.0), Expert("b", 4.0), Expert("c", 1.0)), boundaries=(0.9, 0.5))
    plan = schedule.plan([1000, 900, 899, 500, 499, 0])
    assert [s.expert_name for s in plan] == ["a", "a", "b", "b", "c", "c"]


@pytest.mark.parametrize("experts,boundaries,match", [
    ((), (), "at least one"),
    ((Expert("a", 1.0), Expert("b", 1.0)), (), "need 1 boundary"),
    ((Expert("a", 1.0), Expert("b", 1.0)), (1.2,), r"\(0, 1\)"),
    ((Expert("a", 1.0), Expert("a", 1.0)), (0.5,), "duplicate"),
    ((Expert("a", 1.0), Expert("b", 1.0), Expert("c", 1.0)), (0.3, 0.6), "decrease"),
    ((Expert("a", -1.0),), (), "guidance"),
])
def test_invalid_schedules_are_config_errors(experts, boundaries, match):
    with pytest.raises(ConfigError, match=match):
        ExpertSchedule(experts=experts, boundaries=boundaries)


def test_schedule_round_trips_through_json():
    schedule = t2v_a14b()
    again = ExpertSchedule.from_dict(json.loads(json.dumps(schedule.to_dict())))
    assert again == schedule
    with pytest.raises(ConfigError):
        ExpertSchedule.from_dict({"boundaries": [0.5]})


# ---------------------------------------------------------------------------------------------
# offloading
# ---------------------------------------------------------------------------------------------
class TrackedLinear(nn.Linear):
    """A real nn.Linear that also records the devices it is asked to move to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.moves: list[str] = []

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        self.moves.append(str(device))
        return super().to(*args, **kwargs)


def test_offloader_moves_outgoing_expert_off_before_loading_the_next():
    high, low = TrackedLinear(4, 4), TrackedLinear(4, 4)
    order: list[str] = []
    offloader = ExpertOffloader({"high": high, "low": low}, device="cpu", offload_device="cpu")
    for name in ["high", "high", "low", "low", "low"]:
        assert offloader.activate(name) is {"high": high, "low": low}[name]
        order.extend(f"{e.reason}:{e.expert}" for e in offloader.events[len(order):])
    assert order == ["offload:low", "load:high", "offload:high", "load:low"]
    assert high.moves == ["cpu", "cpu"] and low.moves == ["cpu", "cpu"]
    assert offloader.active == "low"
    assert offloader.placement("high") == "offloaded" and offloader.placement("low") == "active"
    offloader.offload_all()
    assert offloader.placement("low") == "offloaded" and offloader.active is None


def test_offloader_without_offload_only_loads_and_single_expert_loads_once():
    a, b = TrackedLinear(2, 2), TrackedLinear(2, 2)
    keep = ExpertOffloader({"a": a, "b": b}, device="cpu", offload=False)
    for name in ["a", "b", "a", "b"]:
        keep.activate(name)
    assert [(e.reason, e.expert) for e in keep.events] == [("load", "a"), ("load", "b")]
    only = TrackedLinear(2, 2)
    single = ExpertOffloader.for_schedule(ExpertSchedule.single("s2v"), [only], device="cpu")
    for _ in range(40):
        single.activate("s2v")
    assert only.moves == ["cpu"]
    with pytest.raises(KeyError):
        single.activate("other")
    with pytest.raises(ConfigError):
        ExpertOffloader.for_schedule(t2v_a14b(), [only], device="cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_offloader_really_moves_modules_between_cuda_and_cpu():
    high, low = nn.Linear(1024, 1024), nn.Linear(1024, 1024)  # 4 MiB of weights each
    offloader = ExpertOffloader.for_schedule(t2v_a14b(), {"high": high, "low": low}, device="cuda")
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    offloader.activate("high")
    assert module_device(high).type == "cuda" and module_device(low).type == "cpu"
    one_expert = torch.cuda.memory_allocated() - base
    assert one_expert >= 1024 * 1024 * 4
    offloader.activate("low")
    assert module_device(high).type == "cpu" and module_device(low).type == "cuda"
    assert torch.cuda.memory_allocated() - base == one_expert  # never two experts resident
    x = torch.randn(2, 1024, device="cuda")
    assert offloader.activate("low")(x).device.type == "cuda"
    offloader.offload_all()
    assert module_device(low).type == "cpu"


# ---------------------------------------------------------------------------------------------
# the MoE sampling loop: each step uses the expert and guidance its timestep demands
# ---------------------------------------------------------------------------------------------
class ScaledExpert(nn.Module):
    """Distinguishable tiny expert: v = gain * x + text_proj(context)."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = gain
        self.text = nn.Linear(3, 6, bias=False)
        with torch.no_grad():
            self.text.weight.copy_(torch.arange(18.0).reshape(6, 3) / 18.0 * gain)

    def forward(self, x, context):
        return self.gain * x + self.text(context)


def test_moe_sampling_loop_uses_the_expert_and_guidance_each_timestep_demands():
    experts = {"high": ScaledExpert(0.5), "low": ScaledExpert(-0.25)}
    calls: list[str] = []
    for name, module in experts.items():
        module.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    schedule = t2v_a14b()
    offloader = ExpertOffloader.for_schedule(schedule, experts, device="cpu")
    sched = EulerFlowScheduler()
    sched.set_timesteps(20, shift=12.0)
    plan = schedule.plan(sched.timestep_values)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 6, generator=gen)
    cond, uncond = {"context": torch.randn(1, 3, generator=gen)}, {"context": torch.zeros(1, 3)}
    used = []
    with torch.no_grad():
        for step in plan:
            model = offloader.activate(step.expert_name)
            v = guided_prediction(model, {"x": x}, cond, uncond, step.guidance_scale, batched=True)
            # independent expectation: expert and scale from the timestep rule itself
            t = sched.timestep_values[step.step_index]
            want_module, want_scale = (experts["high"], 4.0) if t >= 875 else (experts["low"], 3.0)
            c = want_module.gain * x + want_module.text(cond["context"])
            u = want_module.gain * x + want_module.text(uncond["context"])
            torch.testing.assert_close(v, u + want_scale * (c - u))
            used.append(step.expert_name)
            x = sched.step(v, step.step_index, x)
    assert calls == used  # one batched forward per step, by the planned expert
    assert used[0] == "high" and used[-1] == "low" and set(used) == {"high", "low"}
    assert offloader.placement("high") == "offloaded"
