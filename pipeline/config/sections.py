"""The config sections: every key with its type, its default and a short reason for it.

Fixed choices are `Literal[...]` hints and registry names `Annotated[str, REGISTRY]` hints
(pipeline.config.hints checks both and names the valid values); each section's
`check_ranges()` holds the valid range of each key on its own (the search space checks its
bounds with it) and `check()` adds the rules that tie keys together; those that depend on what
a registry entry takes (pipeline.config.rules) read it from the entry's registration.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pipeline.config.hints import check_choices
from pipeline.config.rules import check_optimizer_options, check_scheduler_options
from pipeline.errors import ConfigError
from pipeline.errors import require as _require
from pipeline.model.configs import MLPConfig, ModelConfig
from pipeline.model.registry import OPTIMIZERS, REFERENCES, SCHEDULERS


@dataclass
class CVConfig:
    folds: int = 5  # 80/20 splits: the usual bias/variance trade-off for a CV estimate
    # Competitions whose rows overlap in time set blocked.
    strategy: Literal["kfold", "stratified", "group", "blocked"] = "kfold"
    gap: int = 0  # blocked: rows next to a validation block dropped from training (leak guard)
    shuffle: bool = True  # kfold/stratified: shuffle rows before splitting (seeded)
    baseline: bool = True  # also score reference models on the same folds, as yardsticks
    # which references cv.baseline scores (pipeline.ensemble.references): linear (ridge / logistic
    # regression on the fold's preprocessing), hgb (HistGradientBoosting on the raw columns),
    # lightgbm (LightGBM on the raw columns); CSV competitions add hgb and lightgbm by default
    # (pipeline/tabular/features.py's CSV_DEFAULTS)
    references: list[Annotated[str, REFERENCES]] = field(default_factory=lambda: ["linear"])
    # blend the network with the references (non-negative weights fitted on the out-of-fold
    # predictions; submission_blend.csv), scored nested: weights never see the fold they score
    blend: bool = True

    def check_ranges(self) -> None:
        _require(self.folds >= 2, "cv.folds", "an int >= 2", self.folds)
        _require(self.gap >= 0, "cv.gap", "an int >= 0", self.gap)
        ok = len(set(self.references)) == len(self.references)
        _require(ok, "cv.references", "a list without repeats", self.references)

    def check(self) -> None:
        self.check_ranges()


@dataclass
class OptimConfig:
    name: Annotated[str, OPTIMIZERS] = "adamw"  # Adam, decoupled weight decay: good for MLPs
    lr: float = 1e-3  # Adam's usual step size (Adadelta wants ~1.0, SGD ~0.01-0.1)
    weight_decay: float = 0.0  # L2 on weights (decoupled for adamw); biases and norms exempt
    l1: float = 0.0  # adds l1 * sum|w| over weights to the training loss
    # Optimizer-specific; None keeps PyTorch's default. Setting one the optimizer does not take
    # is an error, so no switch is silently ignored.
    momentum: float | None = None  # sgd, rmsprop
    nesterov: bool = False  # sgd, needs momentum > 0
    betas: list[float] | None = None  # adam, adamw, nadam, radam
    alpha: float | None = None  # rmsprop's smoothing constant
    rho: float | None = None  # adadelta's decay
    eps: float | None = None  # every optimizer but sgd
    # Multi-tensor kernels (foreach) or fused ones (GPU); None lets PyTorch pick.
    foreach: bool | None = None

    def check_ranges(self) -> None:
        _require(self.lr > 0, "optim.lr", "a float > 0", self.lr)
        _require(self.weight_decay >= 0, "optim.weight_decay", "a float >= 0", self.weight_decay)
        _require(self.l1 >= 0, "optim.l1", "a float >= 0", self.l1)
        if self.momentum is not None:
            _require(0 <= self.momentum < 1, "optim.momentum", "a float in [0, 1)", self.momentum)
        if self.betas is not None:
            ok = len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas)
            _require(ok, "optim.betas", "two floats in [0, 1)", self.betas)
        if self.alpha is not None:
            _require(0 < self.alpha < 1, "optim.alpha", "a float in (0, 1)", self.alpha)
        if self.rho is not None:
            _require(0 < self.rho < 1, "optim.rho", "a float in (0, 1)", self.rho)
        if self.eps is not None:
            _require(self.eps > 0, "optim.eps", "a float > 0", self.eps)

    def check(self) -> None:
        self.check_ranges()
        check_optimizer_options(self)


@dataclass
class SchedConfig:
    name: Annotated[str, SCHEDULERS] = "none"  # step, exponential, power, cosine, plateau, ...
    interval: Literal["epoch", "step"] = "epoch"  # the unit t counts in (step: optimizer step)
    warmup: int = 0  # linear warm-up over this many intervals, then the schedule starts
    milestones: list[int] = field(default_factory=list)  # step: lr *= gamma at each milestone
    gamma: float = 0.1  # step / exponential / plateau: the factor applied to the lr
    decay_steps: float = 10.0  # exponential: lr0*gamma^(t/s); power: lr0/(1+t/s)^power
    power: float = 1.0  # power scheduling exponent c
    min_lr_ratio: float = 0.0  # cosine: floor as a fraction of the initial lr
    patience: int = 5  # plateau: epochs without improvement before the lr drops
    pct_start: float = 0.3  # onecycle: fraction of steps spent increasing the lr

    def check_ranges(self) -> None:
        _require(self.warmup >= 0, "sched.warmup", "an int >= 0", self.warmup)
        _require(0 < self.gamma <= 1, "sched.gamma", "a float in (0, 1]", self.gamma)
        _require(self.decay_steps > 0, "sched.decay_steps", "a float > 0", self.decay_steps)
        _require(self.power > 0, "sched.power", "a float > 0", self.power)
        ok = 0 <= self.min_lr_ratio <= 1
        _require(ok, "sched.min_lr_ratio", "a float in [0, 1]", self.min_lr_ratio)
        _require(self.patience >= 0, "sched.patience", "an int >= 0", self.patience)
        _require(0 < self.pct_start < 1, "sched.pct_start", "a float in (0, 1)", self.pct_start)
        ok = all(m > 0 for m in self.milestones) and self.milestones == sorted(self.milestones)
        _require(ok, "sched.milestones", "increasing ints > 0", self.milestones)

    def check(self) -> None:
        self.check_ranges()
        check_scheduler_options(self)


# train.compile: torch.compile modes for the fast engine's training step
CompileMode = Literal["auto", "none", "default", "reduce-overhead", "max-autotune"]
COMPILE_MODES = typing.get_args(CompileMode)


@dataclass
class TrainConfig:
    epochs: int = 100  # an upper bound: early stopping usually ends a fold sooner
    batch_size: int = 128  # small batches regularise; larger ones are faster on a GPU
    patience: int = 20  # epochs without improvement of the watched quantity before stopping
    min_delta: float = 0.0  # smallest change that counts as an improvement
    # What early stopping, checkpoints, plateau schedules, progress and pruning watch. auto: for
    # a metric of probabilities (auc, logloss) the loss (logloss), what the network minimises,
    # else the competition's metric; metric: always the metric; loss: logloss for
    # classification, mse for regression. Fold scores are the metric's either way.
    monitor: Literal["auto", "metric", "loss"] = "auto"
    # What the network minimises. auto: cross-entropy for classification; for regression l1
    # where the metric scores absolute errors (mae, medae: the median is their best answer),
    # else mse (rmse, r2; rmsle trains mse on log1p(y)); huber: squared near 0, linear beyond
    # train.huber_delta (on the standardised target scale), robust to outlying targets.
    loss: Literal["auto", "mse", "l1", "huber", "cross_entropy"] = "auto"
    huber_delta: float = 1.0  # huber: where the loss turns from squared to linear
    # Classification: cross-entropy against targets smoothed towards uniform by this much.
    # auto: 0.1 (RealMLP's) where the metric scores labels (accuracy, f1, ...), 0 where it
    # scores probabilities (auc, logloss), whose calibration smoothing would bias; CSV
    # competitions default to auto, plug-ins to 0 (TIMIT's Viterbi decoding reads the
    # posteriors as probabilities).
    label_smoothing: float | Literal["auto"] = 0.0
    grad_clip: float = 0.0  # 0 = off; else clip gradients by norm or value before each step
    # norm rescales the whole gradient, value clamps each element
    grad_clip_algorithm: Literal["norm", "value"] = "norm"
    max_norm: float = 0.0  # 0 = off; else each unit's incoming weight vector has norm <= this
    precision: Literal["32", "16-mixed", "bf16-mixed"] = "32"  # Lightning's names
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"  # Lightning's names
    devices: int | Literal["auto"] = "auto"  # number of devices, or auto
    strategy: str = "auto"  # auto | ddp | ... (Lightning's strategies for several devices)
    deterministic: bool = True  # repeatable runs; costs a little speed on GPUs
    # fast: all folds' models trained together in one fit (pipeline/engine/fast.py); plain: one
    # Lightning fit per fold; auto: fast unless the config needs plain (e.g. sched=plateau)
    engine: Literal["auto", "fast", "plain"] = "auto"
    # torch.compile the fast engine's training step (forward and backward); reduce-overhead
    # also captures it in CUDA graphs on a GPU. Compiling costs tens of seconds once per run:
    # it pays off on a GPU with many steps. auto: reduce-overhead for row models on a CUDA
    # device when the run has at least 20,000 steps (TIMIT's frame MLP: about 57,000), none
    # otherwise; a step that fails to compile then trains uncompiled, and the run says so.
    compile: CompileMode = "auto"
    # CUDA: TensorFloat-32 matrix products and convolutions (Ampere and newer), PyTorch's
    # "high" float32 matmul precision; about 3x the float32 rate, 10-bit mantissas in the
    # products, float32 sums.
    tf32: bool = True

    def check_ranges(self) -> None:
        _require(self.epochs >= 1, "train.epochs", "an int >= 1", self.epochs)
        _require(self.batch_size >= 1, "train.batch_size", "an int >= 1", self.batch_size)
        _require(self.patience >= 0, "train.patience", "an int >= 0", self.patience)
        _require(self.min_delta >= 0, "train.min_delta", "a float >= 0", self.min_delta)
        _require(self.grad_clip >= 0, "train.grad_clip", "a float >= 0", self.grad_clip)
        _require(self.huber_delta > 0, "train.huber_delta", "a float > 0", self.huber_delta)
        if self.label_smoothing != "auto":
            ok = 0 <= self.label_smoothing < 1
            _require(
                ok, "train.label_smoothing", "a float in [0, 1) or auto", self.label_smoothing
            )
        _require(self.max_norm >= 0, "train.max_norm", "a float >= 0", self.max_norm)
        if isinstance(self.devices, int):
            _require(self.devices >= 1, "train.devices", "an int >= 1 or 'auto'", self.devices)

    def check(self) -> None:
        self.check_ranges()
        if self.huber_delta != 1.0 and self.loss != "huber":
            raise ConfigError(
                f"train.huber_delta applies to train.loss=huber; got train.loss={self.loss}."
            )
        if self.compile not in ("none", "auto") and self.engine == "plain":
            raise ConfigError(
                "train.compile applies to the fast engine's training step; use train.engine=fast "
                "or auto (or train.compile=none with train.engine=plain)."
            )


@dataclass
class PredictConfig:
    # 0 = off. N > 0: dropout stays on at prediction, N passes are averaged and their spread
    # is saved beside the predictions (MC dropout).
    mc_samples: int = 0

    def check_ranges(self) -> None:
        _require(self.mc_samples >= 0, "predict.mc_samples", "an int >= 0", self.mc_samples)

    def check(self) -> None:
        self.check_ranges()


@dataclass
class PostConfig:
    """Post-processing of class probabilities that uses the order of the rows (frames)."""

    smooth: int = 0  # 0/1 = off; else average probabilities over this many neighbouring rows
    viterbi: bool = False  # decode with a class-transition matrix from the training labels
    # Weight of the log transition probabilities against the emissions. Neighbouring rows share
    # most of their frames, so their posteriors are not independent evidence and the
    # transitions need more than weight 1 to count (2.0 was best on generated TIMIT data).
    transition_weight: float = 2.0
    # Emissions = log posterior - prior_weight * log prior: 1 = the hybrid NN/HMM scaled
    # likelihood, 0 = the posteriors themselves; 0.5 was best on generated TIMIT data (the full
    # division boosts rare classes too much).
    prior_weight: float = 0.5

    @property
    def enabled(self) -> bool:
        return self.smooth > 1 or self.viterbi

    def check_ranges(self) -> None:
        _require(self.smooth >= 0, "post.smooth", "an int >= 0", self.smooth)
        ok = self.transition_weight > 0
        _require(ok, "post.transition_weight", "a float > 0", self.transition_weight)
        ok = 0 <= self.prior_weight <= 1
        _require(ok, "post.prior_weight", "a float in [0, 1]", self.prior_weight)

    def check(self) -> None:
        self.check_ranges()


@dataclass
class LightGBMConfig:
    """The lightgbm reference's settings (cv.references, pipeline.blend --references): a slower
    learning rate than LightGBM's 0.1 with enough rounds for early stopping on the fold's
    validation rows to end it, row and column subsampling, a little L2; the rest LightGBM's own.
    `python -m pipeline.tune COMP --reference lightgbm` searches them on the run's folds."""

    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    subsample: float = 0.8  # rows per tree (bagging every round)
    colsample_bytree: float = 0.8  # columns per tree
    reg_lambda: float = 1.0  # L2 on leaf values
    reg_alpha: float = 0.0  # L1 on leaf values
    n_estimators: int = 5000  # the most rounds; early stopping ends sooner
    stopping: int = 100  # rounds without a better validation loss before it stops

    def check_ranges(self) -> None:
        name = "lightgbm."
        _require(self.learning_rate > 0, name + "learning_rate", "a float > 0", self.learning_rate)
        _require(self.num_leaves >= 2, name + "num_leaves", "an int >= 2", self.num_leaves)
        ok = self.min_child_samples >= 1
        _require(ok, name + "min_child_samples", "an int >= 1", self.min_child_samples)
        ok = 0 < self.subsample <= 1
        _require(ok, name + "subsample", "a float in (0, 1]", self.subsample)
        ok = 0 < self.colsample_bytree <= 1
        _require(ok, name + "colsample_bytree", "a float in (0, 1]", self.colsample_bytree)
        _require(self.reg_lambda >= 0, name + "reg_lambda", "a float >= 0", self.reg_lambda)
        _require(self.reg_alpha >= 0, name + "reg_alpha", "a float >= 0", self.reg_alpha)
        ok = self.n_estimators >= 1
        _require(ok, name + "n_estimators", "an int >= 1", self.n_estimators)
        _require(self.stopping >= 1, name + "stopping", "an int >= 1", self.stopping)

    def check(self) -> None:
        self.check_ranges()


# log.logger -> the package its Lightning logger imports (also the name of the project's extra)
LOGGER_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}


@dataclass
class LogConfig:
    """Lightning's experiment loggers, besides the CSV logs every run keeps (learning_curves.png
    reads those). Each is an optional extra: pip install -e ".[tensorboard]" and so on."""

    logger: Literal["none", "tensorboard", "mlflow", "wandb"] = "none"  # none: CSV logs only
    project: str = ""  # MLflow experiment / W&B project; "": the competition's name
    uri: str = ""  # MLflow tracking URI; "": MLflow's own (MLFLOW_TRACKING_URI, else ./mlflow.db)
    # auto: online only when logged in (WANDB_API_KEY, or `wandb login`), so that a run never
    # waits at a login prompt; offline runs are kept in logs/wandb/ for `wandb sync`
    wandb_mode: Literal["auto", "online", "offline"] = "auto"

    def check_ranges(self) -> None:
        pass

    def check(self) -> None:
        package = LOGGER_PACKAGES.get(self.logger)
        if package is not None and importlib.util.find_spec(package) is None:
            raise ConfigError(
                f"log.logger={self.logger} needs the {package} package; install it with "
                f'pip install -e ".[{self.logger}]" (or pip install {package}).'
            )


@dataclass
class NoFeatures:
    """For competitions without feature options."""

    def check(self) -> None:
        pass


@dataclass
class Config:
    seed: int = 0  # seeds folds, initialisation and batch order: same seed, same numbers
    cv: CVConfig = field(default_factory=CVConfig)
    # the section of model.name: each model's own dataclass (pipeline.model.configs)
    model: ModelConfig = field(default_factory=MLPConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)
    post: PostConfig = field(default_factory=PostConfig)
    log: LogConfig = field(default_factory=LogConfig)
    lightgbm: LightGBMConfig = field(default_factory=LightGBMConfig)
    features: Any = field(default_factory=NoFeatures)  # the competition's own options

    def check_ranges(self) -> None:
        _require(self.seed >= 0, "seed", "an int >= 0", self.seed)

    def check(self) -> None:
        """Typed choices of every section first (a competition's features too), then each
        section's own rules, which may rely on the names being valid."""
        self.check_ranges()
        sections = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        sections = [(name, s) for name, s in sections if dataclasses.is_dataclass(s)]
        for name, section in sections:
            check_choices(section, f"{name}.")
        for _, section in sections:
            section.check()
