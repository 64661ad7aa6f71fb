"""``moodscope query`` and ``moodscope playlist`` on results stores built in the test (no audio, no model)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from badinput.harness import UNWRITABLE_FILE, assert_clean_error, leftovers, on_linux
from moodscope.emotion import QUADRANT_NAMES, QUADRANT_TAGS, quadrant_index, quadrant_name
from moodscope.errors import OutputError, UsageError
from moodscope.library import filters, playlist
from moodscope.library import query as Q
from moodscope.library.store import COLUMNS, ResultStore

MID = "grid-0123456789abcdef"
QUOTED = 'x"y'  # a tag name json_extract's path cannot hold: the Python fallback filters it


def make_row(path, v, a, *, mid=MID, tags=None, duration=180.0, digest=None) -> dict:
    """A ``tracks`` row with every column of the store, as predict would write it."""
    quadrant = quadrant_name(v, a) if v is not None and a is not None else None
    result = {"file": str(path), "duration_s": duration, "model": mid.rsplit("-", 1)[0]}
    result |= {"static": {"valence": v, "arousal": a}, "quadrant": quadrant or ""}
    if tags is not None:
        result["tags"] = tags
    row = {
        "path": str(path),
        "model_id": mid,
        "content_hash": digest or f"hash-{path}",
        "size": 1000,
        "mtime_ns": 1,
        "model": result["model"],
        "duration_s": duration,
        "valence": v,
        "arousal": a,
        "quadrant": quadrant,
        "tags": json.dumps(tags) if tags is not None else None,
        "hop_s": 0.5,
        "curve_valence": json.dumps([v, v]) if v is not None else None,
        "curve_arousal": json.dumps([a, a]) if a is not None else None,
        "result": json.dumps(result),
        "seconds": 0.25,
        "added": 1.7e9,
    }
    assert set(row) == set(COLUMNS)
    return row


def grid_tags(v, a) -> dict:
    return {
        "happy": round((v + 1) * (a + 1) / 4, 4),
        "calm": round((v + 1) * (1 - a) / 4, 4),
        QUOTED: 0.9 if v > 0 else 0.1,
    }


def build(folder: Path, rows) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with ResultStore(folder) as store:
        for r in rows:
            store.add(r)
    return folder


#: the query grid: 9 x 9 points, step 0.25, zero included
GRID = [(round(v, 2), round(a, 2)) for v in np.linspace(-1, 1, 9) for a in np.linspace(-1, 1, 9)]


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    """81 tracks on the grid (durations 100 + i s) and one deep-folder track without valence/arousal."""
    root = tmp_path_factory.mktemp("grid")
    music = root / "music"
    rows = [
        make_row(music / f"v{v:+.2f}_a{a:+.2f}.flac", v, a, tags=grid_tags(v, a), duration=100.0 + i)
        for i, (v, a) in enumerate(GRID)
    ]
    deep = music.joinpath(*["a-rather-long-folder-name"] * 4, "no-valence.flac")
    rows.append(make_row(deep, None, None, tags={"happy": 0.99, "calm": 0.0, QUOTED: 0.5}, duration=60.4))
    return build(root / "out", rows)


#: the playlist grid: 21 x 21 points, step 0.1 (every quadrant centre and the origin are on it)
FINE = [(round(v, 2), round(a, 2)) for v in np.linspace(-1, 1, 21) for a in np.linspace(-1, 1, 21)]


@pytest.fixture(scope="module")
def fine(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fine")
    return build(
        root / "out", [make_row(root / f"t{v:+.1f}{a:+.1f}.ogg", v, a, duration=200.0) for v, a in FINE]
    )


def va(rows) -> list[tuple[float, float]]:
    return [(r["valence"], r["arousal"]) for r in rows]


# -- filters ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", QUADRANT_TAGS)
def test_quadrant_filter_uses_the_sign_convention(grid, q):
    got = set(va(Q.query(grid, quadrant=q)))
    want = {p for p in GRID if QUADRANT_TAGS[int(quadrant_index(*p))] == q}
    assert got == want
    assert (0.0, 0.0) in got if q == "happy" else (0.0, 0.0) not in got


def test_quadrant_synonyms_display_names_and_lists(grid):
    happy = va(Q.query(grid, quadrant="happy"))
    assert va(Q.query(grid, quadrant="Energetic")) == happy
    assert va(Q.query(grid, quadrant=QUADRANT_NAMES[0])) == happy
    both = set(va(Q.query(grid, quadrant="happy,relaxed")))
    assert both == {p for p in GRID if p[0] >= 0}
    assert set(va(Q.query(grid, quadrant=["sad", "tense"]))) == {p for p in GRID if p[0] < 0}


def test_valence_arousal_ranges_are_inclusive_and_may_be_open(grid):
    got = set(va(Q.query(grid, valence="0.25,0.75", arousal=(None, -0.5))))
    assert got == {(v, a) for v, a in GRID if 0.25 <= v <= 0.75 and a <= -0.5}
    assert len(got) == 3 * 3
    assert set(va(Q.query(grid, arousal="0.5,"))) == {p for p in GRID if p[1] >= 0.5}
    assert set(va(Q.query(grid, valence=(-1, -1)))) == {p for p in GRID if p[0] == -1}


def test_tag_filters_all_hold(grid):
    got = Q.query(grid, tags=[("happy", 0.5), "calm:0.1"])
    want = {p for p in GRID if grid_tags(*p)["happy"] >= 0.5 and grid_tags(*p)["calm"] >= 0.1}
    assert set(va(got)) == want and want
    # the default minimum is 0.5; the track without valence has tags and passes a tag filter
    names = {Path(r["path"]).name for r in Q.query(grid, tags=["happy"])}
    assert "no-valence.flac" in names
    assert len(names) == 1 + sum(grid_tags(*p)["happy"] >= 0.5 for p in GRID)
    # a tag name json_extract cannot address, and tag names in another case
    assert {(r["valence"] or 0) > 0 for r in Q.query(grid, tags=[f"{QUOTED}:0.8"])} == {True}
    assert len(Q.query(grid, tags=["HAPPY:0.9"])) == len(Q.query(grid, tags=["happy:0.9"]))


def test_sort_keys_directions_and_missing_values_last(grid):
    rows = Q.query(grid, sort="valence,-arousal")
    keys = [(r["valence"], -r["arousal"]) for r in rows[:-1]]
    assert keys == sorted(keys) and len(keys) == len(GRID)
    assert rows[-1]["valence"] is None  # no value: last, in either direction
    assert Q.query(grid, sort="-valence")[-1]["valence"] is None
    durations = [r["duration_s"] for r in Q.query(grid, sort=["-duration"])]
    assert durations == sorted(durations, reverse=True)
    by_tag = [r["tags"]["calm"] for r in Q.query(grid, sort="-calm", limit=10)]
    assert by_tag == sorted((grid_tags(*p)["calm"] for p in GRID), reverse=True)[:10]
    assert [r["path"] for r in Q.query(grid)] == sorted(r["path"] for r in Q.query(grid))


def test_near_named_point_and_vA_point(grid):
    rows = Q.query(grid, near="relaxed", limit=5)
    assert rows[0]["valence"] == 0.5 and rows[0]["arousal"] == -0.5 and rows[0]["distance"] == 0
    assert {(r["valence"], r["arousal"]) for r in rows[1:]} == {
        (0.25, -0.5),
        (0.75, -0.5),
        (0.5, -0.25),
        (0.5, -0.75),
    }
    assert all(math.isclose(r["distance"], 0.25) for r in rows[1:])
    dists = [r["distance"] for r in Q.query(grid, near="-0.3,0.9")]
    assert dists == sorted(dists) and len(dists) == len(GRID)  # the track without a point is left out
    assert dists[0] == pytest.approx(math.hypot(0.05, 0.1))  # at (-0.25, 1)
    assert Q.query(grid, near=(0.0, 0.0), limit=1)[0]["distance"] == 0


def test_near_within_and_near_then_sort(grid):
    rows = Q.query(grid, near="sad", within=0.25)
    assert len(rows) == 5 and all(r["distance"] <= 0.25 + 1e-9 for r in rows)
    chosen = Q.query(grid, near="calm", limit=9)
    resorted = Q.query(grid, near="calm", limit=9, sort="-arousal")
    assert {r["path"] for r in chosen} == {r["path"] for r in resorted}
    arousal = [r["arousal"] for r in resorted]
    assert arousal == sorted(arousal, reverse=True)


def test_limit_and_full(grid):
    assert len(Q.query(grid, limit=7)) == 7
    row = Q.query(grid, quadrant="sad", limit=1, full=True)[0]
    assert json.loads(row["result"])["static"]["valence"] == row["valence"]
    assert row["curve_valence"] == [row["valence"]] * 2
    assert "result" not in Q.query(grid, limit=1)[0]


def test_model_choice(tmp_path):
    out = build(
        tmp_path / "out",
        [
            make_row(tmp_path / "a.wav", 0.1, 0.1, mid="m-aaaa"),
            make_row(tmp_path / "a.wav", 0.2, 0.2, mid="m2-bbbb"),
        ],
    )
    with pytest.raises(UsageError, match=r"2 models; choose one with --model: m-aaaa \(1 tracks\), m2-bbbb"):
        Q.query(out)
    assert Q.query(out, model="m2")[0]["valence"] == 0.2
    assert Q.query(out, model="m-aaaa")[0]["valence"] == 0.1
    with pytest.raises(UsageError, match="matches 2 models"):
        Q.query(out, model="m")
    with pytest.raises(UsageError, match="no results of model 'zz'"):
        Q.query(out, model="zz")


def test_store_file_itself_is_accepted(grid):
    assert len(Q.query(grid / "moodscope.sqlite", limit=3)) == 3


# -- playlists ----------------------------------------------------------------------------------------------
def test_waypoints_evenly_spaced_through_via():
    wp = playlist.waypoints([(0.5, -0.5), (0.5, 0.5)], 5)
    np.testing.assert_allclose(wp, [(0.5, -0.5), (0.5, -0.25), (0.5, 0), (0.5, 0.25), (0.5, 0.5)])
    wp = playlist.waypoints([(0, 0), (1, 0), (1, 0), (1, 1)], 5)  # a repeated point is harmless
    np.testing.assert_allclose(wp, [(0, 0), (0.5, 0), (1, 0), (1, 0.5), (1, 1)])
    np.testing.assert_allclose(playlist.waypoints([(0.2, 0.3), (1, 1)], 1), [(0.2, 0.3)])
    np.testing.assert_allclose(playlist.waypoints([(0.2, 0.3), (0.2, 0.3)], 3), [(0.2, 0.3)] * 3)


def progress(rows, a, b) -> np.ndarray:
    """Each track's position along the straight path a -> b (projection)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.asarray([np.dot(np.asarray(p) - a, b - a) / np.dot(b - a, b - a) for p in va(rows)])


@pytest.mark.parametrize(
    ("start", "end", "n"), [("calm", "energetic", 11), ("calm", "angry", 11), ("sad", "happy", 16)]
)
def test_playlist_progresses_monotonically_with_distinct_tracks(fine, start, end, n):
    rows = playlist.playlist(fine, start, end, n)
    assert [r["step"] for r in rows] == list(range(1, n + 1))
    assert len({r["path"] for r in rows}) == n
    pos = progress(rows, filters.MOODS[start], filters.MOODS[end])
    assert np.all(np.diff(pos) > 0), pos
    assert pos[0] == pytest.approx(0, abs=0.1) and pos[-1] == pytest.approx(1, abs=0.1)
    for r in rows:
        assert r["distance"] == pytest.approx(
            math.hypot(r["valence"] - r["target_valence"], r["arousal"] - r["target_arousal"])
        )
    if n == 11:  # the grid holds every waypoint
        assert all(r["distance"] < 1e-9 for r in rows)


def test_playlist_via(fine):
    rows = playlist.playlist(fine, "calm", "angry", 21, via=["sad"])
    assert all(r["distance"] < 1e-9 for r in rows)
    assert va(rows)[10] == (-0.5, -0.5)
    assert va(rows)[:11] == [(round(0.5 - 0.1 * i, 2), -0.5) for i in range(11)]
    assert va(rows)[10:] == [(-0.5, round(-0.5 + 0.1 * i, 2)) for i in range(11)]
    two = playlist.playlist(fine, "0.9,0.9", "-0.9,0.9", 9, via=["0.9,-0.9", "-0.9,-0.9"])
    assert va(two)[0] == (0.9, 0.9) and va(two)[-1] == (-0.9, 0.9)
    assert {p[1] for p in va(two)[3:6]} == {-0.9}


def brute_force(targets, points) -> float:
    n, best = len(targets), math.inf
    for perm in itertools.permutations(range(len(points)), n):
        best = min(best, float(np.hypot(*(points[list(perm)] - targets).T).sum()))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_assignment_is_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1, 1, (9, 2))
    n = 1 + seed % 4
    targets = playlist.waypoints(rng.uniform(-1, 1, (2 + seed % 2, 2)), n)
    idx, dist, exact = playlist.assign(targets, points)
    assert exact and len(set(idx.tolist())) == n
    np.testing.assert_allclose(dist, np.hypot(*(points[idx] - targets).T))
    assert dist.sum() == pytest.approx(brute_force(targets, points))


def test_playlist_is_optimal_on_a_small_store(tmp_path):
    rng = np.random.default_rng(7)
    pts = np.round(rng.uniform(-1, 1, (8, 2)), 3)
    out = build(
        tmp_path / "out",
        [make_row(tmp_path / f"{i}.mp3", float(v), float(a)) for i, (v, a) in enumerate(pts)],
    )
    rows = playlist.playlist(out, "calm", "tense", 4, via=["neutral"])
    targets = playlist.waypoints([filters.MOODS["calm"], (0, 0), filters.MOODS["tense"]], 4)
    assert sum(r["distance"] for r in rows) == pytest.approx(brute_force(targets, pts))


def test_assignment_with_fewer_candidates_stays_distinct(monkeypatch):
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, (400, 2))
    targets = playlist.waypoints([(-1, -1), (1, 1)], 40)
    monkeypatch.setattr(playlist, "MAX_CELLS", 40 * 100)
    idx, dist, exact = playlist.assign(targets, points)
    assert not exact and len(set(idx.tolist())) == 40 and dist.mean() < 0.2


def test_playlist_counts_duplicate_files_once(tmp_path):
    rows = [make_row(tmp_path / f"{i}.wav", 0.1 * i, 0.0) for i in range(3)]
    rows.append(make_row(tmp_path / "copy-of-0.wav", 0.0, 0.0, digest=rows[0]["content_hash"]))
    out = build(tmp_path / "out", rows)
    assert len({r["content_hash"] for r in playlist.playlist(out, "neutral", "0.2,0", 3)}) == 3
    with pytest.raises(UsageError, match="more than the 3 distinct tracks"):
        playlist.playlist(out, "neutral", "0.2,0", 4)


# -- the command line: formats ------------------------------------------------------------------------------
def test_cli_table(grid, cli):
    run = cli("query", grid, "--sort", "valence", "--quadrant", "calm", "--limit", "3")
    lines = run.out.splitlines()
    assert run.code == 0 and lines[0].split() == ["file", "V", "A", "quadrant", "tags"]
    assert lines[1].split()[:5] == ["v+0.00_a-0.25.flac", "+0.00", "-0.25", "calm", "(V+"]
    assert lines[-1].startswith(f"3 tracks ({MID})") and len(lines) == 5
    assert "calm 0.31" in lines[1]  # top tags with probabilities
    run = cli(
        "query", grid, "--tag", "happy:0.99", "--near", "happy"
    )  # the deep track has no point: left out
    assert "no-valence" not in run.out and run.out.splitlines()[0].split()[-2:] == ["dist", "tags"]
    run = cli("query", grid, "--tag", "happy:0.99")
    deep = next(ln for ln in run.out.splitlines() if "no-valence" in ln)
    assert deep.startswith("…") and "—" in deep and len(deep.split()[0]) == 48


def test_cli_csv_has_every_scalar_column_and_the_tags(grid, cli):
    run = cli("query", grid, "--arousal=-1,-1", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert run.code == 0 and len(rows) == 9
    assert list(rows[0]) == [*filters.SCALAR_COLUMNS, "happy", "calm", QUOTED]
    for r in rows:
        v = float(r["valence"])
        assert float(r["arousal"]) == -1 and r["quadrant"] == quadrant_name(v, -1)
        assert float(r["calm"]) == grid_tags(v, -1)["calm"] and r["model_id"] == MID
        assert Path(r["path"]).is_absolute() and float(r["duration_s"]) >= 100
    near = list(
        csv.DictReader(
            io.StringIO(cli("query", grid, "--near", "sad", "--limit", "2", "--format", "csv").out)
        )
    )
    assert float(near[0]["distance"]) == 0 and float(near[1]["distance"]) == 0.25


def test_cli_jsonl_is_the_stored_result(grid, cli):
    run = cli("query", grid, "--valence=-0.5,-0.5", "--format", "jsonl")
    objs = [json.loads(ln) for ln in run.out.splitlines()]
    assert run.code == 0 and len(objs) == 9
    assert all(
        o["static"]["valence"] == -0.5 and o["tags"] == grid_tags(-0.5, o["static"]["arousal"]) for o in objs
    )


def parse_m3u(text: str) -> list[tuple[int, str, str]]:
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) % 2 == 1
    out = []
    for info, path in zip(lines[1::2], lines[2::2]):
        assert info.startswith("#EXTINF:") and not path.startswith("#")
        secs, title = info[len("#EXTINF:") :].split(",", 1)
        out.append((int(secs), title, path))
    return out


def test_cli_m3u_to_stdout_and_atomically_to_a_file(grid, cli, tmp_path):
    run = cli("query", grid, "--quadrant", "sad", "--sort=-duration", "--format", "m3u")
    entries = parse_m3u(run.out)
    want = Q.query(grid, quadrant="sad", sort="-duration")
    assert run.code == 0 and [e[2] for e in entries] == [r["path"] for r in want]
    assert all(
        os.path.isabs(p) and t == Path(p).stem and s == round(r["duration_s"])
        for (s, t, p), r in zip(entries, want)
    )
    target = tmp_path / "lists" / "calm.m3u8"
    # the format from the extension
    run = cli("query", grid, "--near", "calm", "--limit", "4", "--out", target)
    assert run.code == 0 and run.out == "" and "wrote 4 tracks" in run.err
    assert [Path(e[2]).name for e in parse_m3u(target.read_text("utf-8"))][0] == "v+0.50_a-0.50.flac"
    assert leftovers(tmp_path) == []
    durations = [e[0] for e in parse_m3u(cli("query", grid, "--tag", "happy:0.99", "--format", "m3u").out)]
    assert durations == [60, 180]  # 60.4 s (the deep folder sorts first), then the grid's (1, 1)


def test_m3u_leaves_out_paths_with_line_breaks(tmp_path, cli):
    out = build(
        tmp_path / "out",
        [make_row(tmp_path / "ok.wav", 0.0, 0.0), make_row(tmp_path / "bad\nname.wav", 0.1, 0.1)],
    )
    run = cli("query", out, "--format", "m3u")
    assert [Path(e[2]).name for e in parse_m3u(run.out)] == ["ok.wav"]
    assert len(run.lines()) == 1 and "line break" in run.err
    assert "bad\\nname.wav" in cli("query", out).out  # the table escapes it


def test_cli_playlist_table_m3u_and_csv(fine, cli, tmp_path):
    run = cli("playlist", fine, "--from", "calm", "--to", "energetic", "--n", "11")
    lines = run.out.splitlines()
    assert run.code == 0 and run.err == "" and len(lines) == 13
    assert lines[0].split() == ["step", "target", "V", "A", "dist", "file"]
    assert lines[1].split() == ["1", "(+0.50,-0.50)", "+0.50", "-0.50", "0.00", "t+0.5-0.5.ogg"]
    assert lines[-1].startswith("11 tracks; mean distance 0.00")
    target = tmp_path / "calm-to-energetic.m3u"
    run = cli("playlist", fine, "--from", "calm", "--to", "energetic", "--n", "11", "--out", target)
    assert run.code == 0 and run.out == ""
    assert [e[2] for e in parse_m3u(target.read_text())] == [
        r["path"] for r in playlist.playlist(fine, "calm", "energetic", 11)
    ]
    run = cli(
        "playlist", fine, "--from=-0.5,0.5", "--to", "sad", "--via", "neutral", "--n", "5", "--format", "csv"
    )
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert list(rows[0])[:4] == ["step", "target_valence", "target_arousal", "distance"]
    # waypoints (-0.5, 0.5), (-0.25, 0.25), (0, 0), (-0.25, -0.25), (-0.5, -0.5): off the grid by (0.05, 0.05)
    np.testing.assert_allclose(
        [float(r["distance"]) for r in rows],
        [0, math.hypot(0.05, 0.05), 0, math.hypot(0.05, 0.05), 0],
        atol=1e-9,
    )
    assert (float(rows[2]["valence"]), float(rows[2]["arousal"])) == (0, 0)
    objs = [
        json.loads(ln)
        for ln in cli(
            "playlist", fine, "--from", "sad", "--to", "sad", "--n", "3", "--format", "jsonl"
        ).out.splitlines()
    ]
    assert objs[0]["static"] == {"valence": -0.5, "arousal": -0.5} and len(objs) == 3


def test_cli_playlist_warns_when_the_library_is_far_from_the_path(tmp_path, cli):
    out = build(tmp_path / "out", [make_row(tmp_path / f"{i}.wav", 0.9, 0.8 + 0.02 * i) for i in range(6)])
    run = cli("playlist", out, "--from", "sad", "--to", "calm", "--n", "4")
    assert run.code == 0 and len(run.lines()) == 1
    assert "warning" in run.err and "too few tracks near it" in run.err and str(out) in run.err


def test_help_has_examples_and_the_moods(cli):
    run = cli("query", "--help")
    assert (
        run.code == 0
        and "--near calm --limit 50" in run.out
        and "energetic" in run.out
        and "NAME[:MIN]" in run.out
    )
    run = cli("playlist", "--help")
    assert run.code == 0 and "--from calm --to energetic" in run.out and "--via" in run.out


# -- errors: one line naming the store and the cause, exit 2 ------------------------------------------------------
def test_no_store_and_empty_store(tmp_path, cli):
    for folder in (tmp_path / "nothing-here", tmp_path):
        run = cli("query", folder)
        assert_clean_error(run, code=2, name=str(folder), cause="no results store")
        assert len(run.lines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    ResultStore(empty).close()
    with ResultStore(empty) as s:
        s.add_failure(str(tmp_path / "x.mp3"), "m-1", "not audio")
    for argv in (("query", empty), ("playlist", empty, "--from", "calm", "--to", "sad")):
        run = cli(*argv)
        assert_clean_error(run, code=2, name=str(empty), cause="holds no tracks yet (1 files failed")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "moodscope.sqlite").write_bytes(b"not a database at all" * 100)
    assert_clean_error(cli("query", broken), code=2, name=str(broken), cause="not a moodscope results store")


BAD_QUERIES = {
    "unknown-mood": (["--near", "cheerfull"], "unknown mood 'cheerfull'"),
    "point-outside": (["--near", "0.5,1.5"], "outside [-1, 1]"),
    "range-reversed": (["--valence", "0.5,0.2"], "LO 0.5 is above HI 0.2"),
    "range-outside": (["--arousal", "0,2"], "within [-1, 1]"),
    "range-not-numbers": (["--valence", "low,high"], "must be numbers"),
    "range-empty": (["--valence", ","], "empty range"),
    "range-one-number": (["--valence", "0.5"], "give LO,HI"),
    "unknown-quadrant": (["--quadrant", "neutral"], "not a quadrant"),
    "unknown-tag": (["--tag", "sadd"], "unknown tag of model"),
    "tag-min-outside": (["--tag", "happy:2"], "within [0, 1]"),
    "unknown-sort-key": (["--sort", "loudness"], "--sort 'loudness': unknown tag"),
    "limit-zero": (["--limit", "0"], "--limit 0: give 1 or more"),
    "limit-beyond-sqlite": (
        ["--limit", "9223372036854775808"],
        "--limit 9223372036854775808: at most 2147483648",
    ),
    "within-without-near": (["--within", "0.2"], "--within needs --near"),
}


@pytest.mark.parametrize("kind", BAD_QUERIES)
def test_bad_query_arguments(grid, cli, kind):
    argv, cause = BAD_QUERIES[kind]
    run = cli("query", grid, *argv)
    assert_clean_error(run, code=2, name=str(grid), cause=cause)
    assert len(run.lines()) == 1 and run.out == ""


BAD_PLAYLISTS = {
    "unknown-from": (["--from", "blue", "--to", "calm"], "--from: unknown mood 'blue'"),
    "unknown-via": (["--from", "sad", "--to", "calm", "--via", "1,1,1"], "--via: unknown mood"),
    "n-zero": (["--from", "sad", "--to", "calm", "--n", "0"], "--n 0: give a number of tracks"),
    "n-too-large": (["--from", "sad", "--to", "calm", "--n", "442"], "more than the 441 distinct tracks"),
}


@pytest.mark.parametrize("kind", BAD_PLAYLISTS)
def test_bad_playlist_arguments(fine, cli, kind):
    argv, cause = BAD_PLAYLISTS[kind]
    run = cli("playlist", fine, *argv)
    assert_clean_error(run, code=2, name=str(fine), cause=cause)
    assert len(run.lines()) == 1 and run.out == ""


def test_stores_without_tags_or_points(tmp_path, cli):
    out = build(tmp_path / "va", [make_row(tmp_path / "a.wav", 0.1, 0.2)])
    assert_clean_error(cli("query", out, "--tag", "happy"), code=2, name=str(out), cause="gives no tags")
    tagger = build(tmp_path / "tagger", [make_row(tmp_path / "a.wav", None, None, tags={"happy": 0.7})])
    run = cli("playlist", tagger, "--from", "sad", "--to", "calm", "--n", "1")
    assert_clean_error(run, code=2, name=str(tagger), cause="gives no valence/arousal")
    assert cli("query", tagger, "--quadrant", "happy").code == 0  # nothing matches: not an error
    assert len(Q.query(tagger, tags=["happy"])) == 1


def test_several_models_need_model_on_the_command_line(tmp_path, cli):
    out = build(
        tmp_path / "out",
        [
            make_row(tmp_path / "a.wav", 0.1, 0.1, mid="one-aaaa"),
            make_row(tmp_path / "a.wav", 0.1, 0.1, mid="two-bbbb"),
        ],
    )
    run = cli("query", out)
    line = assert_clean_error(run, code=2, name=str(out), cause="choose one with --model")
    assert "one-aaaa" in line and "two-bbbb" in line
    assert cli("playlist", out, "--from", "calm", "--to", "sad", "--n", "1", "--model", "two").code == 0


def test_out_errors_leave_nothing_behind(grid, cli, tmp_path):
    store_file = grid / "moodscope.sqlite"
    before = store_file.read_bytes()
    run = cli("query", grid, "--out", store_file, "--format", "csv")
    assert_clean_error(run, code=2, name=str(store_file), cause="would overwrite the results store")
    assert store_file.read_bytes() == before
    run = cli("query", grid, "--out", tmp_path)
    assert_clean_error(run, code=2, name=str(tmp_path), cause="is a folder")
    assert leftovers(tmp_path) == []


@on_linux
def test_out_unwritable(grid, cli):
    run = cli("playlist", grid, "--from", "calm", "--to", "sad", "--n", "2", "--out", UNWRITABLE_FILE)
    assert_clean_error(run, code=2, name=str(UNWRITABLE_FILE), cause="cannot write")
    assert len(run.lines()) == 1


def test_api_errors_are_moodscope_errors(grid, tmp_path):
    with pytest.raises(OutputError, match="no results store"):
        playlist.playlist(tmp_path, "calm", "sad", 3)
    with pytest.raises(UsageError, match=r"--n 2.5"):
        playlist.playlist(grid, "calm", "sad", 2.5)
    with pytest.raises(UsageError, match="a point is two numbers"):
        Q.query(grid, near=(0.1, 0.2, 0.3))
    with pytest.raises(UsageError, match="--within -1"):
        Q.query(grid, near="calm", within=-1)


def test_out_never_replaces_a_file_unless_asked_and_never_an_input_or_a_results_file(tmp_path, cli):
    """Issue 26 (1): ``query``/``playlist --out`` follow predict's rule -- an existing file only with
    --overwrite, and never an analysed audio file or a file of the results folder, not even then."""
    song = tmp_path / "music" / "song.wav"
    song.parent.mkdir()
    song.write_bytes(b"RIFF-audio-bytes")
    out = build(tmp_path / "out", [make_row(song, 0.5, 0.5, tags=grid_tags(0.5, 0.5))])
    summary = out / "summary.json"
    summary.write_text('{"run": 1}')
    other = tmp_path / "list.m3u"
    other.write_text("keep me")
    for verb in (["query", out], ["playlist", out, "--from", "calm", "--to", "happy", "--n", "1"]):
        run = cli(*verb, "--out", other)
        assert_clean_error(run, code=2, name=str(other), cause="exists (add --overwrite to replace it)")
        assert other.read_text() == "keep me"
        for target, cause in ((song, "an analysed input file"), (summary, "a file of the results folder")):
            before = target.read_bytes()
            run = cli(*verb, "--out", target, "--format", "csv", "--overwrite")
            assert_clean_error(run, code=2, name=str(target), cause=cause)
            assert target.read_bytes() == before
        assert cli(*verb, "--out", other, "--overwrite").code == 0 and other.read_text() != "keep me"
        other.write_text("keep me")
    assert leftovers(tmp_path) == []


@on_linux
def test_a_store_in_a_read_only_folder_is_read(tmp_path, cli):
    """Issue 26 (9): query/playlist read a store they cannot write (a read-only disk, someone else's folder).
    As root (CI) the commands run with the effective user ``nobody``, for whom the folder is read-only."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="moodscope-ro-"))
    try:
        base.chmod(0o755)
        out = build(base / "out", [make_row(tmp_path / f"t{i}.wav", 0.1 * i, -0.1 * i) for i in range(3)])
        for extra in out.glob("moodscope.sqlite-*"):
            extra.unlink()
        (out / "moodscope.sqlite").chmod(0o444)
        out.chmod(0o555)
        argvs = [["query", out], ["playlist", out, "--from", "calm", "--to", "happy", "--n", "2"]]
        root = os.geteuid() == 0
        if root:  # become "nobody" for the file checks (the real uid stays root, so it can come back)
            warm = build(
                tmp_path / "warm", [make_row(tmp_path / f"w{i}.wav", 0.1 * i, 0.1) for i in range(3)]
            )
            for (
                argv
            ) in argvs:  # import what the commands import lazily while the interpreter's files are readable
                cli(argv[0], warm, *argv[2:])
            os.setegid(65534)
            os.seteuid(65534)
        try:
            runs = [cli(*argv) for argv in argvs]
        finally:
            if root:
                os.seteuid(0)
                os.setegid(0)
        results = [(r.code, r.out, r.err) for r in runs]
        assert all(code == 0 for code, _, _ in results), results
        assert "3 tracks" in results[0][1]
        assert not list(out.glob("moodscope.sqlite-*"))  # nothing written beside it
    finally:
        out.chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_hand_damaged_store_rows_are_shown_as_missing_with_a_warning(tmp_path, cli):
    """Issue 26 (10): non-JSON tags, text or Inf valence, a non-JSON result -- no traceback, a warning naming
    a track, the rest of the library as usual."""
    rows = [
        make_row(tmp_path / f"t{i}.wav", 0.2 * i - 0.4, 0.1 * i, tags=grid_tags(0.1, 0.1)) for i in range(5)
    ]
    out = build(tmp_path / "out", rows)
    db = sqlite3.connect(out / "moodscope.sqlite")
    db.execute("UPDATE tracks SET tags = 'not json{' WHERE path = ?", (str(tmp_path / "t0.wav"),))
    db.execute("UPDATE tracks SET valence = 'loud' WHERE path = ?", (str(tmp_path / "t1.wav"),))
    db.execute("UPDATE tracks SET arousal = 9e999 WHERE path = ?", (str(tmp_path / "t2.wav"),))
    db.execute("UPDATE tracks SET result = 'garbage' WHERE path = ?", (str(tmp_path / "t3.wav"),))
    db.commit()
    db.close()
    run = cli("query", out)
    assert run.code == 0 and "5 tracks" in run.out
    assert "warning: " in run.err and "3 tracks have damaged stored values" in run.err
    run = cli("query", out, "--format", "jsonl")
    assert (
        run.code == 0
        and len(run.out.splitlines()) == 4
        and "left out 1 tracks whose stored result" in run.err
    )
    for line in run.out.splitlines():
        json.loads(line)
    run = cli("query", out, "--tag", "happy:0.0", "--format", "csv")
    assert run.code == 0
    run = cli("playlist", out, "--from", "calm", "--to", "happy", "--n", "3")
    assert run.code == 0 and "left out 2 tracks whose stored valence/arousal is not a number" in run.err
