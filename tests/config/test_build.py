import typing
from dataclasses import dataclass
from typing import Literal

import pytest
import yaml

from pipeline.config import (
    COMPILE_MODES,
    Config,
    build_config,
    coerce,
    describe,
    leaf,
    parse_overrides,
    parse_value,
    to_yaml,
)
from pipeline.errors import ConfigError
from pipeline.tabular.features import TabularFeatures


def test_layers_apply_in_order():
    cfg = build_config(
        TabularFeatures(),
        layers=[
            ("defaults", {"model": {"dropout": 0.1}, "cv": {"folds": 3}}),
            ("file", {"model": {"dropout": 0.2}}),
        ],
        overrides=["model.dropout=0.3", "features.select=kbest", "features.k=4"],
    )
    assert cfg.model.dropout == 0.3
    assert cfg.cv.folds == 3
    assert cfg.features.select == "kbest" and cfg.features.k == 4


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("0.3", 0.3),
        ("[64, 32]", [64, 32]),
        ("true", True),
        ("False", False),
        ("none", None),
        ("adam", "adam"),
        ("1e-3", 1e-3),
        ("bf16-mixed", "bf16-mixed"),
        ("[tested_positive, illness]", ["tested_positive", "illness"]),
        ("[a,b", "[a,b"),
    ],
)
def test_parse_value(raw, value):
    assert parse_value(raw) == value


def test_parse_overrides_nests():
    assert parse_overrides(["a.b=1", "a.c=x", "d=2.5"]) == {"a": {"b": 1, "c": "x"}, "d": 2.5}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.dropuot=0.3", r"Unknown config key 'model.dropuot'.*Did you mean model.dropout\?"),
        ("nope=1", r"Unknown config key 'nope'.*Valid keys at the top level: seed, cv"),
        ("cv.folds=1", r"cv.folds must be an int >= 2; got 1"),
        ("cv.folds=2.5", r"cv.folds must be an int .*got 2.5"),
        ("cv.folds=abc", r"cv.folds must be an int .*got 'abc'"),
        ("model.dropout=1.0", r"model.dropout must be rates in \[0, 1\)"),
        ("model.dropout=-0.1", r"model.dropout must be rates in \[0, 1\)"),
        ("model.hidden=64", r"model.hidden must be a list of ints"),
        ("model.norm=batchy", r"model.norm must be one of: batch, layer, group, instance, none"),
        ("model.activation=swish", r"model.activation must be one of: relu, leaky_relu"),
        ("optim.name=adamax", r"optim.name must be one of: sgd, adagrad, rmsprop"),
        ("optim.lr=0", r"optim.lr must be a float > 0"),
        (
            "optim.momentum=0.9",
            r"optim.momentum does not apply to adamw; it applies to: sgd, rmsprop",
        ),
        ("cv.strategy=random", r"cv.strategy must be one of: kfold, stratified, group, blocked"),
        ("train.precision=8", r"train.precision must be one of: 32, 16-mixed, bf16-mixed"),
        ("cv=3", r"cv is a section"),
        ("model.dropout", r"overrides are key=value pairs"),
        ("features.select=groups", r"features.select=groups needs named column groups; this"),
        ("post.prior_weight=1.5", r"post.prior_weight must be a float in \[0, 1\]; got 1.5"),
        ("post.transition_weight=0", r"post.transition_weight must be a float > 0"),
    ],
)
def test_bad_values_are_rejected_with_the_key_and_choices(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(TabularFeatures(), overrides=[override])


def test_names_are_normalised_to_the_registry_spelling():
    cfg = build_config(overrides=["model.activation=LeakyReLU", "optim.name=AdamW"])
    assert cfg.model.activation == "leaky_relu"
    assert cfg.optim.name == "adamw"


def test_none_is_a_name_for_string_keys_and_null_for_optional_ones():
    cfg = build_config(
        overrides=["model.norm=none", "model.activation=None", "optim.momentum=none"]
    )
    assert cfg.model.norm == "none" and cfg.model.activation == "none"
    assert cfg.optim.momentum is None


def test_ints_widen_to_float_but_floats_do_not_narrow():
    cfg = build_config(overrides=["optim.lr=1"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    with pytest.raises(ConfigError):
        build_config(overrides=["train.epochs=10.0"])


def test_resolved_yaml_replays_to_the_same_config():
    cfg = build_config(TabularFeatures(), overrides=["model.hidden=[8, 4]", "seed=7"])
    again = build_config(TabularFeatures(), layers=[("config.yaml", yaml.safe_load(to_yaml(cfg)))])
    assert again == cfg


def test_defaults_pass_their_own_checks():
    Config().check()


# --- typed choices ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("sched.interval=epochs", r"sched.interval must be one of: epoch, step \(from the co"),
        ("train.grad_clip_algorithm=abs", r"train.grad_clip_algorithm must be one of: norm, val"),
        ("train.engine=turbo", r"train.engine must be one of: auto, fast, plain"),
        (
            "train.compile=fast",
            r"train.compile must be one of: auto, none, default, reduce-overhead",
        ),
        ("train.accelerator=tpu", r"train.accelerator must be one of: auto, cpu, gpu, cuda, mps"),
        ("train.devices=gpu", r"train.devices must be an int or auto .*; got 'gpu'"),
        ("model.init=none", r"model.init must be one of: default, xavier_normal.*; got 'none'"),
    ],
)
def test_choices_come_from_the_type_hints(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=[override])


def test_choices_read_as_numbers_or_null_take_their_spelling():
    cfg = build_config(
        layers=[("file", {"train": {"precision": 32, "compile": None, "devices": 2}})],
        overrides=["sched.name=none"],
    )
    assert (cfg.train.precision, cfg.train.compile, cfg.train.devices) == ("32", "none", 2)
    assert cfg.sched.name == "none"


def test_choices_set_in_python_are_checked_and_spelled_as_registered():
    cfg = Config()
    cfg.model.activation, cfg.optim.name = "LeakyReLU", "AdamW"
    cfg.check()
    assert (cfg.model.activation, cfg.optim.name) == ("leaky_relu", "adamw")
    cfg.train.engine = "turbo"
    with pytest.raises(ConfigError, match=r"train.engine must be one of: auto, fast, plain; got"):
        cfg.check()


@dataclass
class ModeFeatures:
    mode: Literal["mean", "max"] = "mean"

    def check(self) -> None:
        pass


def test_a_competitions_own_choices_are_checked_too():
    assert build_config(ModeFeatures(), overrides=["features.mode=max"]).features.mode == "max"
    with pytest.raises(ConfigError, match="features.mode must be one of: mean, max"):
        build_config(ModeFeatures(), overrides=["features.mode=min"])


def test_a_leafs_hint_coerces_a_choice_as_a_search_space_does():
    """pipeline.tune.space coerces each categorical choice with the leaf's hint."""
    hint = leaf(Config(), "model.activation")[2]
    assert coerce("LeakyReLU", hint, "model.activation", "test") == "leaky_relu"
    with pytest.raises(ConfigError, match=r"model.activation must be one of: relu.* \(from test"):
        coerce("swish", hint, "model.activation", "test")
    assert typing.get_args(leaf(Config(), "model.layers", any_model=True)[2]) == ()  # an int
    assert describe(leaf(Config(), "train.devices")[2]) == "an int or auto"
    assert COMPILE_MODES == ("auto", "none", "default", "reduce-overhead", "max-autotune")
