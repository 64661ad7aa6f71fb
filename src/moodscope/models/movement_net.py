"""The movement net of :class:`~moodscope.models.musicnn_va.MusicnnVA` (``movement_net``, issue 24 item 4): DAMFF's
sequence head on MusiCNN's 0.5 s steps, trained after the network on listeners' curves to shape the track-level
movement (see ``movement_net`` in :class:`~moodscope.models.musicnn_va.MusicnnVA` for how it is used and why)."""

from __future__ import annotations

import torch
from torch import nn


def standardised(x):
    """``x`` ``(steps, 2)`` (a tensor or an array) minus its mean over the steps, divided by its spread (a
    constant column stays 0)."""
    x = x - x.mean(0)
    sd = (
        x.std(0, keepdims=True) if not isinstance(x, torch.Tensor) else x.std(0, unbiased=False, keepdim=True)
    )
    return x / (sd + 1e-9)


class MovementNet(nn.Module):
    """One member of :class:`MusicnnVA`'s ``movement_net``: ``(batch, steps, n_bins)`` normalised MusiCNN rows ->
    ``(batch, steps, 2)`` a movement (no scale, no level: it is standardised where it is used).

    DAMFF's head (§3.3: segment embedding -> BiLSTM -> linear) on MusiCNN's 0.5 s steps in place of DAMFF's
    convolutional segment embedding: ``Dropout -> Linear(n_bins, units) -> ReLU -> Dropout``, one bidirectional
    LSTM of ``units`` per direction over the whole track, ``Linear(2 units, 2)``. ``units`` 32 and dropout 0.3
    are ours (80 pieces to learn from), as in the offline trial that chose it."""

    def __init__(self, n_bins: int, units: int = 32, dropout: float = 0.3):
        super().__init__()
        self.embed = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(n_bins, units), nn.ReLU(), nn.Dropout(dropout)
        )
        self.lstm = nn.LSTM(units, units, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * units, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.lstm(self.embed(z))[0])


#: how :func:`fit_movement_net` trains each member (chosen offline on VGMIDI's series-grouped folds)
MOVEMENT_NET_TRAINING = {"epochs": 30, "lr": 3e-3, "weight_decay": 1e-3, "crop_steps": (120, 480)}


def fit_movement_net(model, tracks, *, seed: int = 0, epochs: int | None = None) -> dict:
    """Train ``model``'s ``movement_net`` members on ``tracks``: ``(feats, target)`` pairs, raw features
    ``(steps, n_bins)`` and the listeners' curve ``(steps, 2)`` (NaN = unlabelled). Each member (seed ``seed +
    i``) sees every track once per epoch in random order, a random crop of 60-240 s of it (the context varies as
    a whole track's does), and minimises ``1 - PCC`` between its output and the labels over the crop's labelled
    steps, averaged over valence and arousal (the movement's shape; its size is the ridge's, its level the clip
    head's). AdamW (:data:`MOVEMENT_NET_TRAINING`). The result depends on the order of ``tracks`` (each epoch
    visits a permutation of it): :func:`~moodscope.training.fold.refit_movement` passes them sorted by id. The
    global random stream is left as it was. Returns ``{"members", "tracks", "loss"}`` (the last epoch's mean loss
    per member)."""
    import numpy as np

    if model.motion_nets is None:
        raise ValueError("fit_movement_net: the model has no movement net (movement_net=0)")
    cfg = MOVEMENT_NET_TRAINING
    epochs = int(cfg["epochs"] if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"fit_movement_net: epochs must be >= 1, got {epochs}")
    dev = model.norm.mean.device
    data = []
    for feats, target in tracks:
        n = min(len(feats), len(target))
        y = np.asarray(target, np.float64)[:n]
        ok = ~np.isnan(y).any(1)
        if ok.sum() >= 4:
            with torch.no_grad():
                z = model.norm(torch.as_tensor(np.asarray(feats)[:n], dtype=torch.float32, device=dev)[None])[
                    0
                ]
            y = torch.from_numpy(np.nan_to_num(y)).float().to(dev)
            data.append((z, y, torch.from_numpy(ok).to(dev)))
    if not data:
        raise ValueError("fit_movement_net: no track has four labelled steps")
    losses = []
    for i, net in enumerate(model.motion_nets):
        rng = np.random.default_rng(seed + i)
        # the member's initialisation and dropout masks come from its seed alone (CPU stream, restored after)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed + i)
            for layer in net.modules():  # a fresh start for every fit
                if isinstance(layer, (nn.Linear, nn.LSTM)):
                    layer.reset_parameters()
            try:
                for prm in net.parameters():
                    prm.requires_grad_(True)
                net.train()
                losses.append(_train_member(net, data, rng, epochs, cfg))
            finally:
                net.eval()
                for prm in net.parameters():
                    prm.requires_grad_(False)
    model.motion_nets_fitted.fill_(1.0)
    return {"members": len(model.motion_nets), "tracks": len(data), "loss": losses}


def _train_member(net: MovementNet, data, rng, epochs: int, cfg: dict) -> float:
    """:func:`fit_movement_net`'s loop for one member; returns the last epoch's mean loss."""
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    lo, hi = cfg["crop_steps"]
    for _ in range(epochs):
        total, count = 0.0, 0
        for k in rng.permutation(len(data)):
            z, y, ok = data[k]
            length = min(len(z), int(rng.integers(lo, hi + 1)))
            s = int(rng.integers(0, len(z) - length + 1))
            m = ok[s : s + length]
            if m.sum() < 4:
                continue
            p = net(z[None, s : s + length])[0][m]
            t = y[s : s + length][m]
            p, t = p - p.mean(0), t - t.mean(0)
            loss = 1.0 - ((p * t).sum(0) / (p.norm(dim=0) * t.norm(dim=0) + 1e-8)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, count = total + float(loss.detach()), count + 1
    return round(total / max(count, 1), 4)
