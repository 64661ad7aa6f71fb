"""Dataset adapters: read a release as downloaded into :class:`~moodscope.tracks.Track` records.

>>> from moodscope.datasets import load_dataset, list_datasets
>>> ds = load_dataset("deam", "~/data/DEAM")          # doctest: +SKIP
>>> ds.tracks[0].valence, ds.issues                   # doctest: +SKIP

Adapters (registered in :data:`DATASETS`): ``folder`` (your own data, MER1101, the synthetic corpus),
``pmemo``, ``deam``, ``cal500``, ``cal500exp``, ``emopia`` (MIDI, rendered with FluidSynth), ``4q`` (real
song previews with quadrants and AllMusic moods). Protocol splits are in :mod:`moodscope.datasets.splits`,
the dataset check behind ``moodscope datasets check`` in :mod:`moodscope.datasets.check`.
"""

from __future__ import annotations

from . import cal500, cal500exp, deam, emopia, folder, fourq, pmemo, vgmidi  # noqa: F401  (registers the adapters)
from .base import DATASETS, Dataset, DatasetAdapter, IssueLog, Scale, list_datasets, load_dataset
from .grid import resample_to_grid


def __getattr__(name: str):
    # check_dataset and the split functions import scikit-learn; load them only when asked for.
    if name == "check_dataset":
        from .check import check_dataset

        return check_dataset
    if name in ("splits", "check"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "check_dataset",
    "DATASETS",
    "Dataset",
    "DatasetAdapter",
    "IssueLog",
    "Scale",
    "list_datasets",
    "load_dataset",
    "resample_to_grid",
]
