import json

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from pipeline.competition.catalog import load_competition
from pipeline.config import get_path, nest, parse_overrides
from pipeline.errors import ConfigError
from pipeline.run.inputs import resolve_config
from pipeline.tune.space import load_space, parse_space, to_override


@pytest.fixture(scope="module")
def cfg(covid):
    return resolve_config(covid, None, [])


def test_a_space_reads_ranges_choices_and_nested_sections(cfg):
    space = parse_space(
        {
            "optim.lr": {"low": "1e-4", "high": 1.0e-2, "log": True},  # PyYAML's 1e-4 is text
            "model": {"layers": {"low": 1, "high": 3}, "dropout": {"low": 0, "high": 0.5}},
            "model.hidden": [[32], [64, 32]],
            "features.groups": {"choices": [["tested_positive"], ["tested_positive", "illness"]]},
            "train.batch_size": {"type": "int", "low": 32, "high": 256, "log": True},
        },
        cfg,
        "test",
    )
    dist = {p.path: p.distribution for p in space.params}
    assert dist["optim.lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert dist["model.layers"] == IntDistribution(1, 3)  # an int key: an int range
    assert dist["model.dropout"] == FloatDistribution(0.0, 0.5)  # a float key: a float range
    assert dist["train.batch_size"] == IntDistribution(32, 256, log=True)
    # lists are stored as JSON text (Optuna stores only scalars) and decoded back
    assert dist["model.hidden"] == CategoricalDistribution(["[32]", "[64, 32]"])
    assert space.decode({"model.hidden": "[64, 32]", "optim.lr": 0.001}) == {
        "model.hidden": [64, 32],
        "optim.lr": 0.001,
    }


def test_suggested_values_are_config_values(cfg):
    space = parse_space({"model.hidden": [[32], [64, 32]], "optim.lr": [0.01]}, cfg, "test")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    values = space.suggest(study.ask())
    assert values["model.hidden"] in ([32], [64, 32]) and values["optim.lr"] == 0.01


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"model.dropuot": {"low": 0, "high": 0.5}},
            r"model.dropuot: unknown config key. Valid keys under 'model': name, hidden",
        ),
        ({"optim": {"lr": 0.01}}, r"optim.lr: give a range .* or a list of choices; got 0.01"),
        ({"model": 0.1}, r"model is a section; name one of its keys, e.g. model.<key>"),
        (
            {"model.dropout": {"low": 0.5, "high": 0.1}},
            r"low must be below high; got low=0.5, high=0.1",
        ),
        ({"optim.lr": {"low": 0, "high": 0.1, "log": True}}, r"a log range needs low > 0"),
        ({"optim.lr": {"low": "abc", "high": 0.1}}, r"bounds must be finite numbers; got 'abc'"),
        (
            {"optim.lr": {"type": "loguniform", "low": 1, "high": 2}},
            r"type must be one of: float, int, categorical",
        ),
        ({"optim.lr": {"low": 1e-4, "hi": 0.1}}, r"unknown key\(s\) hi"),
        ({"optim.lr": {"low": 1e-4}}, r"needs low and high"),
        (
            {"model.layers": {"low": 0.5, "high": 2.5}},
            r"an int range needs whole-number bounds; got 0.5",
        ),
        (
            {"model.layers": {"type": "float", "low": 0.5, "high": 2.5}},
            r"model.layers must be an int",
        ),
        ({"model.layers": {"type": "int", "low": 1, "high": 2.5}}, r"whole-number bounds"),
        ({"model.hidden": ["wide", [64]]}, r"model.hidden must be a list of ints .*got 'wide'"),
        ({"model.hidden": []}, r"choices must be a non-empty list"),
        ({"model.activation": ["relu", "relu"]}, r"choice 'relu' is listed twice"),
        (
            {"optim.lr": {"low": 1e-4, "high": 1e-2, "log": True, "step": 1e-4}},
            r"either log or step",
        ),
        ({"optim": {"lr": [0.1]}, "optim.lr": [0.2]}, r"optim.lr is given twice"),
        ({"model.dropout": {"low": 0, "high": 0.5, "log": "yes"}}, r"log must be true or false"),
        # bounds and choices outside the key's own range (pipeline.config.sections)
        (
            {"model.dropout": {"low": 0.0, "high": 1.5}},
            r"model.dropout: high=1.5 is outside the valid values: model.dropout must be rates in "
            r"\[0, 1\); got 1.5",
        ),
        ({"model": {"dropout": [0.1, 1.0]}}, r"choice 1.0 is outside .* rates in \[0, 1\)"),
        ({"optim.lr": {"low": -0.1, "high": 0.1}}, r"low=-0.1 is outside .*optim.lr must be a fl"),
        ({"train.batch_size": {"low": 0, "high": 64}}, r"low=0 is outside .*an int >= 1; got 0"),
        ({"model.kernel": {"low": 1, "high": 5}}, r"value 2 of the range is outside .*an odd int"),
        ({"sched.gamma": [0.5, 2]}, r"choice 2 is outside .*sched.gamma must be a float in"),
        ({"cv.folds": [1, 5]}, r"choice 1 is outside .*cv.folds must be an int >= 2"),
        ({"seed": {"low": -1, "high": 3}}, r"seed: low=-1 is outside .*seed must be an int >= 0"),
    ],
)
def test_bad_spaces_are_one_clear_line(cfg, raw, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_space(raw, cfg, "--space s.yaml")
    assert "\n" not in str(info.value)
    assert "--space s.yaml" in str(info.value)


def test_ranges_are_checked_key_by_key_and_combinations_left_to_trials(cfg):
    """sched.gamma searched while sched.name=none is no error here: sched.name may be searched
    too, and each trial's config is checked whole."""
    space = parse_space(
        {
            "sched.name": ["none", "exponential"],
            "sched.gamma": {"low": 0.1, "high": 1.0},
            "model.kernel": {"low": 1, "high": 7, "step": 2},
            "model.channels": [8, 16],
        },
        cfg,
        "test",
    )
    assert space.paths == ["sched.name", "sched.gamma", "model.kernel", "model.channels"]


def test_a_space_file_may_hold_a_search_block_or_the_mapping(covid, cfg, tmp_path):
    block, bare = tmp_path / "block.yaml", tmp_path / "bare.yaml"
    block.write_text("search:\n  optim.lr: {low: 1e-4, high: 1.0e-2, log: true}\n")
    bare.write_text("optim.lr: [1.0e-3, 1.0e-2]\n")
    assert load_space(covid, block, cfg).paths == ["optim.lr"]
    assert load_space(covid, bare, cfg).params[0].distribution.choices == (1e-3, 1e-2)
    empty = tmp_path / "empty.yaml"
    empty.write_text("search: {}\n")
    with pytest.raises(ConfigError, match="No search space: --space .*empty.yaml is empty"):
        load_space(covid, empty, cfg)


@pytest.mark.parametrize("name", ["covid", "demo", "timit"])
def test_every_competition_ships_a_valid_space(name):
    competition = load_competition(name)
    cfg = resolve_config(competition, None, [])
    space = load_space(competition, None, cfg)
    assert len(space.params) >= 3
    for param in space.params:
        get_path(cfg, param.path)  # a real config key


@pytest.mark.parametrize(
    "value", [0.001, 1e-05, 3, True, False, None, "relu", "0.5", [64, 32], ["a", "b"], [0.1, 0.2]]
)
def test_overrides_from_values_parse_back_to_the_same_value(value):
    parsed = parse_overrides([to_override("model.x", value)])
    assert parsed == {"model": {"x": value}}
    assert nest({"model.x": value, "seed": 1}) == {"model": {"x": value}, "seed": 1}
    assert json.loads(json.dumps(parsed))  # plain data, fit for best.yaml
