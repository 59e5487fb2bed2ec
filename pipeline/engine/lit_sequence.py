"""The per-fold module of sequence models (model.name=seq): batches are windows of
consecutive rows (engine/windows.py), the loss is taken at every real row of a window, and
validation and prediction average each row's outputs over the overlapping windows that hold it
before scoring, exactly as the submission is made.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.engine.choice import run_device
from pipeline.engine.lit import LitModel
from pipeline.engine.windows import average_windows, cut_windows


class SequenceModule(LitModel):
    """LitModel for a model mapping (windows, W, features) -> (windows, W, out)."""

    def __init__(self, *args, n_val_rows: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.n_val_rows = n_val_rows
        # per validation batch: (predictions, windows, mask, labels, summed loss)
        self._val_windows: list[tuple[torch.Tensor, ...]] = []

    def _masked_loss(self, x, y, offset, mask) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        keep = mask.reshape(-1).to(out.device)
        flat = out.reshape(-1, out.shape[-1])[keep]
        target = self.model_target(y.reshape(-1)[keep], offset.reshape(-1)[keep])
        return out, self.task.loss(flat, target)

    def training_step(self, batch, batch_idx):
        x, y, offset, mask, _ = batch
        return self.regularised(self._masked_loss(x, y, offset, mask)[1])

    def validation_step(self, batch, batch_idx):
        x, y, offset, mask, windows = batch
        out, loss = self._masked_loss(x, y, offset, mask)
        pred = self.to_prediction(out, offset).detach()
        self._val_windows.append((pred, windows, mask, y, loss * mask.sum()))

    def on_validation_epoch_end(self) -> None:
        if not self._val_windows:
            return
        preds, windows, masks, ys, losses = zip(*self._val_windows, strict=True)
        self._val_windows.clear()
        windows, masks = torch.cat(windows), torch.cat(masks)
        pred = average_windows(torch.cat(preds).float(), windows, masks, self.n_val_rows)
        y = torch.zeros(self.n_val_rows, dtype=ys[0].dtype, device=windows.device)
        y[windows.reshape(-1)[masks.reshape(-1)]] = torch.cat(ys).reshape(-1)[masks.reshape(-1)]
        loss = torch.stack(losses).sum() / int(masks.sum())
        self.log_validation(loss, y.cpu().numpy(), pred.cpu().numpy())

    @torch.no_grad()
    def predict_array(self, *args, **kwargs) -> tuple[np.ndarray, np.ndarray | None]:
        """LitModel.predict_array with each row's outputs averaged over the overlapping windows
        that hold it, on the training device (the GPU when train.accelerator finds one: a
        recurrent pass wants it), whichever device the module sits on."""
        model = self.model
        home = next(model.parameters()).device
        model.to(run_device(self.cfg.train.accelerator))
        try:
            return super().predict_array(*args, **kwargs)
        finally:
            model.to(home)

    def one_pass(self, x, offset, batch_size: int, runs):
        model = self.model
        windows, mask = cut_windows(runs or [(0, len(x))], model.window, model.stride)
        windows, mask = torch.from_numpy(windows), torch.from_numpy(mask)
        per_batch = max(1, batch_size // model.window)

        def run(device: torch.device) -> torch.Tensor:
            chunks = []
            for start in range(0, len(windows), per_batch):
                w = windows[start : start + per_batch]
                out = model(x[w].to(device))
                chunks.append(self.to_prediction(out, offset[w].to(device)).float().cpu())
            return average_windows(torch.cat(chunks), windows, mask, len(x))

        return run
