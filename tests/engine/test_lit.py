"""Training-loop switches, observed inside a real Lightning fit."""

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.config import build_config
from pipeline.engine.batches import TensorBatches
from pipeline.engine.lit import LitModel
from pipeline.engine.trainer import quiet_lightning
from pipeline.model.metrics import Task, get_metric
from pipeline.model.models import build_model


def _data(n=96, features=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = x @ torch.arange(1.0, features + 1) + 0.1 * torch.randn(n, generator=g)
    return x, y, torch.zeros(n)


class Recording(LitModel):
    """Records the gradients each optimizer step used (read right after the step)."""

    def configure_optimizers(self):
        conf = super().configure_optimizers()
        opt = conf["optimizer"] if isinstance(conf, dict) else conf
        self.seen_grads = []
        opt.register_step_post_hook(
            lambda o, *_: self.seen_grads.append(
                [p.grad.detach().clone() for g in o.param_groups for p in g["params"]]
            )
        )
        return conf


def fit(overrides, epochs=3, module_cls=Recording, logger=None, data=None, callbacks=()):
    quiet_lightning()
    cfg = build_config(overrides=[f"train.epochs={epochs}", *overrides])
    L.seed_everything(0, verbose=False)
    x, y, off = data or _data()
    model = build_model(cfg.model, x.shape[1], 1)
    batches = TensorBatches(x, y, off, batch_size=cfg.train.batch_size, shuffle=True)
    module = module_cls(model, Task("regression"), get_metric("rmse"), cfg, len(batches))
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=logger or False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        gradient_clip_val=cfg.train.grad_clip or None,
        gradient_clip_algorithm=cfg.train.grad_clip_algorithm,
        precision=cfg.train.precision,
        callbacks=list(callbacks),
    )
    trainer.fit(module, batches, TensorBatches(x, y, off, batch_size=1000))
    return module, trainer


def _total_norm(grads):
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def test_clipping_by_norm_bounds_the_gradient_the_optimizer_sees():
    free, _ = fit(["optim.lr=1e-4", "train.batch_size=32"])
    assert max(_total_norm(g) for g in free.seen_grads) > 1.0  # large without clipping
    clipped, _ = fit(["optim.lr=1e-4", "train.batch_size=32", "train.grad_clip=0.5"])
    norms = [_total_norm(g).item() for g in clipped.seen_grads]
    assert max(norms) <= 0.5 + 1e-4
    assert min(norms) == pytest.approx(0.5, rel=1e-3)  # rescaled, not zeroed


def test_clipping_by_value_bounds_every_gradient_entry():
    module, _ = fit(["optim.lr=1e-4", "train.grad_clip=0.01", "train.grad_clip_algorithm=value"])
    largest = max(max(g.abs().max().item() for g in step) for step in module.seen_grads)
    assert largest == pytest.approx(0.01)


def test_max_norm_holds_after_every_step():
    class Check(Recording):
        def on_train_batch_end(self, outputs, batch, batch_idx):
            for p in self.model.parameters():
                if p.ndim >= 2:
                    assert p.norm(dim=1).max().item() <= 0.3 + 1e-5

    module, _ = fit(["optim.lr=0.1", "train.max_norm=0.3"], module_cls=Check)
    unconstrained, _ = fit(["optim.lr=0.1"])
    big = max(p.norm(dim=1).max().item() for p in unconstrained.model.parameters() if p.ndim >= 2)
    assert big > 0.3  # the bound is doing something


def test_l1_adds_lambda_times_sum_abs_weights_to_the_loss():
    cfg = build_config(overrides=["optim.l1=0.01"])
    x, y, off = _data()
    model = build_model(cfg.model, x.shape[1], 1)
    module = LitModel(model, Task("regression"), get_metric("rmse"), cfg, 1)
    module.log = lambda *a, **k: None
    loss = module.training_step((x, y, off), 0)
    data_loss = torch.nn.functional.mse_loss(model(x).squeeze(-1), y)
    weights = sum(p.abs().sum() for p in model.parameters() if p.ndim >= 2)
    assert loss.item() == pytest.approx((data_loss + 0.01 * weights).item(), rel=1e-6)


def test_schedules_step_once_per_epoch_inside_lightning(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    logger = CSVLogger(tmp_path, name="s", version="")
    fit(
        ["sched.name=exponential", "sched.gamma=0.5", "sched.decay_steps=1", "optim.lr=0.08"],
        epochs=4,
        logger=logger,
    )
    lrs = pd.read_csv(tmp_path / "s" / "metrics.csv")["lr"].dropna().tolist()
    assert lrs == pytest.approx([0.08, 0.04, 0.02, 0.01])


def test_plateau_reads_the_validation_metric_inside_lightning(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    # lr so small that the validation metric cannot improve by min_delta: plateau must cut it
    logger = CSVLogger(tmp_path, name="p", version="")
    fit(
        [
            "sched.name=plateau",
            "sched.patience=1",
            "sched.gamma=0.1",
            "optim.lr=1e-6",
            "optim.name=sgd",
        ],
        epochs=6,
        logger=logger,
    )
    lrs = pd.read_csv(tmp_path / "p" / "metrics.csv")["lr"].dropna().tolist()
    assert lrs[:3] == pytest.approx([1e-6] * 3, rel=1e-6)  # epochs 1-2 set the best, 3 stalls
    assert lrs[3] == pytest.approx(1e-7, rel=1e-6)  # one stalled epoch past patience: cut
    assert lrs[-1] < 1e-7


def test_early_stopping_stops_after_patience():
    from lightning.pytorch.callbacks import EarlyStopping

    stopper = EarlyStopping("val/rmse", patience=2, mode="min")
    _, trainer = fit(["optim.lr=1e-12", "optim.name=sgd"], epochs=50, callbacks=[stopper])
    assert trainer.current_epoch <= 4  # no improvement: stops after 1 + patience epochs


def test_bf16_mixed_precision_trains_on_cpu():
    module, _ = fit(["train.precision=bf16-mixed", "optim.lr=0.01"], epochs=2)
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_mc_dropout_passes_differ_while_eval_passes_do_not():
    cfg = build_config(overrides=["model.dropout=0.5", "model.hidden=[32]"])
    x, _, off = _data()
    module = LitModel(build_model(cfg.model, 5, 1), Task("regression"), get_metric("rmse"), cfg, 1)
    a, none_a = module.predict_array(x, off)
    b, none_b = module.predict_array(x, off)
    assert np.array_equal(a, b) and none_a is None and none_b is None
    mean, spread = module.predict_array(x, off, mc_samples=20, seed=1)
    assert spread.shape == (len(x),) and (spread > 0).all()
    assert not np.allclose(mean, a)
    again, _ = module.predict_array(x, off, mc_samples=20, seed=1)
    assert np.array_equal(mean, again)  # seeded: repeatable
    # the mean is the average of the stochastic passes
    torch.manual_seed(1)
    module.model.train()
    passes = torch.stack([module.model(x).squeeze(-1).detach() for _ in range(20)])
    np.testing.assert_allclose(mean, passes.mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_mc_dropout_keeps_batch_norm_in_eval_mode():
    cfg = build_config(overrides=["model.dropout=0.2", "model.norm=batch"])
    module = LitModel(build_model(cfg.model, 5, 1), Task("regression"), get_metric("rmse"), cfg, 1)
    x, _, off = _data()
    bn = next(m for m in module.modules() if isinstance(m, torch.nn.BatchNorm1d))
    before = bn.running_mean.clone()
    module.predict_array(x, off, mc_samples=5)
    assert torch.equal(bn.running_mean, before)  # running statistics untouched


def test_the_epoch_loss_is_right_when_steps_reuse_their_output_memory():
    """A step captured in a CUDA graph (train.compile=reduce-overhead) writes each step's loss
    into the same tensor; the epoch's mean must still be the mean of the steps' losses."""
    from pipeline.engine.lit import EpochMean

    out, mean = torch.zeros(()), EpochMean()
    for value in (1.0, 2.0, 3.0):
        out.fill_(value)  # the replayed graph's output buffer
        mean.add(out)
    assert float(mean.pop()) == 2.0
    assert float(mean.pop()) == 0.0  # a new epoch starts empty
