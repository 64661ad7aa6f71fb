"""The package's import layers (README "Layout"): no circle, nothing imported from a higher layer, no private name
imported across modules. Reads the code with :mod:`ast` (nothing is imported)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "moodscope"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def _layers() -> dict[str, int]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    assert block, "README.md has no ```layers block"
    layers = {}
    for line in block.group(1).strip().splitlines():
        number, names = line.split(".", 1)
        for n in names.split():
            layers["moodscope" if n == "moodscope" else f"moodscope.{n}"] = int(number)
    return layers


def _imports(mods: dict[str, Path]):
    """``(importer, imported module, name or None)`` for every import of a moodscope module."""
    for m, p in mods.items():
        package = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "moodscope":
                    continue
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    yield (m, sub, None) if sub in mods else (m, target, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "moodscope":
                        yield m, a.name, None


def _layer(name: str, layers: dict[str, int]) -> int | None:
    """The layer of the longest listed name that is ``name`` or a package above it (``moodscope`` itself names
    the package's ``__init__`` -- its public API -- only)."""
    best = max(
        (n for n in layers if name == n or (n != "moodscope" and name.startswith(n + "."))),
        key=len,
        default=None,
    )
    return None if best is None else layers[best]


def test_every_module_has_a_layer():
    layers = _layers()
    assert [m for m in _modules() if _layer(m, layers) is None] == []


def test_no_import_from_a_higher_layer():
    layers = _layers()
    uphill = sorted(
        f"{m} (layer {_layer(m, layers)}) imports {t} (layer {_layer(t, layers)})"
        for m, t, _ in _imports(_modules())
        if _layer(t, layers) > _layer(m, layers)
    )
    assert uphill == []


def test_no_private_name_imported_from_another_module():
    private = sorted(
        f"{m} imports {name} from {t}"
        for m, t, name in _imports(_modules())
        if name and name.startswith("_") and not name.startswith("__") and t != m
    )
    assert private == []


def test_no_import_circle():
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, t, _ in _imports(mods):
        if t in mods and t != m:
            graph[m].add(t)
    # a package's __init__ imports its modules to register them; a module importing its own package's
    # __init__ (for a registry) is not a circle of concepts
    for m in mods:
        graph[m] = {t for t in graph[m] if not (m.startswith(t + ".") or t.startswith(m + "."))}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in mods:
        if v not in index:
            visit(v)
    assert circles == []


def test_no_module_is_over_600_lines():
    """A module a reader can hold in mind: over 600 lines, a second concept has moved in (split it where a reader
    would look for something)."""
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > 600}
    assert long == {}


#: The predict road, top to bottom: each module hands the next its blocks; below ``audio.decode`` come the
#: helpers every module may call (samples, containers, content notes, the log-Mel, loudness, mode features).
ROAD = ["inference.predictor", "audio.cache", "audio.features", "audio.source", "audio.decode"]
ROAD_HELPERS = {
    "audio.samples",
    "audio.containers",
    "audio.content",
    "audio.mel",
    "audio.loudness",
    "audio.tonal",
}


def _trace_predict(predictor, path):
    """The calls between moodscope modules while ``predictor`` predicts ``path``: ``{(caller, callee, function):
    count}`` (module names without ``moodscope.``), counting each resumption of a generator as a call."""
    import collections
    import sys

    edges = collections.Counter()

    def profile(frame, event, arg):
        if event != "call" or frame.f_back is None:
            return
        callee, caller = frame.f_globals.get("__name__", ""), frame.f_back.f_globals.get("__name__", "")
        if callee.startswith("moodscope.") and caller.startswith("moodscope.") and callee != caller:
            edges[(caller[10:], callee[10:], frame.f_code.co_name)] += 1

    sys.setprofile(profile)
    try:
        result = predictor.predict(path)
    finally:
        sys.setprofile(None)
    return result, edges


def _downhill(edges):
    """The road's calls that go up it (a module re-entered from one below), or that leave it sideways."""
    bad = []
    for caller, callee, fn in edges:
        if caller in ROAD and callee in ROAD:
            if ROAD.index(callee) <= ROAD.index(caller):
                bad.append((caller, callee, fn))
        elif caller in ROAD_HELPERS and callee in ROAD:
            bad.append((caller, callee, fn))
    return bad


def test_the_predict_road_visits_each_audio_module_once_per_block(tmp_path, monkeypatch):
    """Issue 27: predict reads a file by one road -- the predictor takes the cache's blocks, the cache the
    features', the features read the source, the source decodes -- and no module is entered again from one below
    it (the road used to go features -> decode -> features -> decode -> cache -> features ...). A streamed file
    (the demo DAMFF, 130 s: three 60 s blocks) and a long one through MusiCNN (two passes, 16 s blocks)."""
    import numpy as np
    import soundfile as sf

    from moodscope.audio import features
    from moodscope.inference.predictor import Predictor

    rng = np.random.default_rng(0)
    t = np.arange(22050 * 130) / 22050
    y = (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(t))).astype(np.float32)
    y += 0.01 * rng.standard_normal(y.size).astype(np.float32)
    sf.write(str(tmp_path / "long.wav"), y, 22050)

    result, edges = _trace_predict(Predictor.from_file("demo"), tmp_path / "long.wav")
    assert result.dynamic is not None and not _downhill(edges), _downhill(edges)
    assert (
        edges[("inference.predictor", "audio.cache", "cached_features")] == 4
    )  # a start per block + the end
    assert edges[("audio.cache", "audio.features", "features_of")] == 4
    assert edges[("audio.source", "audio.decode", "__init__")] == 1  # one forward pass over the file

    monkeypatch.setenv("MOODSCOPE_LONG_FILE_S", "20")
    real = features._musicnn_blocks
    monkeypatch.setattr(features, "_musicnn_blocks", lambda *a, **k: real(*a, **{**k, "block_s": 16.0}))
    sf.write(str(tmp_path / "mid.wav"), y[: 22050 * 50], 22050)
    result, edges = _trace_predict(Predictor.from_file("default"), tmp_path / "mid.wav")
    assert result.dynamic is not None and not _downhill(edges), _downhill(edges)
    assert (
        edges[("audio.cache", "audio.features", "features_of")] == 4 + 1
    )  # four 16 s blocks of 50 s + the end
    assert edges[("audio.source", "audio.decode", "__init__")] == 2  # two passes: loudness, then the steps
