from __future__ import annotations

import numpy as np
import pytest

from fixtures_datasets import make_pmemo
from moodscope.datasets import load_dataset
from moodscope.errors import DatasetError


def _issue(ds, text):
    hits = [line for line in ds.issues if text in line]
    assert hits, f"no issue containing {text!r} in {ds.issues}"
    return hits[0]


def test_pmemo2019_values(tmp_path):
    root = make_pmemo(tmp_path, layout="2019")
    ds = load_dataset("pmemo", root)
    assert "2019 layout" in ds.description
    assert ds.native_scale == {"static": (0.0, 1.0), "dynamic": (0.0, 1.0)}
    assert ds.kinds == ("static", "dynamic")
    assert ds.ids == ["1", "4", "5", "7", "13"]  # numeric ids in numeric order
    t = {tr.id: tr for tr in ds.tracks}
    # [0, 1] -> 2x - 1; columns found by name (arousal listed first in the static file)
    assert t["1"].arousal == pytest.approx(-0.2) and t["1"].valence == pytest.approx(0.2)
    assert t["4"].arousal == pytest.approx(0.6) and t["4"].valence == pytest.approx(-0.8)  # first of 2 rows
    _issue(ds, "1 duplicate ids (first row kept)")
    # frameTime 15.5 labels the segment starting at 15.5 s
    np.testing.assert_allclose(t["1"].dynamic.times_s, [15.5, 16.0, 16.5])
    np.testing.assert_allclose(t["1"].dynamic.valence, [-0.5, -0.5, -0.5])
    np.testing.assert_allclose(t["1"].dynamic.arousal, [0.0, 0.2, 0.4], atol=1e-6)
    np.testing.assert_allclose(t["4"].dynamic.arousal, [0.0, 0.2, 1.0], atol=1e-6)  # 1.02 clipped
    _issue(ds, "dynamic values slightly outside the scale clipped")
    np.testing.assert_allclose(t["5"].dynamic.valence, [-0.5, -0.5, -0.5])  # empty cell interpolated
    _issue(ds, "1 empty/NaN dynamic values inside a curve interpolated (e.g. 5)")
    assert t["7"].audio is None and t["7"].has_static
    assert t["13"].audio.name == "13.mp3" and not t["13"].has_static
    assert t["1"].meta["title"] == "Song 1" and t["1"].meta["chorus_start_time"] == "01:02"
    # the release folder may be given directly
    assert load_dataset("pmemo", root / "PMEmo2019").ids == ds.ids


def test_pmemo2018_values(tmp_path):
    root = make_pmemo(tmp_path, layout="2018")
    ds = load_dataset("pmemo", root)
    assert "2018 layout" in ds.description
    t = {tr.id: tr for tr in ds.tracks}
    # mean over the annotators: static arousal (0.2 + 0.4) / 2 = 0.3 -> -0.4
    assert t["1"].arousal == pytest.approx(-0.4) and t["1"].valence == pytest.approx(0.0)
    np.testing.assert_allclose(t["1"].dynamic.times_s, [15.5, 16.0, 16.5])
    np.testing.assert_allclose(t["1"].dynamic.arousal, [-0.4, 0.0, 0.4], atol=1e-6)
    np.testing.assert_allclose(t["1"].dynamic.valence, 0.0, atol=1e-6)
    # song 2: valence header without times -> 2 Hz from 15.5 s; 4 valence vs 3 arousal steps -> common span
    _issue(ds, "files whose header gives no times (2 Hz from 15.5 s assumed) (e.g. 2-V.csv)")
    np.testing.assert_allclose(t["2"].dynamic.times_s, [15.5, 16.0, 16.5])
    np.testing.assert_allclose(t["2"].dynamic.valence, 0.4, atol=1e-6)
    _issue(ds, "valence and arousal curves differ in span")
    # song 3: arousal only (and a row longer than its header)
    assert t["3"].arousal == pytest.approx(0.8) and t["3"].valence is None and t["3"].dynamic is None
    _issue(ds, "songs annotated in only one dimension")
    _issue(ds, "annotator rows with more cells than the header")
    assert t["3"].audio is None


def test_pmemo_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a PMEmo release"):
        load_dataset("pmemo", tmp_path)
    root = make_pmemo(tmp_path, layout="2019")
    with pytest.raises(DatasetError, match="looks like the PMEmo 2019 layout"):
        load_dataset("pmemo", root, release="2018")
    with pytest.raises(DatasetError, match="release must be"):
        load_dataset("pmemo", root, release="2020")
    static = root / "PMEmo2019" / "annotations" / "static_annotations.csv"
    static.write_text("musicId,Arousal(mean),Val\n1,0.5,0.5\n")
    with pytest.raises(DatasetError, match=r"static_annotations\.csv: missing column 'Valence\(mean\)'"):
        load_dataset("pmemo", root)
    static.unlink()
    ds = load_dataset("pmemo", root)  # dynamic only: allowed, and said
    _issue(ds, "static_annotations.csv not found")
    assert ds.kinds == ("dynamic",)
