"""The LightningModule that trains any model on any task: the task's loss, Adam (+ step decay), validation on whole songs."""

from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import torch

from ..tasks.base import Item
from .data import log


# ------------------------------------------------------------------------------------------------------------
# Lightning system
# ------------------------------------------------------------------------------------------------------------
def import_lightning():
    """Import Lightning quietly (its INFO banners and tips are noise for a CLI user; -v shows them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import lightning as L
    level = logging.INFO if log.isEnabledFor(logging.INFO) else logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(level)
    return L


def make_system(model, task, train_cfg: dict, val_items: list[Item]):
    L = import_lightning()

    class MoodSystem(L.LightningModule):
        """model + task loss + Adam (+ step decay); validation predicts whole songs as at test time."""

        def __init__(self):
            super().__init__()
            self.model = model
            self.task = task
            self.cfg = train_cfg
            self.val_items = val_items
            self._val_preds: dict[int, np.ndarray] = {}
            self.last_val_metrics: dict = {}

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, batch_idx):
            losses, n = self.task.training_losses(self.model, batch)
            aux = getattr(self.model, "auxiliary_loss", None)
            if aux is not None:  # e.g. BCRSN's sparsity penalty
                losses["loss_aux"] = aux()
                losses["loss"] = losses["loss"] + losses["loss_aux"]
            for k, v in losses.items():
                self.log(f"train_{k}", v, prog_bar=(k == "loss"), on_step=False, on_epoch=True, batch_size=n)
            return losses["loss"]

        def validation_step(self, batch, batch_idx):
            i = int(batch if not hasattr(batch, "__getitem__") else batch[0])
            self._val_preds[i] = self.task.predict_item(self.model, self.val_items[i], device=self.device)

        def on_validation_epoch_end(self):
            if not self._val_preds:
                return
            order = sorted(self._val_preds)
            metrics = self.task.evaluate(
                [self.val_items[i] for i in order], [self._val_preds[i] for i in order]
            )
            score = self.task.score(metrics)
            if math.isnan(score):
                score = -1.0
            self.last_val_metrics = dict(metrics)
            self.log("val_score", float(score), prog_bar=True)
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and not math.isnan(v):
                    self.log(f"val_{k}", float(v))
            self._val_preds = {}

        def configure_optimizers(self):
            opt = torch.optim.Adam(
                self.model.parameters(),
                lr=float(self.cfg["lr"]),
                weight_decay=float(self.cfg["weight_decay"] or 0),
            )
            if self.cfg.get("milestones"):
                sched = torch.optim.lr_scheduler.MultiStepLR(
                    opt, milestones=list(self.cfg["milestones"]), gamma=float(self.cfg.get("gamma", 0.5))
                )
                return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
            return opt

    return MoodSystem()


class IndexDataset(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i
