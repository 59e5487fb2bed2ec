"""The fast engine: stacking is exact, folds stay isolated, per-fold early stopping, parity with
the plain path, and every toolbox switch either works or is refused with the fallback named."""

import itertools

import numpy as np
import pytest
import torch

from pipeline.config import model_config
from pipeline.engine.cv import CrossValidator
from pipeline.engine.device import DeviceFolds
from pipeline.engine.lit_stacked import StackedLitModel
from pipeline.engine.stopping import FoldEarlyStopping
from pipeline.errors import ConfigError
from pipeline.model.metrics import Task
from pipeline.model.models import build_model, stack_models
from tests.conftest import assert_stack_computes_its_models, small_config

NORMS = ["none", "batch", "layer", "group", "instance"]


@pytest.mark.parametrize(
    ("name", "norm"),
    [
        (n, m)
        for n, m in itertools.product(["mlp", "conv"], NORMS)
        if (n, m) != ("mlp", "instance")
    ],
)
def test_stacked_models_compute_exactly_what_the_separate_models_do(name, norm):
    torch.manual_seed(0)
    extra = {"channels": 8} if name == "conv" else {}
    cfg = model_config(name, hidden=[16, 8], norm=norm, norm_groups=4, **extra)
    models = [build_model(cfg, 12, 3, frame_dim=3) for _ in range(4)]
    stacked = stack_models(name, models)
    assert_stack_computes_its_models(stacked, models, torch.randn(4, 10, 12))


@pytest.mark.parametrize("task", [Task("regression"), Task("classification", n_classes=4)])
def test_the_stacked_loss_gives_each_fold_the_gradient_of_its_own_loss(task):
    """One reduction over all folds; fold k's gradient must be that of task.loss on fold k."""
    torch.manual_seed(0)
    K, B = 3, 16
    models = [build_model(model_config(hidden=[8]), 5, task.n_outputs, None) for _ in range(K)]
    stacked = stack_models("mlp", models)
    x = torch.randn(K, B, 5)
    target = torch.randint(4, (K, B)) if task.is_classification else torch.randn(K, B)
    host = type("Host", (), {"stacked": stacked, "task": task})()
    loss = StackedLitModel._forward_loss(host, x, target)
    loss.backward()
    own = [task.loss(m(x[k]), target[k]) for k, m in enumerate(models)]
    torch.testing.assert_close(loss, torch.stack(own).sum())
    sum(own).backward()
    for k, m in enumerate(models):
        torch.testing.assert_close(stacked.stages[0][0].weight.grad[k], m.body[0].weight.grad)


def test_a_recurrent_model_does_not_stack():
    models = [build_model(model_config("gru", hidden=[4], channels=4), 6, 2, 3)] * 2
    with pytest.raises(ConfigError, match="FrameGRU model"):
        stack_models("gru", models)


def test_precomputed_and_on_the_fly_inputs_agree():
    g = torch.Generator().manual_seed(0)
    data = DeviceFolds(
        X=torch.randn(30, 5, generator=g),
        y=torch.randn(30),
        offset=torch.randn(30),
        columns=torch.tensor([[0, 2], [4, 1]]),
        center=torch.randn(2, 2),
        mult=torch.rand(2, 2),
        target_shift=torch.tensor([0.5, -1.0]),
        target_scale=torch.tensor([2.0, 3.0]),
        train_idx=[],
        val_idx=[],
    )
    idx = torch.randint(30, (2, 7), generator=g)
    on_the_fly = data.inputs(idx), data.targets(idx)
    data.materialize(budget_bytes=1 << 20)
    assert data.Xk is not None
    assert torch.allclose(data.inputs(idx), on_the_fly[0])
    assert torch.allclose(data.targets(idx), on_the_fly[1])
    k1 = (data.X[idx[1]][:, [4, 1]] - data.center[1]) * data.mult[1]
    assert torch.allclose(data.inputs(idx)[1], k1)  # fold 1 uses fold 1's map


def test_each_fold_trains_only_on_its_own_training_rows(covid, covid_dir, monkeypatch):
    train = covid.load_train(covid_dir)
    seen: list[torch.Tensor] = []
    original = DeviceFolds.inputs

    def spy(self, idx):
        if torch.is_grad_enabled():  # training steps (validation runs under no_grad)
            seen.append(idx.clone())
        return original(self, idx)

    monkeypatch.setattr(DeviceFolds, "inputs", spy)
    cfg = small_config(covid, "train.engine=fast", "train.epochs=2")
    cv = CrossValidator(covid, cfg, progress=False).fit(train)
    rows = torch.cat(seen, dim=1)  # (K, all rows drawn)
    for k, (tr, va) in enumerate(cv.splits_):
        drawn = set(rows[k].tolist())
        assert drawn <= set(tr.tolist())
        assert not drawn & set(va.tolist())
        assert len(drawn) > 0.9 * len(tr)  # and it does see (nearly) all of them each epoch


class _Module:
    """What FoldEarlyStopping reads from the module: the stack and the epoch's fold scores."""

    def __init__(self, K):
        self.stacked = stack_models(
            "mlp", [build_model(model_config(hidden=[2]), 2, 1) for _ in range(K)]
        )
        self.fold_scores = None


class _Trainer:
    sanity_checking = False

    def __init__(self):
        self.current_epoch, self.should_stop = 0, False


@pytest.mark.parametrize("name", ["covid", "demo"])
def test_the_stacked_predictor_gives_the_fold_models_mean(name, request):
    """A GPU predicts test rows with the stack in one pass (each fold's scaling applied on the
    device); a CPU with the unstacked fold models. Both give the folds' mean prediction."""
    competition, folder = request.getfixturevalue(name), request.getfixturevalue(f"{name}_dir")
    cfg = small_config(competition, "train.epochs=2", "train.engine=fast")
    cv = CrossValidator(competition, cfg, progress=False).fit(competition.load_train(folder))
    X = competition.load_test(folder).X[:300]
    folds, _ = cv.predict(X)  # on a CPU: each fold model on its own preprocessing
    np.testing.assert_allclose(cv.predictor_.predict(X, chunk=128), folds, rtol=1e-4, atol=1e-5)


def test_each_fold_stops_and_keeps_its_own_best_epoch():
    module, trainer = _Module(2), _Trainer()
    stopper = FoldEarlyStopping(2, patience=2, min_delta=0.0, mode="min")
    scores = [(1.0, 1.0), (0.5, 0.9), (0.6, 0.8), (0.7, 0.7), (0.8, 0.6), (0.9, 0.65), (1.0, 0.7)]
    weights_at = []
    for epoch, pair in enumerate(scores):
        trainer.current_epoch = epoch
        with torch.no_grad():
            for p in module.stacked.parameters():
                p.fill_(float(epoch))  # weights remember the epoch they come from
        weights_at.append(epoch)
        module.fold_scores = torch.tensor(pair)
        stopper.on_validation_end(trainer, module)
        if trainer.should_stop:
            break
    assert stopper.best_epoch == [1, 4]
    assert stopper.stopped_at == [4, 7]  # fold 0 after 2 epochs without improvement
    assert trainer.should_stop and trainer.current_epoch == 6
    head = stopper.best_state["stages.1.weight"]  # the head
    assert head[0].eq(1.0).all() and head[1].eq(4.0).all()  # each fold's own best epoch


def test_fast_and_plain_engines_agree_within_noise(covid, covid_dir, demo, demo_dir):
    train = covid.load_train(covid_dir)
    for competition, data, tolerance in (
        (covid, train, 0.02),
        (demo, demo.load_train(demo_dir), 0.02),
    ):
        scores = {}
        for engine in ("plain", "fast"):
            cfg = small_config(
                competition, f"train.engine={engine}", "train.epochs=8", "train.patience=3"
            )
            scores[engine] = (
                CrossValidator(competition, cfg, progress=False).fit(data).fold_scores_
            )
        assert abs(np.mean(scores["plain"]) - np.mean(scores["fast"])) < tolerance, scores


def test_fast_and_plain_engines_agree_on_the_member_ensemble(demo, demo_dir):
    data = demo.load_train(demo_dir)
    scores = {}
    for engine in ("plain", "fast"):
        cfg = small_config(
            demo,
            f"train.engine={engine}",
            "train.epochs=4",
            "model.name=tabm",
            "model.k=4",
            "model.hidden=[32]",
        )
        cv = CrossValidator(demo, cfg, progress=False).fit(data)
        scores[engine] = cv.fold_scores_
        assert cv.engine_ == engine
    assert abs(np.mean(scores["plain"]) - np.mean(scores["fast"])) < 0.02, scores


def test_training_without_memory_poisoning_gives_bit_identical_results(
    covid, covid_dir, monkeypatch
):
    """The fast engine turns off PyTorch's NaN fill of new tensors while it trains: the
    out-of-fold predictions must be exactly those of a run with the fill on, and the global
    flag must be back as it was afterwards, also when training fails."""
    import contextlib

    from pipeline.engine import fast

    train = covid.load_train(covid_dir)
    cfg = small_config(covid, "train.engine=fast", "train.epochs=3")
    flags = torch.utils.deterministic
    assert flags.fill_uninitialized_memory  # PyTorch's default
    fast_oof = CrossValidator(covid, cfg, progress=False).fit(train).oof_
    assert flags.fill_uninitialized_memory
    with monkeypatch.context() as m:
        m.setattr(fast, "no_memory_poisoning", contextlib.nullcontext)
        poisoned_oof = CrossValidator(covid, cfg, progress=False).fit(train).oof_
    np.testing.assert_array_equal(fast_oof, poisoned_oof)

    def fail(*args, **kwargs):
        assert not flags.fill_uninitialized_memory
        raise RuntimeError("stop")

    monkeypatch.setattr(fast.StackedLitModel, "training_step", fail)
    with pytest.raises(RuntimeError, match="stop"):
        CrossValidator(covid, cfg, progress=False).fit(train)
    assert flags.fill_uninitialized_memory


def test_initialisation_is_the_plain_paths(covid, covid_dir, monkeypatch):
    """Fold k's model starts from exactly the weights the plain path gives fold k."""
    import pipeline.engine.choice as choice

    captured = {}

    def grab(name, models):
        captured["models"] = [{k: v.clone() for k, v in m.state_dict().items()} for m in models]
        raise RuntimeError("stop here")

    monkeypatch.setattr(choice, "stack_models", grab)
    cfg = small_config(covid, "train.engine=fast")
    with pytest.raises(RuntimeError, match="stop here"):
        CrossValidator(covid, cfg, progress=False).fit(covid.load_train(covid_dir))
    import lightning as L

    for k, state in enumerate(captured["models"]):
        L.seed_everything(cfg.seed + k, verbose=False)
        plain = build_model(cfg.model, 14, 1)  # preprocessing draws no random numbers
        for key, value in plain.state_dict().items():
            assert torch.equal(value, state[key]), (k, key)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model.norm=batch"],
        ["model.norm=layer"],
        ["model.norm=group", "model.norm_groups=4"],
        ["model.dropout=0.2", "model.input_dropout=0.1"],
        ["model.activation=gelu"],
        ["model.init=he_normal"],
        ["model.init=orthogonal"],
        ["optim.name=sgd", "optim.momentum=0.9", "optim.nesterov=true", "optim.lr=0.01"],
        ["optim.name=rmsprop"],
        ["optim.name=adadelta", "optim.lr=1.0"],
        ["optim.name=adagrad"],
        ["optim.name=nadam"],
        ["optim.name=radam"],
        ["optim.weight_decay=0.01", "optim.l1=1e-4"],
        ["sched.name=cosine", "sched.warmup=1"],
        ["sched.name=onecycle"],
        ["sched.name=step", "sched.milestones=[1]", "sched.interval=step"],
        ["train.grad_clip=0.5"],
        ["train.grad_clip=0.01", "train.grad_clip_algorithm=value"],
        ["train.max_norm=1.0"],
        ["train.precision=bf16-mixed"],
        ["predict.mc_samples=3"],
        ["model.name=conv", "model.channels=8", "model.hidden=[16]"],
        ["model.name=tabm", "model.k=2", "model.hidden=[8]", "train.max_norm=1.0"],
        ["model.name=tabm", "model.k=2", "model.hidden=[8]", "model.norm=batch"],
        ["model.name=tabm", "model.k=2", "model.hidden=[8]", "predict.mc_samples=3"],
        ["train.label_smoothing=0.2"],
    ],
)
def test_every_toolbox_switch_runs_on_the_fast_engine(overrides, demo, demo_dir, request):
    competition, data = demo, demo.load_train(demo_dir)
    if overrides[0].startswith("model.name=conv"):
        competition, data = request.getfixturevalue("small_timit")
    cfg = small_config(
        competition, "train.engine=fast", "train.epochs=2", "cv.folds=2", *overrides
    )
    cv = CrossValidator(competition, cfg, progress=False).fit(data)
    assert np.isfinite(cv.fold_scores_).all() and len(cv.folds_) == 2
    if "train.max_norm=1.0" in overrides:
        for fold in cv.folds_:
            for p in fold.module.model.parameters():
                if p.ndim >= 2:
                    assert p.norm(dim=1).max() <= 1.0 + 1e-4
    if "predict.mc_samples=3" in overrides:
        assert np.isfinite(cv.oof_spread_).all()


def test_per_fold_gradient_clipping_bounds_each_folds_norm():
    from pipeline.config import build_config

    cfg = build_config(overrides=["train.grad_clip=1.0"])
    stacked = stack_models("mlp", [build_model(model_config(hidden=[4]), 3, 1) for _ in range(3)])
    module = StackedLitModel(stacked, None, None, cfg, data=None, steps=1)
    for p in stacked.parameters():
        p.grad = torch.ones_like(p) * torch.tensor([0.01, 10.0, 100.0]).view(
            -1, *[1] * (p.dim() - 1)
        )
    module.on_before_optimizer_step(None)
    norms = torch.sqrt(sum(p.grad.pow(2).flatten(1).sum(1) for p in stacked.parameters()))
    assert norms[0] < 0.5  # small gradients untouched
    assert torch.allclose(norms[1:], torch.ones(2), atol=1e-4)  # large ones clipped per fold


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fast_engine_on_the_gpu_matches_the_cpu(covid, covid_dir):
    train = covid.load_train(covid_dir)
    scores = {}
    for accelerator in ("cpu", "gpu"):
        cfg = small_config(
            covid, "train.engine=fast", "train.epochs=6", f"train.accelerator={accelerator}"
        )
        scores[accelerator] = np.mean(
            CrossValidator(covid, cfg, progress=False).fit(train).fold_scores_
        )
    assert abs(scores["cpu"] - scores["gpu"]) < 0.02


def _folds_data(n=40):
    g = torch.Generator().manual_seed(1)
    return DeviceFolds(
        X=torch.randn(n, 5, generator=g),
        y=torch.randn(n),
        offset=torch.zeros(n),
        columns=torch.tensor([[0, 2], [4, 1]]),
        center=torch.randn(2, 2),
        mult=torch.rand(2, 2),
        target_shift=torch.zeros(2),
        target_scale=torch.ones(2),
        train_idx=[torch.arange(20), torch.arange(20, 40)],
        val_idx=[],
    )


@pytest.mark.parametrize(
    ("free_bytes", "kind", "note"),
    [(10_000, "device", None), (1_000, "bf16", "bfloat16"), (100, "host", "host memory")],
)
def test_rows_are_placed_within_the_gpus_free_memory(free_bytes, kind, note, monkeypatch):
    """float32 when the rows fit, bfloat16 when half of them fit, else host memory."""
    data = _folds_data()  # 40 x 5 float32 rows = 800 bytes; 60% of free memory may be used
    monkeypatch.setattr(DeviceFolds, "to", lambda self, device, rows="device": rows)
    placed, got = data.place(torch.device("cuda"), free_bytes=free_bytes)
    assert placed == kind
    assert (got is None) if note is None else (note in got)


def test_bfloat16_rows_give_float32_inputs_close_to_the_float32_ones():
    data = _folds_data()
    idx = torch.tensor([[0, 3, 5], [21, 30, 39]])
    exact = data.inputs(idx)
    data.X = data.X.to(torch.bfloat16)
    approx = data.inputs(idx)
    assert approx.dtype == torch.float32
    assert torch.allclose(approx, exact, rtol=2e-2, atol=2e-2)


def test_a_compiled_training_step_learns_what_the_eager_one_does(covid, covid_dir, monkeypatch):
    """train.compile really compiles the step (torch.compile is called and its function runs)
    and the fold scores match the eager step's."""
    train = covid.load_train(covid_dir)
    compiled_calls = []
    real_compile = torch.compile

    def spy(fn, **kwargs):
        compiled = real_compile(fn, **kwargs)

        def run(*args):
            compiled_calls.append(kwargs["mode"])
            return compiled(*args)

        return run

    monkeypatch.setattr(torch, "compile", spy)
    scores = {}
    for mode in ("none", "default"):
        cfg = small_config(
            covid, "train.engine=fast", "train.epochs=3", "cv.folds=2", f"train.compile={mode}"
        )
        scores[mode] = CrossValidator(covid, cfg, progress=False).fit(train).fold_scores_
    assert compiled_calls and set(compiled_calls) == {"default"}
    np.testing.assert_allclose(scores["default"], scores["none"], rtol=1e-3)


def test_compile_auto_captures_long_runs_of_row_models_on_cuda_only(covid):
    from pipeline.engine.lit_stacked import AUTO_COMPILE_STEPS

    def mode(device: str, steps: int, windows=None, compile="auto") -> str:
        cfg = small_config(covid, f"train.compile={compile}", "train.epochs=10")
        module = StackedLitModel(None, None, None, cfg, data=None, steps=steps, windows=windows)
        module._device = torch.device(device, 0) if device == "cuda" else torch.device(device)
        return module.compile_mode()

    many = AUTO_COMPILE_STEPS // 10
    assert mode("cuda", many) == "reduce-overhead"
    assert mode("cuda", many - 1) == "none"  # too short to repay the compile
    assert mode("cpu", many) == "none"
    assert mode("cuda", many, windows=object()) == "none"  # recurrent layers
    assert mode("cpu", 1, compile="default") == "default"  # asked for: as asked


def test_a_step_that_fails_to_compile_trains_uncompiled_under_auto(covid, covid_dir, monkeypatch):
    def broken(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no compiler here")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(StackedLitModel, "compile_mode", lambda self: "default")
    cfg = small_config(covid, "train.engine=fast", "train.epochs=2", "cv.folds=2")
    cv = CrossValidator(covid, cfg, progress=False).fit(covid.load_train(covid_dir))
    assert np.isfinite(cv.fold_scores_).all()
    assert "train.compile=auto: compiling failed (RuntimeError)" in cv.engine_note_
    asked = small_config(covid, "train.engine=fast", "train.epochs=2", "train.compile=default")
    with pytest.raises(ConfigError, match="train.compile=default failed to compile"):
        CrossValidator(covid, asked, progress=False).fit(covid.load_train(covid_dir))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.engine=plain", "train.compile=default"], "train.compile applies to the fast"),
        (
            ["sched.name=plateau", "train.compile=default"],
            "sched.name=plateau.*train.compile needs the fast engine: set train.compile=none",
        ),
        (
            ["train.compile=fast"],
            "train.compile must be one of: auto, none, default, reduce-overhead",
        ),
    ],
)
def test_compile_is_refused_where_it_cannot_apply(overrides, message, demo, demo_dir):
    with pytest.raises(ConfigError, match=message):
        cfg = small_config(demo, *overrides)
        CrossValidator(demo, cfg, progress=False).fit(demo.load_train(demo_dir))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_step_matches_the_eager_step_on_the_gpu(covid, covid_dir):
    train = covid.load_train(covid_dir)
    scores = {}
    for mode in ("none", "reduce-overhead"):
        cfg = small_config(
            covid,
            "train.engine=fast",
            "train.epochs=4",
            "train.accelerator=gpu",
            f"train.compile={mode}",
        )
        scores[mode] = np.mean(CrossValidator(covid, cfg, progress=False).fit(train).fold_scores_)
    assert abs(scores["none"] - scores["reduce-overhead"]) < 0.02
