"""Learning tasks, one module per output kind: :mod:`.dynamic` (a V-A curve every 0.5 s), :mod:`.static`
(one V-A point or class per clip), :mod:`.tags` (emotion tags) and :mod:`.mood` (curve, static point,
quadrant and tags from one network, learnt from curves and clip-level quadrants together). A task owns everything kind-specific:
training examples, loss, whole-track prediction, metrics, and what it records in a model file.

Importing this package registers the kinds in :data:`TASKS`; :func:`make_task` builds one by name.
"""

from . import dynamic, mood, static, tags  # noqa: F401  (registers the kinds)
from .base import TASKS, Item, make_task

__all__ = ["TASKS", "Item", "make_task"]
