"""Optimizer options reach PyTorch; each schedule follows its formula step by step."""

import math

import pytest
import torch
from torch import nn

from pipeline.config import OptimConfig, SchedConfig, build_config
from pipeline.errors import ConfigError
from pipeline.model import optim
from pipeline.model.registry import OPTIMIZERS, SCHEDULERS


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))


def test_momentum_nesterov_and_weight_decay_reach_the_optimizer():
    cfg = build_config(
        overrides=[
            "optim.name=sgd",
            "optim.momentum=0.9",
            "optim.nesterov=true",
            "optim.weight_decay=0.01",
            "optim.lr=0.05",
        ]
    ).optim
    opt = optim.build_optimizer(_model(), cfg)
    assert isinstance(opt, torch.optim.SGD)
    decayed, exempt = opt.param_groups
    assert decayed["momentum"] == 0.9 and decayed["nesterov"] is True and decayed["lr"] == 0.05
    assert decayed["weight_decay"] == 0.01
    assert all(p.ndim >= 2 for p in decayed["params"])  # weights only
    assert exempt["weight_decay"] == 0.0 and all(p.ndim == 1 for p in exempt["params"])


@pytest.mark.parametrize(
    ("overrides", "cls", "values"),
    [
        (
            ["optim.name=adam", "optim.betas=[0.8,0.99]", "optim.eps=1e-6"],
            torch.optim.Adam,
            {"betas": (0.8, 0.99), "eps": 1e-6},
        ),
        (["optim.name=adamw", "optim.weight_decay=0.1"], torch.optim.AdamW, {"weight_decay": 0.1}),
        (
            ["optim.name=rmsprop", "optim.alpha=0.9", "optim.momentum=0.5"],
            torch.optim.RMSprop,
            {"alpha": 0.9, "momentum": 0.5},
        ),
        (
            ["optim.name=adadelta", "optim.rho=0.95", "optim.lr=1.0"],
            torch.optim.Adadelta,
            {"rho": 0.95, "lr": 1.0},
        ),
        (["optim.name=adagrad", "optim.eps=1e-8"], torch.optim.Adagrad, {"eps": 1e-8}),
        (["optim.name=nadam"], torch.optim.NAdam, {}),
        (["optim.name=radam"], torch.optim.RAdam, {}),
    ],
)
def test_optimizer_specific_options_reach_pytorch(overrides, cls, values):
    opt = optim.build_optimizer(_model(), build_config(overrides=overrides).optim)
    assert type(opt) is cls
    for key, value in values.items():
        assert opt.param_groups[0][key] == value


def test_adamw_decay_is_decoupled_and_adam_decay_is_l2():
    """Same gradient-free step: Adam's L2 goes through the adaptive update, AdamW's does not."""
    results = {}
    for name in ("adam", "adamw"):
        w = nn.Parameter(torch.ones(2, 2))
        opt = optim.build_optimizer(
            nn.ParameterList([w]), OptimConfig(name=name, lr=0.1, weight_decay=0.5)
        )
        w.grad = torch.zeros_like(w)
        opt.step()
        results[name] = w.detach()[0, 0].item()
    assert results["adamw"] == pytest.approx(1 - 0.1 * 0.5)  # w -= lr * wd * w
    assert results["adam"] == pytest.approx(1 - 0.1, abs=1e-3)  # normalised: ~lr * sign


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optim.name=adam", "optim.momentum=0.9"], "optim.momentum does not apply to adam"),
        (["optim.name=sgd", "optim.betas=[0.9,0.99]"], "optim.betas does not apply to sgd"),
        (
            ["optim.name=adam", "optim.rho=0.9"],
            "optim.rho does not apply to adam; it applies to: adadelta",
        ),
        (["optim.name=sgd", "optim.nesterov=true"], "optim.nesterov needs optim.momentum > 0"),
        (
            ["sched.name=plateau", "sched.warmup=3"],
            "sched.warmup does not combine with sched.name=plateau",
        ),
        (["sched.name=onecycle", "sched.warmup=3"], "one-cycle has its own warm-up"),
        (["sched.name=step"], "sched.name=step needs sched.milestones"),
        (
            ["sched.name=cosine", "sched.milestones=[3]"],
            "sched.milestones applies to sched.name=step",
        ),
        (["sched.name=step", "sched.milestones=[5,3]"], "increasing ints > 0"),
        (["sched.name=cyclic"], "sched.name must be one of: none, step, exponential"),
        # options of a schedule that is not selected
        (
            ["sched.gamma=0.5"],
            r"sched.gamma=0.5 does not apply to sched.name=none: sched.gamma "
            r"applies to sched.name=step or sched.name=exponential or sched.name=plateau only",
        ),
        (
            ["sched.name=cosine", "sched.decay_steps=3"],
            r"sched.decay_steps=3.0 does not apply to sched.name=cosine: .*=exponential or .*=power",
        ),
        (
            ["sched.name=step", "sched.milestones=[3]", "sched.pct_start=0.5"],
            r"sched.pct_start applies to sched.name=onecycle only",
        ),
        (["sched.name=exponential", "sched.patience=2"], r"sched.patience applies to .*=plateau"),
        (["sched.min_lr_ratio=0.1"], r"sched.min_lr_ratio applies to sched.name=cosine only"),
        (["optim.name=sgd", "optim.eps=1e-8"], r"optim.eps does not apply to sgd; it applies to"),
    ],
)
def test_options_that_would_be_ignored_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=overrides)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_each_schedule_takes_its_own_options_and_the_defaults(name):
    """Every option a schedule registered, set away from its default, is accepted with it."""
    changed = {
        "milestones": "[2,4]",
        "gamma": "0.5",
        "decay_steps": "3",
        "power": "2",
        "min_lr_ratio": "0.1",
        "patience": "2",
        "pct_start": "0.4",
    }
    options = SCHEDULERS.info(name)["options"]
    cfg = build_config(
        overrides=[f"sched.name={name}", *(f"sched.{o}={changed[o]}" for o in options)]
    )
    assert cfg.sched.name == name


# --- schedules ----------------------------------------------------------------------------------

LR0 = 0.1


def _lrs(sched_cfg, epochs=12, steps_per_epoch=1, n=None):
    """The lr the optimizer uses at t = 0, 1, ... (stepping the scheduler once per t)."""
    w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=LR0)
    conf = optim.build_scheduler(opt, sched_cfg, epochs, steps_per_epoch, "val/rmse", "min")
    out = []
    for _ in range(n or epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        conf["scheduler"].step()
    return out


@pytest.mark.parametrize(
    ("cfg", "formula"),
    [
        (
            SchedConfig(name="step", milestones=[3, 7], gamma=0.5),
            lambda t: LR0 * 0.5 ** ((t >= 3) + (t >= 7)),
        ),
        (
            SchedConfig(name="exponential", gamma=0.1, decay_steps=4),
            lambda t: LR0 * 0.1 ** (t / 4),
        ),
        (SchedConfig(name="power", decay_steps=2, power=0.5), lambda t: LR0 / (1 + t / 2) ** 0.5),
        (
            SchedConfig(name="cosine", min_lr_ratio=0.1),
            lambda t: LR0 * (0.1 + 0.9 * (1 + math.cos(math.pi * t / 12)) / 2),
        ),
        (
            SchedConfig(name="cosine", warmup=4),
            lambda t: (
                LR0 * (t + 1) / 4 if t < 4 else LR0 * (1 + math.cos(math.pi * (t - 4) / 8)) / 2
            ),
        ),
        (SchedConfig(name="none", warmup=3), lambda t: LR0 * min(1.0, (t + 1) / 3)),
        (
            SchedConfig(name="exponential", warmup=2, gamma=0.5, decay_steps=1),
            lambda t: LR0 * (t + 1) / 2 if t < 2 else LR0 * 0.5 ** (t - 2),
        ),
    ],
)
def test_each_schedule_matches_its_formula_step_by_step(cfg, formula):
    got = _lrs(cfg)
    assert got == pytest.approx([formula(t) for t in range(12)], rel=1e-9)


def test_step_interval_counts_optimizer_steps():
    cfg = SchedConfig(name="step", milestones=[5], gamma=0.1, interval="step")
    got = _lrs(cfg, epochs=2, steps_per_epoch=4)
    assert got == pytest.approx([LR0] * 5 + [LR0 * 0.1] * 3)


def test_onecycle_follows_its_formula():
    total, pct = 20, 0.3
    got = _lrs(SchedConfig(name="onecycle", pct_start=pct), epochs=4, steps_per_epoch=5)
    initial, final = LR0 / 25, LR0 / 25 / 1e4
    up = pct * total - 1

    def cos(start, end, frac):
        return end + (start - end) / 2 * (1 + math.cos(math.pi * frac))

    expected = [
        cos(initial, LR0, t / up) if t <= up else cos(LR0, final, (t - up) / (total - 1 - up))
        for t in range(total)
    ]
    assert got == pytest.approx(expected, rel=1e-6)


def test_onecycle_does_not_switch_on_momentum_the_config_left_off():
    w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=LR0)
    optim.build_scheduler(opt, SchedConfig(name="onecycle"), 2, 5, "val/rmse", "min")
    assert opt.param_groups[0]["momentum"] == 0


def test_plateau_lowers_the_rate_after_patience_epochs_without_improvement():
    w = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=LR0)
    conf = optim.build_scheduler(
        opt, SchedConfig(name="plateau", patience=2, gamma=0.5), 10, 1, "val/acc", "max"
    )
    assert conf["monitor"] == "val/acc" and conf["interval"] == "epoch"
    sched, lrs = conf["scheduler"], []
    for value in [0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]:  # improves once, then stalls
        sched.step(value)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([LR0, LR0, LR0, LR0, LR0 / 2, LR0 / 2, LR0 / 2])


def test_no_schedule_and_no_warmup_means_no_scheduler():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR0)
    assert optim.build_scheduler(opt, SchedConfig(), 5, 3, "val/rmse", "min") is None


def test_l1_penalty_is_the_sum_of_absolute_weights():
    model = _model()
    expected = model[0].weight.abs().sum() + model[2].weight.abs().sum()
    assert optim.l1_penalty(model).item() == pytest.approx(expected.item())


def test_max_norm_bounds_each_units_incoming_weights():
    layer = nn.Linear(10, 6)
    with torch.no_grad():
        layer.weight.mul_(100)
    small = layer.weight[0].detach().clone() / layer.weight[0].norm() * 0.5
    with torch.no_grad():
        layer.weight[0] = small  # a row already inside the bound stays as it is
    optim.apply_max_norm(layer, 2.0)
    norms = layer.weight.norm(dim=1)
    assert torch.all(norms <= 2.0 + 1e-5)
    assert torch.allclose(norms[1:], torch.full((5,), 2.0), atol=1e-4)
    assert torch.allclose(layer.weight[0], small)


DEVICES = ["cpu", "meta"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_each_optimizer_steps_on_the_device_it_is_built_for(name, device):
    """The fast engine asks for fused kernels; an optimizer gets one only where PyTorch has a
    fused kernel for the parameters' device (the meta device has none: it stands for a device
    that lacks them, as CUDA did for Adagrad), and its first step never fails for want of one."""
    model = nn.Linear(3, 2).to(device)
    cfg = build_config(overrides=[f"optim.name={name}"]).optim
    opt = optim.build_optimizer(model, cfg, prefer_fused=True)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    fused = any(group.get("fused") for group in opt.param_groups)
    assert fused == optim.fused_steps(type(opt), torch.device(device))
    if device == "meta":
        assert not fused
