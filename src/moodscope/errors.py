"""Exceptions raised by moodscope.

Every error that reaches a user carries one line naming the file (or dataset, or model file)
and the cause, e.g. ``AudioError: song.mp3: no audio samples (0-sample file)``.
"""

from __future__ import annotations

import re
from pathlib import Path

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text_path(path: str | Path) -> str:
    """``path`` as text that can be stored and written anywhere (SQLite, UTF-8 files, JSON): a name that is not
    UTF-8 (common on old disks and archives; Python holds its bytes as surrogates) gets its undecodable bytes as
    ``\\xNN`` -- ``caf\\xe9.wav`` for Latin-1's ``café.wav`` -- and any other name is returned as it is. The
    same file always gives the same text, so results stores and output names stay stable across runs."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def shown_path(path: str | Path) -> str:
    """``path`` as it may appear in a one-line message: control characters (a newline in a file name, an
    escape sequence) are written as ``\\n``, ``\\x1b``, ... so that one error stays one line and cannot
    move the terminal's cursor; bytes that are not UTF-8 as ``\\xNN`` (:func:`text_path`)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text_path(path))


class MoodscopeError(Exception):
    """Base class of all moodscope errors."""


class AudioError(MoodscopeError):
    """An audio file could not be used: missing, unreadable, empty, silent, too short, NaN/inf."""

    def __init__(self, path: str | Path | None, cause: str):
        self.path = None if path is None else str(path)
        self.cause = cause
        super().__init__(f"{shown_path(self.path)}: {cause}" if self.path is not None else cause)


class PredictionError(AudioError):
    """The model could not give a usable prediction for one track (e.g. NaN or infinite outputs)."""


class OutputError(MoodscopeError):
    """An output (a folder, a file, stdout) cannot be written."""


class DatasetError(MoodscopeError):
    """A dataset release does not have the layout or labels its adapter expects."""


class ModelFileError(MoodscopeError):
    """A model file is unreadable or does not match the architecture it names."""


class ConfigError(MoodscopeError):
    """A configuration file or ``--set`` override is invalid."""


class UsageError(MoodscopeError, ValueError):
    """Arguments that cannot work together (two inputs writing one output, an unknown metric, ...)."""


class UnknownNameError(MoodscopeError, KeyError):
    """A name (model, dataset adapter, task kind, ...) that no registry knows."""

    def __str__(self) -> str:  # the message, without KeyError's quotes
        return str(self.args[0]) if self.args else ""


class MissingToolError(MoodscopeError):
    """An external program, data file or optional package a feature needs is not installed.

    The message is one line naming the tool, what needs it and how to install it, e.g.
    ``fluidsynth not found: MIDI rendering needs it (apt-get install -y --no-install-recommends fluidsynth)``.
    """
