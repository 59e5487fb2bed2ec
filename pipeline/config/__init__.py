"""Layered configuration: dataclass defaults <- competition defaults.yaml <- --config FILE <-
key=value arguments, every key typed and checked before anything runs.

  sections.py  the sections (cv, optim, sched, train, predict, post) with their defaults; the
               model section is each model's own (pipeline.model.configs)
  hints.py     values checked against the type hints: fixed choices (Literal) and registry names
  rules.py     rules that follow from a registry entry's registration (optimizer options, ...)
  build.py     the layers, `key=value` parsing, YAML in and out
  keys.py      dotted keys ('model.dropout'): nest, flatten, merge, leaf, get_path
"""

from pipeline.config.build import (
    apply_mapping,
    build_config,
    load_yaml,
    parse_overrides,
    parse_value,
    to_dict,
    to_yaml,
)
from pipeline.config.hints import coerce, describe
from pipeline.config.keys import flatten, get_path, leaf, merge, nest
from pipeline.config.sections import (
    COMPILE_MODES,
    Config,
    CVConfig,
    LightGBMConfig,
    NoFeatures,
    OptimConfig,
    PostConfig,
    PredictConfig,
    SchedConfig,
    TrainConfig,
)
from pipeline.model.configs import ModelConfig, model_config

__all__ = [
    "ModelConfig",
    "model_config",
    "COMPILE_MODES",
    "CVConfig",
    "LightGBMConfig",
    "Config",
    "NoFeatures",
    "OptimConfig",
    "PostConfig",
    "PredictConfig",
    "SchedConfig",
    "TrainConfig",
    "apply_mapping",
    "build_config",
    "coerce",
    "describe",
    "flatten",
    "get_path",
    "leaf",
    "load_yaml",
    "merge",
    "nest",
    "parse_overrides",
    "parse_value",
    "to_dict",
    "to_yaml",
]
