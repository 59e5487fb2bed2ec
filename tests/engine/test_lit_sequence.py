"""Sequence models over windows of consecutive rows (model.name=seq): window cutting inside a
fold's training runs, overlap averaging at prediction, the module's masked loss, MC dropout,
config rules and a run through the CLI."""

import json

import numpy as np
import pytest
import torch

from pipeline.config import build_config, model_config
from pipeline.engine import plain
from pipeline.engine.batches import StackedWindowBatches
from pipeline.engine.cv import CrossValidator
from pipeline.engine.lit_sequence import SequenceModule
from pipeline.engine.splits import blocked_splits
from pipeline.engine.windows import WindowBatches, average_windows, cut_windows, row_runs
from pipeline.errors import ConfigError
from pipeline.model.metrics import get_metric, stop_metric
from pipeline.model.models import build_model, stack_models
from pipeline.model.sequence import SequenceRNN
from tests.conftest import small_config

SEQ = [
    "model.name=seq",
    "model.channels=16",
    "model.hidden=[16]",
    "model.window=16",
    "model.stride=8",
    "train.epochs=1",
    "train.batch_size=64",
]


def test_runs_split_at_every_break_in_the_row_numbers():
    assert row_runs(np.array([3, 4, 5, 9, 10, 12])) == [(0, 3), (3, 5), (5, 6)]
    assert row_runs(np.array([], dtype=int)) == []


def test_windows_cover_every_row_and_stay_inside_their_run():
    runs = [(0, 37), (37, 40), (40, 56)]
    windows, mask = cut_windows(runs, window=8, stride=3)
    assert windows.shape[1] == 8 and mask.shape == windows.shape
    covered = np.zeros(56, dtype=int)
    np.add.at(covered, windows[mask], 1)
    assert (covered >= 1).all()
    for w in windows:
        run = next(r for r in runs if r[0] <= w[0] < r[1])
        assert run[0] <= w.min() and w.max() < run[1]  # never across two runs
    short = windows[(windows >= 37) & (windows < 40)].reshape(-1, 8)
    np.testing.assert_array_equal(short, [[37, 38, 39, 39, 39, 39, 39, 39]])  # padded run
    np.testing.assert_array_equal(
        mask[np.all((windows >= 37) & (windows < 40), axis=1)], [[True] * 3 + [False] * 5]
    )
    shifted, _ = cut_windows([(0, 37)], window=8, stride=3, phases=np.array([2]))
    np.testing.assert_array_equal(shifted[:, 0], np.arange(2, 30, 3))


def test_training_windows_never_hold_a_validation_or_gap_row():
    n, gap = 1000, 20
    for tr, va in blocked_splits(n, folds=5, gap=gap):
        batches = WindowBatches(
            torch.arange(len(tr)).float()[:, None],
            torch.zeros(len(tr)),
            torch.zeros(len(tr)),
            row_runs(tr),
            window=64,
            stride=32,
            per_batch=4,
            seed=0,
        )
        for _ in range(3):  # new phases and order every epoch
            for x, _, _, mask, _ in batches:
                rows = tr[x[..., 0].long().numpy()]  # positions in tr -> row numbers
                assert not np.isin(rows, va).any()
                near = np.abs(rows[..., None] - va[None, None, :]).min(-1)
                assert (near > gap).all()
                steps = np.diff(rows, axis=1)
                assert np.all((steps == 1) | ((steps == 0) & ~mask[:, 1:].numpy()))


def test_stacked_windows_give_each_fold_only_its_own_training_rows():
    """The fast engine's window batches for K folds at once: fold k's windows hold fold k's
    training rows only (no validation or gap row of its own), consecutive rows where unmasked,
    the same number of steps every epoch."""
    n, gap, W = 1000, 20, 64
    splits = blocked_splits(n, folds=5, gap=gap)
    train_idx = [np.asarray(tr) for tr, _ in splits]
    batches = StackedWindowBatches(
        train_idx, [row_runs(tr) for tr in train_idx], W, 32, per_batch=4, seed=0
    )
    shapes = set()
    for _ in range(3):  # new phases and order every epoch
        ((pos, mask),) = list(batches)
        shapes.add(tuple(pos.shape))
        assert pos.shape[:2] == (batches.steps, len(splits)) and pos.shape[-1] == W
        for k, (tr, va) in enumerate(splits):
            rows, keep = pos[:, k].reshape(-1, W).numpy(), mask[:, k].reshape(-1, W).numpy()
            assert np.isin(rows[keep], tr).all() and not np.isin(rows[keep], va).any()
            near = np.abs(rows[keep][:, None] - np.asarray(va)[None, :]).min(-1)
            assert (near > gap).all()
            steps = np.diff(rows, axis=1)
            assert np.all((steps == 1) | ~keep[:, 1:])
            assert keep.any(axis=1).all()  # no window of padding only
    assert len(shapes) == 1


def test_non_overlapping_windows_reproduce_the_model_on_each_window():
    torch.manual_seed(0)
    model = build_model(model_config("seq", hidden=[8], channels=8, window=10, stride=10), 5, 3)
    model.eval()
    x = torch.randn(30, 5)
    windows, mask = cut_windows([(0, 30)], 10, 10)
    with torch.no_grad():
        out = model(x[torch.from_numpy(windows)])
        averaged = average_windows(out, torch.from_numpy(windows), torch.from_numpy(mask), 30)
        direct = torch.cat([model(x[i : i + 10]) for i in (0, 10, 20)])
    torch.testing.assert_close(averaged, direct)
    # overlapping windows: a row held by one window keeps that window's output, the others
    # get the mean of the two windows that hold them
    windows, mask = cut_windows([(0, 30)], 10, 5)
    with torch.no_grad():
        out = model(x[torch.from_numpy(windows)])
        averaged = average_windows(out, torch.from_numpy(windows), torch.from_numpy(mask), 30)
        first, second = model(x[0:10]), model(x[5:15])
    torch.testing.assert_close(averaged[:5], first[:5])
    torch.testing.assert_close(averaged[5:10], (first[5:] + second[:5]) / 2)


def _module(cfg, task, n_val_rows=0):
    torch.manual_seed(0)
    model = build_model(cfg.model, 429, task.n_outputs)
    stop = stop_metric(get_metric("accuracy"), task, "auto")
    return SequenceModule(model, task, stop, cfg, steps_per_epoch=1, n_val_rows=n_val_rows)


def test_prediction_averages_windows_and_mc_dropout_is_seeded(small_timit):
    competition, _ = small_timit
    cfg = small_config(competition, *SEQ, "model.dropout=0.3", "model.frame_dropout=0.2")
    module = _module(cfg, competition.task)
    x = torch.randn(100, 429)
    pred, spread = module.predict_array(x, torch.zeros(100))
    assert pred.shape == (100, 39) and spread is None
    np.testing.assert_allclose(pred.sum(1), 1, atol=1e-5)
    windows, mask = cut_windows([(0, 100)], 16, 8)
    with torch.no_grad():
        module.model.eval()
        probs = module.model(x[torch.from_numpy(windows)]).softmax(-1)
    expected = average_windows(probs, torch.from_numpy(windows), torch.from_numpy(mask), 100)
    np.testing.assert_allclose(pred, expected.numpy(), atol=1e-6)
    # runs are windowed separately: rows 0..49 and 50..99 never share a window
    split, _ = module.predict_array(x, torch.zeros(100), runs=[(0, 50), (50, 100)])
    alone, _ = module.predict_array(x[50:], torch.zeros(50))
    np.testing.assert_allclose(split[50:], alone, atol=1e-6)
    a = module.predict_array(x, torch.zeros(100), mc_samples=4, seed=1)
    b = module.predict_array(x, torch.zeros(100), mc_samples=4, seed=1)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1].shape == (100,) and a[1].max() > 0  # dropout, including between GRU layers
    assert not np.allclose(a[0], pred)


def test_padded_positions_carry_no_loss(small_timit):
    competition, _ = small_timit
    cfg = small_config(competition, *SEQ)
    module = _module(cfg, competition.task)
    module.model.eval()  # no dropout noise between the two losses
    x = torch.randn(2, 16, 429)
    y = torch.randint(0, 39, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 10:] = False
    _, loss = module._masked_loss(x, y, torch.zeros(2, 16), mask)
    y2 = y.clone()
    y2[1, 10:] = (y[1, 10:] + 1) % 39  # other labels where the mask is off: same loss
    _, loss2 = module._masked_loss(x, y2, torch.zeros(2, 16), mask)
    torch.testing.assert_close(loss, loss2)


def test_cross_validation_trains_on_windows_inside_the_training_runs(small_timit, monkeypatch):
    competition, train = small_timit
    seen = []

    class Spy(WindowBatches):
        def __iter__(self):
            for batch in super().__iter__():
                seen.append((self.shuffle, self.runs, batch[4].numpy(), batch[3].numpy()))
                yield batch

    monkeypatch.setattr(plain, "WindowBatches", Spy)
    cfg = small_config(competition, *SEQ, "cv.folds=3", "model.cell=lstm")
    cv = CrossValidator(competition, cfg, progress=False).fit(train)
    assert cv.engine_ == "plain" and "model.name=seq" in cv.engine_note_
    assert np.isfinite(cv.oof_).all() and 0.0 < cv.oof_score_ <= 1.0
    np.testing.assert_allclose(cv.oof_.sum(1), 1, atol=1e-4)
    train_runs = [row_runs(tr) for tr, _ in cv.splits_]
    val_runs = [row_runs(va) for _, va in cv.splits_]
    assert any(s for s, *_ in seen) and any(not s for s, *_ in seen)
    for shuffle, runs, windows, mask in seen:
        assert runs in (train_runs if shuffle else val_runs)
        fold = (train_runs if shuffle else val_runs).index(runs)
        tr, va = cv.splits_[fold]
        rows = (tr if shuffle else va)[windows[mask]]
        assert not np.isin(rows, va if shuffle else tr).any()
    pred, _ = cv.predict(train.X[:200])
    assert pred.shape == (200, 39)


def test_sequence_models_stack_on_the_fast_engine_where_asked(small_timit):
    """On a CPU train.engine=auto trains one fold at a time (stacked recurrent layers do K times
    the arithmetic) and says why; train.engine=fast stacks the folds' models, as a GPU does by
    default, with the plain engine's windows: every fold scored, predictions for every row."""
    competition, train = small_timit
    auto = CrossValidator(competition, small_config(competition, *SEQ), progress=False)
    auto.fit(train)
    assert auto.engine_ == "plain" and "model.name=seq on the CPU" in auto.engine_note_
    cfg = small_config(competition, *SEQ, "train.engine=fast")
    fast = CrossValidator(competition, cfg, progress=False).fit(train)
    assert fast.engine_ == "fast"
    assert np.isfinite(fast.oof_).all() and len(fast.fold_scores_) == cfg.cv.folds
    assert abs(fast.oof_score_ - auto.oof_score_) < 0.1  # the same model, other batches
    rows = np.asarray(train.X[:200])
    pred = fast.predictor_.predict(rows)  # what a GPU predicts with, in one pass
    np.testing.assert_allclose(pred.sum(axis=1), 1.0, rtol=1e-5)
    folds = [
        f.module.predict_array(torch.from_numpy(f.preprocessor.transform(rows)), torch.zeros(200))[
            0
        ]
        for f in fast.folds_
    ]
    np.testing.assert_allclose(pred, np.mean(folds, axis=0), atol=1e-4)  # stacked = unstacked


def test_a_stacked_sequence_model_computes_what_its_folds_do():
    torch.manual_seed(0)
    for cell in ("gru", "lstm"):
        cfg = model_config("seq", hidden=[8], channels=6, layers=2, cell=cell, norm="batch",
                           dropout=0.1, frame_dropout=0.2, window=10, stride=5)  # fmt: skip
        models = [build_model(cfg, 5, 4) for _ in range(3)]
        stacked = stack_models("seq", models)
        x = torch.randn(3, 7, 10, 5)
        stacked.eval()
        for m in models:
            m.eval()
        expected = torch.stack([m(x[k]) for k, m in enumerate(models)])
        torch.testing.assert_close(stacked(x), expected, atol=1e-5, rtol=1e-5)
        for back, model in zip(stacked.unstack(), models, strict=True):
            for key, value in model.state_dict().items():
                torch.testing.assert_close(back.state_dict()[key], value)
        stacked.train()
        stacked(x)[1].sum().backward()  # fold 2's loss reaches fold 2's parameters only
        for p in stacked.parameters():
            assert p.grad[0].abs().max() == 0 and p.grad[2].abs().max() == 0


def test_window_keys_follow_the_model():
    with pytest.raises(ConfigError, match=r"model.window applies to the sequence models \(seq\)"):
        build_config(overrides=["model.window=32"])
    with pytest.raises(ConfigError, match="model.kernel applies to the frame models"):
        build_config(overrides=["model.name=seq", "model.kernel=5"])
    with pytest.raises(ConfigError, match=r"model.stride must be an int in \[1, model.window=8\]"):
        build_config(overrides=["model.name=seq", "model.window=8", "model.stride=9"])
    with pytest.raises(ConfigError, match="model.cell must be one of: gru, lstm"):
        build_config(overrides=["model.name=seq", "model.cell=rnn"])
    cfg = build_config(overrides=["model.name=seq", "model.layers=3", "model.cell=lstm"])
    model = build_model(cfg.model, 12, 4)
    assert isinstance(model, SequenceRNN) and len(model.rnns) == 3
    assert isinstance(model.rnns[0], torch.nn.LSTM)
    assert model(torch.randn(2, 64, 12)).shape == (2, 64, 4)
    assert model(torch.randn(7, 12)).shape == (7, 4)  # rows read as one sequence


def test_a_competition_whose_rows_are_not_ordered_refuses_sequence_models(covid_dir, capsys):
    from pipeline.train import main

    code = main(["covid", "--data-dir", str(covid_dir), "model.name=seq", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "model.name=seq reads windows of consecutive rows" in err and "Traceback" not in err


def test_sequence_models_train_on_one_device(small_timit, capsys):
    from pipeline.run.inputs import check_buildable

    competition, train = small_timit
    cfg = small_config(competition, *SEQ, "train.devices=2", "train.strategy=ddp")
    with pytest.raises(ConfigError, match="model.name=seq trains on one device"):
        check_buildable(competition, cfg, train)


@pytest.mark.slow
def test_train_command_with_a_sequence_model(tmp_path, capsys):
    from competitions.timit.generate import generate
    from pipeline.train import main

    generate(tmp_path / "data", train_rows=3000, test_rows=600, seed=1)
    out = tmp_path / "run"
    args = [
        "timit",
        "--data-dir",
        str(tmp_path / "data"),
        "--out",
        str(out),
        "--quiet",
        *SEQ,
        "train.epochs=2",
        "cv.folds=3",
        "predict.mc_samples=2",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["engine"] == "plain"
    assert 0.05 < metrics["oof_score"] <= 1.0
    sub = (out / "submission.csv").read_text().splitlines()
    assert sub[0] == "Id,Class" and len(sub) == 601


@pytest.mark.slow
def test_tuning_searches_the_window_and_the_recurrent_layers(tmp_path):
    import optuna

    from competitions.timit.generate import generate
    from pipeline.tune import main as tune_main
    from pipeline.tune.storage import default_url

    generate(tmp_path / "data", train_rows=3000, test_rows=300, seed=2)
    space = tmp_path / "space.yaml"
    space.write_text(
        "model.window: [16, 32]\nmodel.channels: [8, 16]\n"
        "model.frame_dropout: {low: 0.0, high: 0.3}\n"
    )
    out = tmp_path / "study"
    argv = [
        "timit",
        "--data-dir",
        tmp_path / "data",
        "--out",
        out,
        "--space",
        space,
        "--trials",
        2,
        "model.name=seq",
        "model.hidden=[16]",
        "model.stride=8",
        "train.epochs=1",
        "train.batch_size=64",
        "cv.folds=2",
        "model.layers=2",
    ]
    assert tune_main([str(a) for a in argv]) == 0
    study = optuna.load_study(study_name="timit", storage=default_url(out))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2 and all(t.params["model.window"] in (16, 32) for t in done)
    best = (out / "best.yaml").read_text()
    assert "window:" in best and "name: seq" in best


def test_naming_another_model_drops_the_keys_only_the_old_one_read(tmp_path):
    from competitions.timit import competition
    from pipeline.run.inputs import resolve_config

    cfg = resolve_config(competition, None, [])
    assert cfg.model.name == "seq" and cfg.model.window == 64 and cfg.features.context == 1
    mlp = resolve_config(competition, None, ["model.name=mlp"])  # no error about model.window
    assert not hasattr(mlp.model, "window") and not hasattr(mlp.model, "channels")
    gru = resolve_config(competition, None, ["model.name=gru"])  # keeps what a GRU reads
    assert gru.model.channels == cfg.model.channels and gru.model.layers == cfg.model.layers
    with pytest.raises(ConfigError, match="model.window applies to the sequence models"):
        resolve_config(competition, None, ["model.name=mlp", "model.window=48", "model.stride=16"])
    conv = tmp_path / "conv.yaml"
    conv.write_text("model:\n  name: conv\n  kernel: 5\n")
    assert resolve_config(competition, conv, []).model.kernel == 5
    assert not hasattr(resolve_config(competition, conv, ["model.name=mlp"]).model, "kernel")


def test_every_epoch_has_the_promised_number_of_steps():
    runs = [(0, 1000), (1020, 1500), (1520, 1530)]
    batches = WindowBatches(
        torch.zeros(1530, 1),
        torch.zeros(1530),
        torch.zeros(1530),
        runs,
        window=64,
        stride=32,
        per_batch=3,
        seed=0,
    )
    for _ in range(20):  # phases differ per epoch; the step count does not
        assert sum(1 for _ in batches) == len(batches)
