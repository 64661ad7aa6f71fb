"""Small dataset trees for the bad-input corpus of ``moodscope datasets check``.

Each builder starts from a clean tree of ``tests/fixtures_datasets.py`` (two or three short tracks with
readable WAV audio, so ``datasets check`` on it exits 0) and returns its root; the helpers then break one
file of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from fixtures_datasets import DEAM_AVG, make_deam, make_folder, make_pmemo

#: what a file outside the tree holds: a message must never quote it
SECRET = "root:x:0:0:do-not-echo-this-line"


def folder_tree(tmp_path: Path) -> Path:
    """The generic layout: tracks t0, t1 (1 s of audio each, 1-9 scale, split column), check exits 0."""
    return make_folder(tmp_path, quirks=False, n_tracks=2, duration_s=1.0)


def deam_tree(tmp_path: Path) -> Path:
    """DEAM's full release: songs 2, 3, 2001 with WAV audio."""
    return make_deam(tmp_path, quirks=False, duration_s=1.0, ext=".wav")


def pmemo_tree(tmp_path: Path) -> Path:
    """PMEmo 2019: songs 1, 4, 5 with WAV audio."""
    return make_pmemo(tmp_path, quirks=False, duration_s=1.0, ext=".wav")


def deam_dynamic_dir(root: Path) -> Path:
    return root / DEAM_AVG / "dynamic (per second annotations)"


def pmemo_annotations(root: Path) -> Path:
    return root / "PMEmo2019" / "annotations"


def outside_file(tmp_path: Path, name: str = "outside.csv") -> Path:
    """A file beside (not inside) the trees, holding :data:`SECRET`."""
    path = tmp_path / "elsewhere" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRET + "\n" + SECRET + "\n", encoding="utf-8")
    return path


def outside_audio(tmp_path: Path) -> Path:
    """An audio folder outside the tree, with the tracks of :func:`folder_tree`."""
    from fixtures_datasets import write_audio

    d = tmp_path / "elsewhere" / "audio"
    for i, tid in enumerate(("t0", "t1")):
        write_audio(d / f"{tid}.wav", 1.0, seed=i)
    return d


def set_yaml(root: Path, text: str) -> Path:
    path = root / "dataset.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def base_yaml(extra: str = "") -> str:
    """The fixture's dataset.yaml plus ``extra`` lines."""
    return "name: myset\nscale: {min: 1, max: 9}\nsplit: {column: split}\n" + extra


def append_lines(path: Path, *lines: str) -> Path:
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def replace_with(path: Path, what: str, target: Path | None = None) -> Path:
    """Put something other than a file at ``path``: ``"fifo"``, ``"dir"``, ``"symlink"`` (to ``target``)
    or ``"loop"`` (a symlink to itself)."""
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    elif what == "dir":
        path.mkdir()
        (path / "inner.csv").write_text("track_id,valence,arousal\nt0,5,5\n")
    elif what == "symlink":
        path.symlink_to(target)
    elif what == "loop":
        path.symlink_to(path.name)
    else:
        raise ValueError(what)
    return path


def add_deam_column(root: Path, name: str, value: str = "0.5") -> None:
    """Add a column ``name`` to both DEAM dynamic files, with ``value`` for every song."""
    for f in ("valence.csv", "arousal.csv"):
        path = deam_dynamic_dir(root) / f
        lines = path.read_text().splitlines()
        out = [lines[0] + "," + name] + [ln + "," + value for ln in lines[1:] if ln.strip()]
        path.write_text("\n".join(out) + "\n")
