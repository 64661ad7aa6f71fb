from __future__ import annotations

import numpy as np
import pytest

from moodscope.datasets.base import IssueLog, Scale, natural_key
from moodscope.datasets.grid import build_dynamic, resample_to_grid
from moodscope.datasets.reading import normalize_id, read_csv


def test_scale_maps_and_inverts():
    s = Scale(1, 9)
    np.testing.assert_allclose(s.to_canonical([1, 3.1, 5, 9]), [-1, -0.475, 0, 1])
    np.testing.assert_allclose(Scale(0, 1).to_canonical([0, 0.25, 1]), [-1, -0.5, 1])
    x = np.array([1.7, 8.2, 4.4])
    np.testing.assert_allclose(s.to_native(s.to_canonical(x)), x)
    with pytest.raises(ValueError, match="min < max"):
        Scale(1, 1)


def test_scale_validate_clips_near_and_drops_far():
    vals, n_clip, n_bad = Scale(1, 9).validate(np.array([0.7, 0.5, 9.4, 9.5, np.nan, 5.0]))
    # tolerance 5 % of the span = 0.4: 0.7 and 9.4 are clipped, 0.5 and 9.5 dropped
    np.testing.assert_array_equal(vals, [1.0, np.nan, 9.0, np.nan, np.nan, 5.0])
    assert (n_clip, n_bad) == (2, 2)


def test_resample_identity_on_grid():
    t = np.arange(30, 90) * 0.5
    v = np.sin(t)
    g, out = resample_to_grid(t, v)
    np.testing.assert_array_equal(g, t)
    np.testing.assert_array_equal(out, v)
    # float noise just below a grid point still counts as on it; order does not matter
    g, out = resample_to_grid(t[::-1] - 1e-9, v[::-1])
    np.testing.assert_allclose(g, t)
    np.testing.assert_array_equal(out, v)


def test_resample_fine_is_segment_mean_and_coarse_is_interpolated():
    t = np.arange(0, 2, 0.1)  # 10 Hz
    v = t.copy()
    g, out = resample_to_grid(t, v)
    np.testing.assert_allclose(g, [0, 0.5, 1, 1.5])
    np.testing.assert_allclose(out, [0.2, 0.7, 1.2, 1.7])  # mean of 5 samples each
    g, out = resample_to_grid(np.array([1.0, 3.0]), np.array([[0.0, 10.0], [4.0, 6.0]]))  # 0.5 Hz, 2 columns
    np.testing.assert_allclose(g, [1, 1.5, 2, 2.5, 3])
    np.testing.assert_allclose(out[:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(out[:, 1], [10, 9, 8, 7, 6])
    g, out = resample_to_grid(np.array([]), np.array([]))
    assert g.shape == (0,) and out.shape == (0,)


def test_build_dynamic_fills_holes_and_cuts_to_common_span():
    log = IssueLog()
    t = np.array([15.0, 15.5, 16.0, 16.5])
    dyn = build_dynamic(t, [0.0, np.nan, 0.4, 0.6], t[:3], [0.1, 0.2, 0.3], Scale(-1, 1), log, "f", "x")
    np.testing.assert_allclose(dyn.times_s, [15.0, 15.5, 16.0])
    np.testing.assert_allclose(dyn.valence, [0.0, 0.2, 0.4], atol=1e-7)
    np.testing.assert_allclose(dyn.arousal, [0.1, 0.2, 0.3], atol=1e-7)
    assert log.count("interpolated") == 1 and log.count("differ in span") == 1
    assert build_dynamic(t, [np.nan] * 4, t, [0.0] * 4, Scale(-1, 1), log, "f", "y") is None
    assert log.count("no valid dynamic values") == 1


def test_issue_log_lines():
    log = IssueLog()
    for i in range(7):
        log.add("a.csv", "rows skipped", i)
    log.note("b.csv", "read as Latin-1")
    assert log.lines() == ["a.csv: 7 rows skipped (e.g. 0, 1, 2, 3, 4, ...)", "b.csv: read as Latin-1"]


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_read_csv_strips_and_detects_delimiter(tmp_path, sep):
    f = tmp_path / "x.csv"
    f.write_bytes(("\ufeffsong_id" + sep + " valence_mean\n\n 2" + sep + '"\t3.1\t"\n').encode("utf-8"))
    header, rows = read_csv(f)
    assert header == ["song_id", "valence_mean"] and rows == [["2", "3.1"]]


def test_ids():
    assert normalize_id(" 12.0 ") == "12" and normalize_id("a-b") == "a-b" and normalize_id("1.5") == "1.5"
    assert sorted(["10", "b", "2", "a"], key=natural_key) == ["2", "10", "a", "b"]


def test_canonical_scale_is_exact_identity():
    x = np.array([0.063205, -0.151889, 1.0, -1.0, 0.1])
    np.testing.assert_array_equal(Scale(-1, 1).to_canonical(x), x)
    np.testing.assert_array_equal(Scale(0, 1).to_canonical([0.6]), [2 * 0.6 - 1])
