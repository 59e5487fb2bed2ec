"""The one target map: numpy and torch give the same numbers, the inverse undoes it, and the
preprocessor, both engines' modules and the device folds all go through it."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.competition.preprocess import Preprocessor
from pipeline.competition.target import from_model, to_model
from pipeline.engine.device import DeviceFolds


def test_numpy_and_torch_agree_and_the_inverse_undoes_the_map():
    rng = np.random.default_rng(0)
    y, offset = rng.normal(5, 3, 50).astype(np.float32), rng.normal(size=50).astype(np.float32)
    z = to_model(y, offset, 1.5, 2.5)
    torch.testing.assert_close(
        torch.from_numpy(z), to_model(torch.from_numpy(y), torch.from_numpy(offset), 1.5, 2.5)
    )
    np.testing.assert_allclose(from_model(z, offset, 1.5, 2.5), y, rtol=1e-6)
    np.testing.assert_allclose(z, (y - offset - 1.5) / 2.5, rtol=1e-6)


def test_the_preprocessor_and_the_device_folds_map_the_same_way():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3)).astype(np.float32)
    y = (X[:, 0] * 4 + 10 + rng.normal(size=40)).astype(np.float32)
    pres = [
        Preprocessor(None, offset_column=0, scale_target=True).fit(X[:20], y[:20]),
        Preprocessor(None, offset_column=0, scale_target=True).fit(X[20:], y[20:]),
    ]
    data = DeviceFolds(
        X=torch.from_numpy(X),
        y=torch.from_numpy(y),
        offset=torch.from_numpy(pres[0].offset(X)),
        columns=torch.tensor([[0, 1, 2], [0, 1, 2]]),
        center=torch.zeros(2, 3),
        mult=torch.ones(2, 3),
        target_shift=torch.tensor([p.shift_ for p in pres]),
        target_scale=torch.tensor([p.scale_ for p in pres]),
        train_idx=[],
        val_idx=[],
    )
    idx = torch.arange(40).expand(2, -1)
    z = data.targets(idx)
    for k, pre in enumerate(pres):
        np.testing.assert_allclose(z[k].numpy(), pre.model_target(y, X), rtol=1e-5, atol=1e-6)
        back = data.target_scale_of(z, idx)[k].numpy()
        np.testing.assert_allclose(back, pre.inverse_target(z[k].numpy(), X), rtol=1e-5)
