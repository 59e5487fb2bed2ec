"""Every registry entry builds and trains a step; layers behave as their names promise."""

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

from pipeline.config import OptimConfig, SchedConfig, build_config, model_config
from pipeline.errors import ConfigError
from pipeline.model import models, optim, registry
from pipeline.model.metrics import Task
from tests.conftest import registered


def _one_step(model_cfg=None, optim_cfg=None, sched_cfg=None, in_features=6, out=3):
    torch.manual_seed(0)
    # rows of 2 frames x 3 features, so the frame models can read them too
    model = models.build_model(model_cfg or model_config(hidden=[16, 8]), in_features, out, 3)
    opt = optim.build_optimizer(model, optim_cfg or OptimConfig())
    sched = optim.build_scheduler(opt, sched_cfg or SchedConfig(), 5, 4, "val/rmse", "min")
    x, y = torch.randn(32, in_features), torch.randint(0, out, (32,))
    before = [p.detach().clone() for p in model.parameters()]
    loss = Task("classification", out).loss(model(x), y)  # the one loss (member axis too)
    loss.backward()
    opt.step()
    if sched is not None:
        s = sched["scheduler"]
        s.step(1.0) if isinstance(s, torch.optim.lr_scheduler.ReduceLROnPlateau) else s.step()
    changed = any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    return model, loss, changed


@pytest.mark.parametrize("name", registry.list_activations())
def test_each_activation_trains(name):
    _, loss, changed = _one_step(model_config(hidden=[16, 8], activation=name))
    assert torch.isfinite(loss) and changed


@pytest.mark.parametrize("name", [n for n in registry.list_norms() if n != "instance"])
def test_each_norm_trains(name):
    model, loss, changed = _one_step(model_config(hidden=[16, 8], norm=name, norm_groups=4))
    assert torch.isfinite(loss) and changed
    kinds = {type(m) for m in model.modules()}
    expected = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, "group": nn.GroupNorm}
    if name in expected:
        assert expected[name] in kinds


@pytest.mark.parametrize("name", registry.list_inits())
def test_each_init_trains(name):
    _, loss, changed = _one_step(model_config(hidden=[16, 8], init=name))
    assert torch.isfinite(loss) and changed


@pytest.mark.parametrize("name", optim.list_optimizers())
def test_each_optimizer_trains(name):
    _, loss, changed = _one_step(optim_cfg=OptimConfig(name=name, lr=0.01))
    assert torch.isfinite(loss) and changed


@pytest.mark.parametrize("name", optim.list_schedulers())
def test_each_scheduler_builds_and_steps(name):
    sched = SchedConfig(name=name, milestones=[2] if name == "step" else [])
    _, loss, changed = _one_step(sched_cfg=sched)
    assert torch.isfinite(loss) and changed


@pytest.mark.parametrize("name", models.list_models())
def test_each_model_trains(name):
    _, loss, changed = _one_step(model_config(name, hidden=[16, 8]))
    assert torch.isfinite(loss) and changed


@pytest.mark.parametrize("spelling", ["LeakyReLU", "leaky-relu", "leaky_relu", "LEAKYRELU"])
def test_names_are_normalised(spelling):
    assert isinstance(registry.get_activation(spelling, 0.2), nn.LeakyReLU)


@pytest.mark.parametrize(
    ("getter", "message"),
    [
        (lambda: registry.get_activation("swish"), "Unknown activation 'swish'; choose one of"),
        (lambda: registry.get_norm("weird", 8), "Unknown norm 'weird'; choose one of: batch"),
        (lambda: registry.get_init("lecun"), "Unknown init 'lecun'; choose one of: default"),
    ],
)
def test_unknown_names_list_the_valid_ones(getter, message):
    with pytest.raises(ValueError, match=message):
        getter()


def test_none_means_identity():
    assert isinstance(registry.get_activation(None), nn.Identity)
    assert isinstance(registry.get_norm("none", 8), nn.Identity)


def test_leaky_relu_uses_the_configured_slope():
    act = registry.get_activation("leaky_relu", 0.2)
    assert act(torch.tensor([-1.0])).item() == pytest.approx(-0.2)


def test_group_norm_must_divide_the_width():
    with pytest.raises(ConfigError, match="3 groups do not divide 16 units"):
        models.build_model(model_config(hidden=[16], norm="group", norm_groups=3), 4, 1)


@pytest.mark.parametrize("norm", registry.list_norms())
def test_each_norm_trains_in_the_conv_model_where_instance_norm_exists(norm):
    cfg = model_config("conv", hidden=[8], norm=norm, norm_groups=4, channels=8)
    model, loss, changed = _one_step(cfg)
    assert torch.isfinite(loss) and changed
    if norm == "instance":
        assert any(isinstance(m, nn.InstanceNorm1d) for m in model.modules())


def test_frame_models_read_rows_as_frames():
    conv = models.build_model(model_config("conv", hidden=[4], channels=5, layers=1), 6, 2, 3)
    assert conv.convs[0].in_channels == 3 and conv.mlp.body[0].in_features == 5 * 2
    gru = models.build_model(model_config("gru", hidden=[4], channels=5), 6, 2, 3)
    assert gru.gru.input_size == 3 and gru.gru.bidirectional
    # frame order matters to the frame models: swapping the two frames changes the output
    x = torch.randn(4, 6)
    swapped = torch.cat([x[:, 3:], x[:, :3]], dim=1)
    assert not torch.allclose(conv.eval()(x), conv(swapped))


def test_frame_models_need_frames():
    with pytest.raises(ConfigError, match="rows are not made of frames"):
        models.build_model(model_config("conv"), 6, 2, frame_dim=0)
    with pytest.raises(ConfigError, match="needs whole frames of 4 features"):
        models.build_model(model_config("gru"), 6, 2, frame_dim=4)
    with pytest.raises(
        ConfigError, match="model.channels applies to the frame and sequence models"
    ):
        build_config(overrides=["model.channels=64"])


def test_instance_norm_is_refused_for_an_mlp_with_the_reason():
    with pytest.raises(ConfigError, match="Instance norm needs a channel axis"):
        models.build_model(model_config(hidden=[16], norm="instance"), 4, 1)


def test_group_norm_normalises_each_group_of_units():
    norm = registry.get_norm("group", 8, groups=2)
    out = norm(torch.randn(64, 8) * 5 + 3)
    for half in (out[:, :4], out[:, 4:]):
        assert torch.allclose(half.mean(1), torch.zeros(64), atol=1e-5)


def test_batch_norm_uses_batch_statistics_in_training_and_running_ones_in_eval():
    model = models.build_model(model_config(hidden=[8], norm="batch"), 4, 1)
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm1d))
    x = torch.randn(256, 4) * 3 + 1
    model.train()
    pre = model.body[0](x)
    out = bn(pre)
    assert torch.allclose(out.mean(0), torch.zeros(8), atol=1e-5)
    model.eval()
    assert not torch.allclose(bn(pre).mean(0), torch.zeros(8), atol=1e-3)


# --- dropout -------------------------------------------------------------------------------------


def _dropout_layers(model):
    return [m for m in model.modules() if isinstance(m, nn.Dropout)]


def test_dropout_zeroes_about_p_of_the_units_in_training_and_none_in_eval():
    p = 0.3
    model = models.build_model(model_config(hidden=[512], dropout=p, input_dropout=0.2), 64, 1)
    inp, hidden = _dropout_layers(model)
    assert (inp.p, hidden.p) == (0.2, p)
    x = torch.rand(2000, 512) + 0.5  # no zeros of its own
    hidden.train()
    out = hidden(x)
    kept = out != 0
    assert (~kept).float().mean().item() == pytest.approx(p, abs=0.01)
    assert torch.allclose(out[kept], x[kept] / (1 - p))  # survivors scaled by 1/(1-p)
    hidden.eval()
    assert torch.equal(hidden(x), x)


def test_per_layer_dropout_rates():
    model = models.build_model(model_config(hidden=[8, 8, 8], dropout=[0.1, 0.0, 0.5]), 4, 1)
    assert [m.p for m in _dropout_layers(model)] == [0.1, 0.5]
    with pytest.raises(ConfigError, match="lists 2 rates for 3 hidden layers"):
        build_config(overrides=["model.hidden=[8,8,8]", "model.dropout=[0.1,0.2]"])


# --- initialisation ------------------------------------------------------------------------------


def _init_layer(init, activation="relu", slope=0.01, shape=(512, 1024)):
    torch.manual_seed(0)
    cfg = model_config(hidden=[shape[0]], init=init, activation=activation, leaky_slope=slope)
    model = models.build_model(cfg, shape[1], 4)
    return model.body[0], model.head


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu", "selu", "sigmoid", "gelu"])
@pytest.mark.parametrize("init", ["xavier_normal", "xavier_uniform", "he_normal", "he_uniform"])
def test_init_statistics_match_their_formulas(init, activation):
    layer, head = _init_layer(init, activation, slope=0.2)
    fan_out, fan_in = layer.weight.shape
    gain = {
        "relu": math.sqrt(2),
        "gelu": math.sqrt(2),  # takes ReLU's gain
        "tanh": 5 / 3,
        "leaky_relu": math.sqrt(2 / (1 + 0.2**2)),
        "selu": 1.0,  # LeCun: the linear gain
        "sigmoid": 1.0,
    }[activation]
    if init.startswith("xavier"):
        std = gain * math.sqrt(2 / (fan_in + fan_out))
    else:
        std = gain / math.sqrt(fan_in)
    w = layer.weight.detach()
    assert w.std().item() == pytest.approx(std, rel=0.02)
    assert abs(w.mean().item()) < 0.05 * std
    if init.endswith("uniform"):
        assert w.abs().max().item() <= std * math.sqrt(3) + 1e-6  # uniform(-b, b), b = std*sqrt3
        assert w.abs().max().item() > 0.99 * std * math.sqrt(3)
    assert torch.count_nonzero(layer.bias) == 0 and torch.count_nonzero(head.bias) == 0
    # the head has no activation after it: gain 1
    head_std = head.weight.std().item()
    fan_in_head = head.weight.shape[1]
    expected_head = (
        math.sqrt(2 / (fan_in_head + head.weight.shape[0]))
        if init.startswith("xavier")
        else 1 / math.sqrt(fan_in_head)
    )
    assert head_std == pytest.approx(expected_head, rel=0.25)


def test_orthogonal_init_gives_orthogonal_rows_scaled_by_the_gain():
    layer, _ = _init_layer("orthogonal", "tanh")
    w = layer.weight.detach()
    gram = w @ w.T
    assert torch.allclose(gram, (5 / 3) ** 2 * torch.eye(w.shape[0]), atol=1e-4)


def test_default_init_keeps_pytorch_initialisation():
    layer, _ = _init_layer("default")
    bound = 1 / math.sqrt(layer.weight.shape[1])
    assert layer.weight.abs().max().item() <= bound
    assert torch.count_nonzero(layer.bias) > 0  # PyTorch's biases are not zero


# --- open registries -----------------------------------------------------------------------------


class Tiny(nn.Module):
    """A user's own model: one linear layer, and a record of what the builder was given."""

    def __init__(self, in_features, out_features, given):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.given = given

    def forward(self, x):
        return self.linear(x)


def build_tiny(cfg, in_features, out_features, frame_dim):
    return Tiny(in_features, out_features, (cfg.name, in_features, out_features, frame_dim))


def test_a_registered_model_is_selected_by_name_and_built():
    with registered(registry.MODELS, "mine", build_tiny):
        cfg = build_config(overrides=["model.name=Mine"])
        assert cfg.model.name == "mine"  # the registry's spelling
        model = models.build_model(cfg.model, 6, 2, 3)
        assert isinstance(model, Tiny) and model.given == ("mine", 6, 2, 3)
        assert model(torch.randn(4, 6)).shape == (4, 2)
        assert "mine" in models.list_models()
        with pytest.raises(
            ConfigError, match="model.channels applies to the frame and sequence models"
        ):
            build_config(overrides=["model.name=mine", "model.channels=8"])
    with pytest.raises(
        ConfigError, match=r"model.name must be one of: mlp, conv, gru, seq, tabm .*'mine'"
    ):
        build_config(overrides=["model.name=mine"])


def test_a_model_takes_the_keys_of_the_config_it_was_registered_with():
    from pipeline.model.configs import ConvConfig

    with registered(registry.MODELS, "myframes", build_tiny, frame=True, config=ConvConfig):
        cfg = build_config(overrides=["model.name=myframes", "model.channels=8"])
        assert cfg.model.channels == 8 and isinstance(cfg.model, ConvConfig)
        assert models.frame_models() == ["conv", "gru", "myframes"]
        with pytest.raises(ConfigError, match=r"frame models \(conv, myframes\), not to"):
            build_config(overrides=["model.name=mlp", "model.kernel=5"])
        with pytest.raises(ConfigError, match=r"sequence models \(conv, gru, seq, myframes\)"):
            build_config(overrides=["model.name=mlp", "model.layers=3"])
    bare = registered(registry.MODELS, "bare", build_tiny, frame=True)  # no config: common keys
    with bare, pytest.raises(ConfigError, match="model.channels applies to the frame and seq"):
        build_config(overrides=["model.name=bare", "model.channels=8"])


def test_an_unknown_model_lists_the_registered_ones():
    with registered(registry.MODELS, "mine", build_tiny):
        with pytest.raises(
            ConfigError, match=r"must be one of: mlp, conv, gru, seq, tabm, mine .*'nope'"
        ):
            build_config(overrides=["model.name=nope"])
        with pytest.raises(ValueError, match="Unknown model 'nope'; choose one of: mlp, conv"):
            models.build_model(model_config("nope"), 4, 1)


def _rms_norm(num_features, groups, channel_axis):
    return nn.RMSNorm(num_features)


def _halves(weight, gain):
    nn.init.constant_(weight, 0.5)


def _linear_decay(cfg, t, total):
    return 1 - t / total


def _has(layer):
    return lambda model, opt: any(isinstance(m, layer) for m in model.modules())


def _first_weights_near_half(model, opt):
    return torch.allclose(model.body[0].weight, torch.tensor(0.5), atol=0.01)


def _asgd_without_foreach(model, opt):
    return type(opt) is torch.optim.ASGD and opt.defaults["foreach"] is False


def _lr_after_one_epoch_of_five(model, opt):
    return opt.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 1 / 5))


# (registry, name, entry, facts, config overrides, what the built model or optimizer shows)
OPEN = {
    "activation": (
        registry.ACTIVATIONS,
        "mish",
        lambda slope: nn.Mish(),
        {"gain": "relu"},
        ["model.activation=mish"],
        _has(nn.Mish),
    ),
    "norm": (registry.NORMS, "rms", _rms_norm, {}, ["model.norm=rms"], _has(nn.RMSNorm)),
    "init": (
        registry.INITS,
        "halves",
        _halves,
        {},
        ["model.init=halves"],
        _first_weights_near_half,
    ),
    "optimizer": (
        registry.OPTIMIZERS,
        "asgd",
        torch.optim.ASGD,
        {"options": ("foreach",)},
        ["optim.name=asgd", "optim.foreach=false"],
        _asgd_without_foreach,
    ),
    "scheduler": (
        registry.SCHEDULERS,
        "linear",
        _linear_decay,
        {},
        ["sched.name=linear"],
        _lr_after_one_epoch_of_five,
    ),
}


@pytest.mark.parametrize("kind", OPEN)
def test_every_registry_is_open_to_a_new_entry(kind):
    table, name, entry, facts, overrides, shows = OPEN[kind]
    with registered(table, name, entry, **facts):
        cfg = build_config(overrides=["model.hidden=[8]", *overrides])
        torch.manual_seed(0)
        model = models.build_model(cfg.model, 4, 2)
        opt = optim.build_optimizer(model, cfg.optim)
        sched = optim.build_scheduler(opt, cfg.sched, 5, 1, "val/rmse", "min")
        model(torch.randn(8, 4)).sum().backward()
        opt.step()
        if sched is not None:
            sched["scheduler"].step()
        assert shows(model, opt)
    assert name not in table
    with pytest.raises(ConfigError, match="must be one of"):
        build_config(overrides=overrides)


def test_a_registered_schedule_brings_its_own_rules():
    with registered(
        registry.SCHEDULERS,
        "capped",
        _linear_decay,
        options=("milestones",),
        needs={"milestones": "[3]"},
        no_warmup="it warms up by itself",
    ):
        with pytest.raises(ConfigError, match=r"sched.name=capped needs sched.milestones, e.g."):
            build_config(overrides=["sched.name=capped"])
        with pytest.raises(ConfigError, match=r"sched.warmup does not combine .*by itself\)"):
            build_config(overrides=["sched.name=capped", "sched.milestones=[3]", "sched.warmup=2"])
        with pytest.raises(ConfigError, match="applies to sched.name=step or sched.name=capped"):
            build_config(overrides=["sched.name=cosine", "sched.milestones=[3]"])


def test_a_registered_optimizer_takes_only_its_options():
    with registered(registry.OPTIMIZERS, "asgd", torch.optim.ASGD, options=("alpha", "foreach")):
        with pytest.raises(ConfigError, match="optim.eps does not apply to asgd; it applies to"):
            build_config(overrides=["optim.name=asgd", "optim.eps=1e-8"])
        with pytest.raises(
            ConfigError, match="optim.alpha does not apply to sgd; .*: rmsprop, asgd"
        ):
            build_config(overrides=["optim.name=sgd", "optim.alpha=0.9"])
        opt = optim.build_optimizer(
            nn.Linear(2, 1), build_config(overrides=["optim.name=asgd", "optim.alpha=0.9"]).optim
        )
        assert opt.defaults["alpha"] == 0.9


def test_registering_keeps_names_apart_and_facts_honest():
    table = registry.Registry("widget", info={"fast": False})
    table.register("Big-One", 1, fast=True)
    assert table.canonical("big_one") == "Big-One" and table.lookup("BIGONE") == 1
    assert table.info("bigone") == {"fast": True}
    assert table.names(fast=True) == ["Big-One"] and list(table) == ["Big-One"]
    with pytest.raises(ValueError, match="A widget named 'Big-One' is already registered"):
        table.register("big_one", 2)
    table.register("big_one", 2, replace=True)
    assert dict(table) == {"big_one": 2} and table.info("big_one") == {"fast": False}
    with pytest.raises(TypeError, match="A widget entry takes fast; got fsat"):
        table.register("other", 3, fsat=True)
    with pytest.raises(ValueError, match="Unknown widget 'nope'; choose one of: big_one"):
        table.lookup("nope")


def test_a_function_defined_again_replaces_its_entry():
    """A notebook cell run twice, or a reloaded plug-in, registers the same name again."""
    table = registry.Registry("model")

    def build(cfg):
        return 1

    table.register("mine", build)

    def build(cfg):  # noqa: F811 (the cell run again)
        return 2

    table.register("mine", build)
    assert table.lookup("mine") is build


def test_the_config_and_the_registries_import_no_torch():
    """Names are checked against registry objects; the built-in entries (and torch) are only
    imported when a name is first looked up."""
    code = (
        "import sys, pipeline.config, pipeline.model.registry;"
        "print('torch' in sys.modules, 'pipeline.model.mlp' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_the_listing_follows_the_builtins_whichever_module_is_imported_first():
    """Importing a model's module first (a notebook's `from pipeline.model.sequence import ...`)
    registers its neighbours while it is half imported; names are still listed in the order of
    the registry's built-in modules, then everyone else's."""
    code = (
        "import pipeline.model.sequence;"
        "from pipeline.model.registry import MODELS;"
        "MODELS.register('zzz_mine', object);"
        "print(' '.join(MODELS.names()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.split() == ["mlp", "conv", "gru", "seq", "tabm", "zzz_mine"], done.stderr
