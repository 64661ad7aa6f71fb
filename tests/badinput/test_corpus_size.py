"""The bad-input corpus holds at least 60 kinds (one collected test id each) across its areas."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
MIN_KINDS = 60
AREAS = ("test_predict.py", "test_modelfiles.py", "test_datasets.py", "test_training.py")


def test_the_corpus_has_at_least_60_kinds(request):
    modules = {p.name for p in HERE.glob("test_*.py")} - {Path(__file__).name}
    items = [it for it in request.session.items if Path(str(it.fspath)).parent == HERE]
    collected = {Path(str(it.fspath)).name for it in items} - {Path(__file__).name}
    if collected != modules:
        pytest.skip("counts the corpus only when the whole tests/badinput folder is collected")
    assert set(AREAS) <= modules
    kinds = [it.nodeid for it in items if Path(str(it.fspath)).name != Path(__file__).name]
    per_area = {m: sum(Path(str(it.fspath)).name == m for it in items) for m in AREAS}
    assert all(n >= 5 for n in per_area.values()), per_area
    assert len(kinds) >= MIN_KINDS, f"{len(kinds)} kinds: {per_area}"
