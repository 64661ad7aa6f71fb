"""Bad input to ``moodscope datasets check``: dataset trees that are broken, hostile or absurd.

Every case breaks one file of an otherwise clean tree (``dataset_trees.py``) and runs
``moodscope datasets check <adapter> --root <tree>`` in-process. Two outcomes are allowed:

- the tree cannot be read: the exit code of ``cmd_datasets`` for a :class:`DatasetError`
  (:data:`CANNOT_READ`) and one line on stderr naming the file and the cause;
- the bad rows are skipped: exit 1, the report (stdout) lists them in a line naming the file and the cause,
  and the good tracks of the same tree are still counted.

Never a traceback, a hang, a huge allocation, or a message quoting a file outside the tree.
"""

from __future__ import annotations

import signal
import time
import tracemalloc
from pathlib import Path

import pytest

from badinput.dataset_trees import (
    SECRET,
    add_deam_column,
    append_lines,
    base_yaml,
    deam_dynamic_dir,
    deam_tree,
    folder_tree,
    outside_audio,
    outside_file,
    pmemo_annotations,
    pmemo_tree,
    replace_with,
    set_yaml,
)
from badinput.harness import assert_clean_error, on_linux

#: ``cmd_datasets`` (src/moodscope/cli.py) answers a DatasetError with this exit code
CANNOT_READ = 2
#: ``check`` exits 1 when it found (and skipped) problems
PROBLEMS = 1


def check(cli, adapter: str, root: Path, seconds: float = 20.0):
    """``moodscope datasets check ADAPTER --root ROOT``, failing (not hanging) after ``seconds``."""

    def _alarm(signum, frame):
        raise TimeoutError(f"datasets check ran longer than {seconds} s (a hang?)")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return cli("datasets", "check", adapter, "--root", root)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def assert_reported(run, *, name: str, cause: str, tracks: int) -> str:
    """Exit 1, no traceback, a report line naming ``name`` and ``cause``, and ``tracks`` tracks still read."""
    assert run.code == PROBLEMS, f"exit {run.code}\nstdout:\n{run.out}\nstderr:\n{run.err}"
    assert "Traceback" not in run.err, run.err
    hits = [ln for ln in run.out.splitlines() if name in ln and cause.lower() in ln.lower()]
    assert hits, f"no report line names {name!r} with {cause!r}:\n{run.out}"
    assert f"tracks: {tracks} " in run.out, run.out
    return hits[0]


# ----------------------------------------------------------------------------------------------------------
# Builders: (tmp_path, monkeypatch) -> (adapter, root); each breaks one thing of a clean tree
# ----------------------------------------------------------------------------------------------------------
def _dyn_row(row: str):
    def build(tmp_path, mp):
        root = folder_tree(tmp_path)
        append_lines(root / "dynamic.csv", row)
        return "folder", root

    return build


def _yaml(text: str):
    def build(tmp_path, mp):
        root = folder_tree(tmp_path)
        set_yaml(root, text)
        return "folder", root

    return build


def _static_bytes(data: bytes):
    def build(tmp_path, mp):
        root = folder_tree(tmp_path)
        (root / "static.csv").write_bytes(data)
        return "folder", root

    return build


def _replaced(name: str, what: str):
    def build(tmp_path, mp):
        root = folder_tree(tmp_path)
        target = outside_file(tmp_path) if what == "symlink" else None
        replace_with(root / name, what, target)
        return "folder", root

    return build


def _rows_per_track_cap(tmp_path, mp):
    mp.setattr("moodscope.datasets.reading.MAX_SAMPLES_PER_TRACK", 1)
    return "folder", folder_tree(tmp_path)


def _csv_size_cap(tmp_path, mp):
    mp.setattr("moodscope.datasets.reading.MAX_CSV_BYTES", 40)
    return "folder", folder_tree(tmp_path)


def _csv_cell_cap(tmp_path, mp):
    mp.setattr("moodscope.datasets.reading.MAX_CSV_CELLS", 10)
    return "folder", folder_tree(tmp_path)


def _wide_header_short_rows(tmp_path, mp):
    """200,000 tag columns and 20,000 rows of an id alone: rows x columns would be 4e9 cells of work."""
    root = folder_tree(tmp_path)
    header = "track_id,happy,sad," + ",".join(f"g{j}" for j in range(200_000))
    rows = ["t0,1,0", "t1,0,1"] + [f"x{i}" for i in range(20_000)]
    (root / "tags.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return "folder", root


def _audio_dir_parent(tmp_path, mp):
    root = folder_tree(tmp_path)
    outside_audio(tmp_path)
    set_yaml(root, base_yaml("audio_dir: ../elsewhere/audio\n"))
    return "folder", root


def _audio_symlink_outside(tmp_path, mp):
    root = folder_tree(tmp_path)
    replace_with(root / "audio", "symlink", outside_audio(tmp_path))
    return "folder", root


def _split_file_outside(tmp_path, mp):
    root = folder_tree(tmp_path)
    outside_file(tmp_path, "splits.csv")
    set_yaml(root, "name: myset\nscale: {min: 1, max: 9}\nsplit: {file: ../elsewhere/splits.csv}\n")
    return "folder", root


def _split_symlink_outside(tmp_path, mp):
    root = folder_tree(tmp_path)
    (root / "splits.csv").symlink_to(outside_file(tmp_path, "splits.csv"))
    set_yaml(root, "name: myset\nscale: {min: 1, max: 9}\nsplit: {file: splits.csv}\n")
    return "folder", root


def _split_yaml_bomb(tmp_path, mp):
    root = folder_tree(tmp_path)
    (root / "splits.yaml").write_text(_BOMB.replace("x: *l9", "train: *l9"))
    set_yaml(root, "name: myset\nscale: {min: 1, max: 9}\nsplit: {file: splits.yaml}\n")
    return "folder", root


def _deam_time(header: str):
    def build(tmp_path, mp):
        root = deam_tree(tmp_path)
        add_deam_column(root, header)
        return "deam", root

    return build


def _deam_fifo(tmp_path, mp):
    root = deam_tree(tmp_path)
    replace_with(deam_dynamic_dir(root) / "valence.csv", "fifo")
    return "deam", root


def _pmemo_row(row: str):
    def build(tmp_path, mp):
        root = pmemo_tree(tmp_path)
        append_lines(pmemo_annotations(root) / "dynamic_annotations.csv", row)
        return "pmemo", root

    return build


def _pmemo_symlink_outside(tmp_path, mp):
    root = pmemo_tree(tmp_path)
    replace_with(pmemo_annotations(root) / "static_annotations.csv", "symlink", outside_file(tmp_path))
    return "pmemo", root


# a billion laughs: 10 levels of 10 aliases each, 10**10 values once expanded
_BOMB = "l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n" + "".join(
    f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, 10)
)
_BOMB += "x: *l9\nscale: *l9\n"

STATIC_OK = "track_id,valence,arousal,split\nt0,1,9,train\nt1,2,8,test\n"

# id -> (builder, expected: ("error", name, cause) or ("report", name, cause, tracks))
CASES = {
    # per-time labels that would size the grid
    "dynamic_time_1e9": (_dyn_row("t0,1e9,5,5"), ("report", "dynamic.csv", "time beyond 86400 s", 2)),
    "dynamic_time_negative": (_dyn_row("t0,-5,5,5"), ("report", "dynamic.csv", "negative time", 2)),
    "dynamic_time_nan": (_dyn_row("t0,nan,5,5"), ("report", "dynamic.csv", "NaN or infinite time", 2)),
    "dynamic_time_inf": (_dyn_row("t1,inf,5,5"), ("report", "dynamic.csv", "NaN or infinite time", 2)),
    "dynamic_time_overflow": (_dyn_row("t1,1e999,5,5"), ("report", "dynamic.csv", "NaN or infinite time", 2)),
    "dynamic_rows_per_track": (_rows_per_track_cap, ("report", "dynamic.csv", "rows past 1 per track", 2)),
    "deam_column_1e9_s": (
        _deam_time("sample_1000000000000ms"),
        ("report", "valence.csv", "columns with a time beyond 86400 s", 3),
    ),
    "deam_fifo_valence_csv": (_deam_fifo, ("error", "valence.csv", "a FIFO, not a regular file")),
    "pmemo_frametime_1e9": (
        _pmemo_row("1,1e9,0.5,0.5"),
        ("report", "dynamic_annotations.csv", "time beyond 86400 s", 3),
    ),
    "pmemo_frametime_negative": (
        _pmemo_row("4,-5,0.5,0.5"),
        ("report", "dynamic_annotations.csv", "negative time", 3),
    ),
    # paths outside the root
    "audio_dir_parent": (
        _audio_dir_parent,
        ("error", "dataset.yaml", "audio_dir '../elsewhere/audio' points outside"),
    ),
    "audio_dir_etc": (
        _yaml(base_yaml("audio_dir: /etc\n")),
        ("error", "dataset.yaml", "audio_dir '/etc' points outside"),
    ),
    "audio_dir_symlink_outside": (
        _audio_symlink_outside,
        ("error", "audio", "points outside the dataset root"),
    ),
    "split_file_etc_passwd": (
        _yaml("name: x\nsplit: {file: /etc/passwd}\n"),
        ("error", "dataset.yaml", "split.file '/etc/passwd' points outside the dataset root"),
    ),
    "split_file_parent": (
        _split_file_outside,
        ("error", "dataset.yaml", "split.file '../elsewhere/splits.csv' points outside"),
    ),
    "split_file_symlink_outside": (
        _split_symlink_outside,
        ("error", "dataset.yaml", "split.file 'splits.csv' points outside"),
    ),
    "static_csv_symlink_outside": (
        _replaced("static.csv", "symlink"),
        ("error", "static.csv", "points outside the dataset root"),
    ),
    "pmemo_static_symlink_outside": (
        _pmemo_symlink_outside,
        ("error", "static_annotations.csv", "points outside the dataset root"),
    ),
    "static_csv_symlink_loop": (_replaced("static.csv", "loop"), ("error", "static.csv", "symlink loop")),
    # dataset.yaml
    "yaml_not_a_mapping": (_yaml("- a\n- b\n"), ("error", "dataset.yaml", "expected a mapping")),
    "yaml_alias_bomb": (_yaml(_BOMB), ("error", "dataset.yaml", "alias bomb")),
    "yaml_recursive_alias": (
        _yaml("a: &a [1, *a]\nscale: *a\n"),
        ("error", "dataset.yaml", "contains itself"),
    ),
    "yaml_deep_nesting": (
        _yaml("name: " + "[" * 20000 + "\n"),
        ("error", "dataset.yaml", "nested deeper than 64 levels"),
    ),
    "yaml_over_1_mb": (
        _yaml(base_yaml("# " + "x" * 2**20 + "\n")),
        ("error", "dataset.yaml", "bytes a dataset.yaml may have"),
    ),
    "yaml_python_object": (
        _yaml("name: !!python/object/apply:os.system ['echo hi']\n"),
        ("error", "dataset.yaml", "invalid YAML"),
    ),
    "yaml_integer_of_5000_digits": (
        _yaml("scale: {min: 1, max: " + "9" * 5000 + "}\n"),
        ("error", "dataset.yaml", "invalid YAML value"),
    ),
    "yaml_fifo": (_replaced("dataset.yaml", "fifo"), ("error", "dataset.yaml", "a FIFO, not a regular file")),
    "split_yaml_alias_bomb": (_split_yaml_bomb, ("error", "splits.yaml", "alias bomb")),
    # label files that are not (good) text
    "csv_nul_bytes": (
        _static_bytes(b"track_id,valence,arousal\nt0,5\x00,5\n"),
        ("error", "static.csv", "NUL character"),
    ),
    "csv_utf16_without_bom": (
        _static_bytes(STATIC_OK.encode("utf-16-le")),
        ("error", "static.csv", "NUL character"),
    ),
    "csv_binary_garbage": (
        _static_bytes(bytes(range(0x80, 0x100)) * 40),
        ("error", "static.csv", "missing column 'track_id'"),
    ),
    "csv_fifo": (_replaced("static.csv", "fifo"), ("error", "static.csv", "a FIFO, not a regular file")),
    "csv_is_a_directory": (
        _replaced("static.csv", "dir"),
        ("error", "static.csv", "a folder, not a regular file"),
    ),
    "csv_empty": (_static_bytes(b""), ("error", "static.csv", "file is empty")),
    "csv_header_only": (
        _static_bytes(b"track_id,valence,arousal,split\n"),
        ("report", "static.csv", "header only", 2),
    ),
    "csv_huge_field": (
        _static_bytes(STATIC_OK.encode() + b"t2," + b"9" * 300_000 + b",5,train\n"),
        ("error", "static.csv", "not readable as CSV"),
    ),
    "csv_over_size_limit": (_csv_size_cap, ("error", "static.csv", "bytes a CSV file may have")),
    "csv_too_many_cells": (_csv_cell_cap, ("error", "static.csv", "more than 10 cells")),
    "csv_wide_header_short_rows": (
        _wide_header_short_rows,
        ("report", "tags.csv", "tag values missing/NaN/out of range", 20_002),
    ),
}


@on_linux
@pytest.mark.parametrize("kind", list(CASES))
def test_datasets_check_bad_tree(kind, cli, tmp_path, monkeypatch):
    build, expected = CASES[kind]
    adapter, root = build(tmp_path, monkeypatch)
    run = check(cli, adapter, root)
    if expected[0] == "error":
        _, name, cause = expected
        line = assert_clean_error(run, code=CANNOT_READ, name=name, cause=cause)
        assert len(run.lines()) == 1, run.err
        assert line.isprintable() and len(line) < 600, line
    else:
        _, name, cause, tracks = expected
        assert_reported(run, name=name, cause=cause, tracks=tracks)
    for text in (run.out, run.err):
        assert SECRET not in text and "root:x:0:0" not in text, text


def test_time_1e9_finishes_fast_and_allocates_little(cli, tmp_path):
    """The row that used to allocate about 15 GiB: skipped within a second, a few MiB traced."""
    root = folder_tree(tmp_path)
    append_lines(root / "dynamic.csv", "t0,1e9,5,5", "t1,1000000000.5,5,5")
    check(cli, "folder", root)  # warm up the imports, so that only the load is measured
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        run = check(cli, "folder", root)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 5.0
    assert peak < 32 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    line = assert_reported(run, name="dynamic.csv", cause="time beyond 86400 s", tracks=2)
    assert "2 rows" in line


def test_utf16_with_bom_is_read(cli, tmp_path):
    """UTF-16 with a byte-order mark is a declared encoding, not damage: read as is, nothing to report."""
    root = folder_tree(tmp_path)
    (root / "static.csv").write_bytes(STATIC_OK.encode("utf-16"))
    run = check(cli, "folder", root)
    assert run.code == 0, run.out + run.err
    assert "static.valence    -1.000 .. -0.750  [1, 2]" in run.out


def test_outside_root_is_an_option_of_the_loader_not_of_the_tree(tmp_path):
    """``allow_outside_root`` in dataset.yaml does not lift the rule (it is noted); the loader option does."""
    from moodscope.datasets import load_dataset
    from moodscope.errors import DatasetError

    root = folder_tree(tmp_path)
    outside_audio(tmp_path)
    set_yaml(root, base_yaml("audio_dir: ../elsewhere/audio\nallow_outside_root: true\n"))
    with pytest.raises(DatasetError, match="points outside the dataset root"):
        load_dataset("folder", root)
    ds = load_dataset("folder", root, allow_outside_root=True)
    assert [t.audio.resolve().parent for t in ds.tracks] == [(tmp_path / "elsewhere" / "audio").resolve()] * 2
    assert any("allow_outside_root is ignored" in line for line in ds.issues)


def test_message_quotes_at_most_a_short_printable_excerpt(cli, tmp_path):
    """A header that is not what was expected is quoted as a short printable excerpt of the file."""
    root = folder_tree(tmp_path)
    (root / "static.csv").write_text("\x1b[31m" + "song," * 200 + "\nt0,1\n")
    run = check(cli, "folder", root)
    line = assert_clean_error(run, code=CANNOT_READ, name="static.csv", cause="missing column 'track_id'")
    assert "\x1b" not in line
    quoted = line.split("which reads ", 1)[1]
    assert len(quoted) <= 64, quoted


def test_allow_outside_root_from_the_command_line(tmp_path, cli):
    """The user (never the tree) may let ``audio_dir`` point elsewhere: ``--allow-outside-root``."""
    from fixtures_datasets import make_folder

    root = make_folder(tmp_path, quirks=False)
    elsewhere = tmp_path / "elsewhere"
    (root / "audio").rename(elsewhere)
    yaml_path = root / "dataset.yaml"
    yaml_path.write_text(yaml_path.read_text() + f"audio_dir: {elsewhere}\n")
    run = cli("datasets", "check", "folder", "--root", root)
    assert_clean_error(run, code=CANNOT_READ, name="dataset.yaml", cause="outside the dataset root")
    run = cli("datasets", "check", "folder", "--root", root, "--allow-outside-root")
    assert run.code == 0, run.out + run.err
