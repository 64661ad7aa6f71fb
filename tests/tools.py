"""The optional tools some tests need, in one place: a test that needs one skips, naming what is missing and the
line that installs it, exactly where the package itself would raise for it.

Tools (combine any of them; each is looked for with the package's own finder where it has one):

- ``"fluidsynth"``: :func:`moodscope.audio.midi_render.find_fluidsynth` (``apt-get install ... fluidsynth``);
- ``"soundfont:FluidR3_GM"``, ``"soundfont:TimGM6mb"``: :func:`moodscope.audio.midi_render.find_soundfont` (Debian
  packages ``fluid-soundfont-gm``, ``timgm6mb-soundfont``, from :data:`moodscope.audio.midi_render.SOUNDFONTS`);
- ``"ffmpeg"``: ffmpeg and ffprobe as the M4A/AAC decoder finds them (``apt-get install ... ffmpeg``);
- ``"chromium"``: Chromium and its chromedriver on ``PATH`` (``apt-get install ... chromium chromium-driver``);
- ``"ray"``: the ``ray`` extra (Ray, pyarrow, pandas: ``pip install "moodscope[ray]"``).

Use::

    @needs("fluidsynth", "soundfont:TimGM6mb")  # a mark: the test skips when either is missing
    def test_render(): ...

    skip_unless("ffmpeg")  # the same inside a fixture or a test body

    pytest.param(path, marks=needs(*config_needs(load_config(path))))  # what a config's data sections need
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

APT = "apt-get install -y --no-install-recommends"
PIP_RAY = 'pip install "moodscope[ray]"'


def chromium_paths() -> tuple[str | None, str | None]:
    """The Chromium browser and its chromedriver on ``PATH`` (``None`` for each one not found)."""
    return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")


# Each probe returns the missing parts of a tool as (what, apt packages, pip line); an empty list when it is there.
Missing = list[tuple[str, tuple[str, ...], str | None]]


def _fluidsynth() -> Missing:
    from moodscope.audio import midi_render
    from moodscope.errors import MissingToolError

    try:
        midi_render.find_fluidsynth()
    except MissingToolError:
        return [("fluidsynth", ("fluidsynth",), None)]
    return []


def _soundfont(name: str) -> Callable[[], Missing]:
    from moodscope.audio import midi_render

    known = midi_render.SOUNDFONTS.get(name.lower().removesuffix(".sf2"))
    if known is None and not name.lower().endswith((".sf2", ".sf3")):
        raise ValueError(
            f"unknown soundfont {name!r}; known: {[v[0] for v in midi_render.SOUNDFONTS.values()]} or a .sf2/.sf3 path"
        )
    canonical, _, package = known or (name, name, None)  # a path: nothing to install

    def probe() -> Missing:
        from moodscope.errors import MissingToolError

        try:
            midi_render.find_soundfont(canonical)
        except MissingToolError:
            return [(f"soundfont {canonical}", (package,) if package else (), None)]
        return []

    return probe


def _ffmpeg() -> Missing:
    from moodscope.audio.containers import ffmpeg_tools  # what load_audio calls for M4A/AAC
    from moodscope.errors import AudioError

    try:
        ffmpeg_tools(Path("probe.m4a"))
    except AudioError:
        return [("ffmpeg", ("ffmpeg",), None)]
    return []


def _chromium() -> Missing:
    browser, driver = chromium_paths()
    out: Missing = []
    if browser is None:
        out.append(("Chromium", ("chromium",), None))
    if driver is None:
        out.append(("chromedriver", ("chromium-driver",), None))
    return out


def _ray() -> Missing:
    # moodscope.library.ray_backend raises MissingToolError when one of these is not importable; found without
    # importing Ray (seconds) at collection
    if all(importlib.util.find_spec(m) is not None for m in ("ray", "pyarrow", "pandas")):
        return []
    return [("Ray", (), PIP_RAY)]


_PROBES: dict[str, Callable[[], Missing]] = {
    "fluidsynth": _fluidsynth,
    "ffmpeg": _ffmpeg,
    "chromium": _chromium,
    "ray": _ray,
}


def _probe(tool: str) -> Callable[[], Missing]:
    kind, _, arg = tool.partition(":")
    if kind == "soundfont" and arg:
        return _soundfont(arg)
    if tool in _PROBES:
        return _PROBES[tool]
    raise ValueError(f"unknown tool {tool!r}; known: {sorted(_PROBES)} and 'soundfont:<name>'")


def missing(*tools: str) -> str | None:
    """Why the tests that need ``tools`` cannot run here: what is missing and the line that installs it (one
    ``apt-get`` line for all the system packages); ``None`` when everything is installed."""
    probes = [_probe(t) for t in tools]  # an unknown name fails here, whatever is installed
    found: Missing = [m for p in probes for m in p()]
    if not found:
        return None
    what = list(dict.fromkeys(w for w, _, _ in found))
    apt = list(dict.fromkeys(pkg for _, pkgs, _ in found for pkg in pkgs))
    pip = list(dict.fromkeys(p for _, _, p in found if p))
    install = ([f"{APT} {' '.join(apt)}"] if apt else []) + pip
    return f"missing {', '.join(what)}" + (f" ({'; '.join(install)})" if install else "")


def needs(*tools: str) -> pytest.MarkDecorator:
    """A ``skipif`` mark: the test skips, with :func:`missing`'s reason, unless every one of ``tools`` is here."""
    why = missing(*tools)
    return pytest.mark.skipif(why is not None, reason=why or "")


def skip_unless(*tools: str) -> None:
    """:func:`needs` for a fixture or a test body: ``pytest.skip`` with the reason when a tool is missing."""
    why = missing(*tools)
    if why is not None:
        pytest.skip(why)


def _data_sections(cfg: Mapping) -> list[Mapping]:
    data = cfg.get("data") or {}
    return [data, *(data.get("also") or [])]


def config_needs(cfg: Mapping) -> tuple[str, ...]:
    """The tools a training config's data sections need (``data`` and each ``data.also`` entry): a dataset
    adapter that renders MIDI (one with a rendering ``variant``, as EMOPIA's) needs fluidsynth and the variant's
    soundfont (its option, or the adapter's default)."""
    from moodscope.datasets import DATASETS

    out: list[str] = []
    for section in _data_sections(cfg):
        name = section.get("dataset")
        if not name or name not in DATASETS:
            continue
        cls = DATASETS.get(name)
        options = dict(section.get("options") or {})
        known = inspect.signature(cls).parameters
        if "soundfont" not in known:  # renders nothing
            continue
        adapter = cls(**{k: v for k, v in options.items() if k in known})
        variant = getattr(adapter, "variant", None)
        if variant is None or not getattr(adapter, "render", True):
            continue
        out += ["fluidsynth", f"soundfont:{variant.soundfont}"]
    return tuple(dict.fromkeys(out))
