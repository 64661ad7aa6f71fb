"""Training batches of dynamic windows that share their 0.5 s segments (``task.train_reuse``)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from .base import WindowExamples, crop_frames


class TrackGroupedBatches(torch.utils.data.Sampler):
    """Batches of window indices grouped by track, for :class:`SharedSegmentBatches`.

    Each epoch shuffles the tracks, lists each track's windows in random order, and cuts that list into
    batches of ``batch_size`` windows (the last partial batch is dropped, as in plain batching, when there is
    more than one batch). It runs in the main process, so the epoch count that seeds the shuffle advances
    even with loader workers.
    """

    def __init__(self, entries, batch_size: int, seed: int):
        self.batch_size, self.seed, self.epoch = int(batch_size), int(seed), 0
        self.n = len(entries)
        self.by_item: dict[int, list[int]] = {}
        for j, entry in enumerate(entries):
            self.by_item.setdefault(int(entry[0]), []).append(j)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.n > self.batch_size else 1

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        order = []
        for idx in rng.permutation(sorted(self.by_item)):
            order.extend(rng.permutation(self.by_item[int(idx)]).tolist())
        for b in range(len(self)):
            yield order[b * self.batch_size : (b + 1) * self.batch_size]


class SharedSegmentBatches(Dataset):
    """Dynamic training windows batched so that each 0.5 s segment is embedded once
    (``DynamicTask(train_reuse=True)``); indexed by a list of window indices (:class:`TrackGroupedBatches`).

    A batch is a dict:

    - ``segments`` ``(n_unique, 1, frames_per_segment, n_bins)``: the segments of the span each of its tracks
      covers (from its first window's start to its last window's end, padded like a window);
    - ``index`` ``(n_windows, window_segments)``: the row of ``segments`` of each window's segment;
    - ``target``, ``mask`` ``(n_windows, window_segments, 2)``.
    """

    def __init__(self, examples: WindowExamples, frames_per_segment: int):
        self.ex, self.fps_seg = examples, int(frames_per_segment)

    def __len__(self) -> int:
        return len(self.ex.entries)

    def __getitem__(self, rows: list[int]) -> dict:
        return self._batch(list(rows))

    def _batch(self, rows: list[int]) -> dict:
        ex, f = self.ex, self.fps_seg
        w = ex.length // f
        needed: dict[int, set[int]] = {}  # item -> the segments its windows in this batch cover
        for j in rows:
            idx, start = ex.entries[j][0], ex.entries[j][1] // f
            needed.setdefault(idx, set()).update(range(start, start + w))
        segs, row_of, offset = [], {}, 0
        for idx, seg_ids in needed.items():
            ids = sorted(seg_ids)
            run_start = 0
            for k in range(1, len(ids) + 1):  # crop each contiguous run of segments once
                if k == len(ids) or ids[k] != ids[k - 1] + 1:
                    first, n = ids[run_start], k - run_start
                    frames = crop_frames(ex.items[idx].feats, first * f, n * f, ex.pad)
                    for q in range(n):
                        row_of[(idx, first + q)] = offset + q
                    segs.append(frames.reshape(n, f, frames.shape[1]))
                    offset += n
                    run_start = k
        index = np.array(
            [[row_of[(ex.entries[j][0], ex.entries[j][1] // f + q)] for q in range(w)] for j in rows],
            dtype=np.int64,
        )
        return {
            "segments": torch.from_numpy(np.concatenate(segs))[:, None],
            "index": torch.from_numpy(index),
            "target": torch.from_numpy(np.stack([np.asarray(ex.entries[j][2], np.float32) for j in rows])),
            "mask": torch.from_numpy(np.stack([np.asarray(ex.entries[j][3], np.float32) for j in rows])),
        }
