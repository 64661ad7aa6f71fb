"""Receiving one uploaded audio file: a multipart/form-data body streamed, chunk by chunk, into a private folder.

The body is never held whole in memory and never spooled by the web framework: each chunk goes through
python-multipart's streaming parser, and the bytes of the form's ``file`` field are written to
``<folder>/upload<ext>`` as they arrive. The file on disk is named by the server; the client's file name only
chooses ``<ext>`` from :data:`~moodscope.audio.decode.SUPPORTED_EXTENSIONS` (so that the decoder knows the
container) and is shown back to the client, stripped of folders and with control characters escaped.

Every refusal is an :class:`UploadRefused` carrying the HTTP status and a one-line message: 413 as soon as the
file grows past its limit (whatever the request's ``Content-Length`` said, or without one), 422 for an upload
that cannot be audio moodscope reads (no file, an empty file, an unknown extension), 400 for a body that is not
well-formed multipart.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

try:  # python-multipart >= 0.0.13
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header
except ImportError:  # pragma: no cover - python-multipart 0.0.9 .. 0.0.12 (module "multipart")
    from multipart.exceptions import FormParserError
    from multipart.multipart import MultipartParser, parse_options_header

from ..audio.decode import SUPPORTED_EXTENSIONS
from ..errors import shown_path

#: the form field holding the audio file
FIELD = "file"
#: bytes of the body beyond the file's own that a request may carry (boundaries, part headers, small fields)
FORM_OVERHEAD = 64 * 1024
#: longest file name shown back to a client (characters, after escaping)
MAX_NAME = 200
#: Longest header line of a form part (its Content-Disposition carries the file name: 1,000 characters of
#: UTF-8 fit); python-multipart's own limit (4,224 bytes in 0.0.34) raises a generic error, named here too
MAX_HEADER_BYTES = 4000
#: the container of a file whose name has no extension, from the part's Content-Type (browsers' audio types)
CONTENT_TYPES = {
    "audio/wav": ".wav",
    "audio/wave": ".wav",
    "audio/x-wav": ".wav",
    "audio/vnd.wave": ".wav",
    "audio/flac": ".flac",
    "audio/x-flac": ".flac",
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/aiff": ".aiff",
    "audio/x-aiff": ".aiff",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
}


class UploadRefused(Exception):
    """An upload the server will not use: ``status`` (HTTP) and a one-line ``message`` for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def display_name(filename: str) -> str:
    """The client's file name as it may be shown: its last component (``/`` and ``\\`` both separate folders),
    control characters escaped, at most :data:`MAX_NAME` characters. Never used as a path."""
    name = re.split(r"[\\/]", filename)[-1].strip()
    name = shown_path(name)
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1] + "…"


def container_extension(filename: str, content_type: str | None) -> str | None:
    """The extension the upload is stored under: the client's name's own where moodscope reads it, else (a name
    without an extension) one from the part's Content-Type; None when neither says a supported format."""
    base = re.split(r"[\\/]", filename)[-1]
    ext = os.path.splitext(base)[1].lower()
    if ext in SUPPORTED_EXTENSIONS:
        return ext
    if not ext and content_type:
        return CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
    return None


def unknown_format(name: str, filename: str) -> str:
    """The decoder's own message for an extension it does not read (``moodscope predict`` says the same)."""
    ext = os.path.splitext(re.split(r"[\\/]", filename)[-1])[1].lower()
    shown = repr(shown_path(ext)) if ext else "(no extension)"
    supported = ", ".join(sorted(e.lstrip(".") for e in SUPPORTED_EXTENSIONS))
    return f"{name}: unknown audio format {shown} (supported: {supported})"


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a ``multipart/form-data`` Content-Type; None for any other type."""
    ctype, options = parse_options_header(content_type.encode("latin-1", "replace"))
    if ctype != b"multipart/form-data":
        return None
    return options.get(b"boundary") or b""


def too_large(name: str | None, max_file_bytes: int) -> str:
    """The 413 message: the file (where its name is known) and the limit."""
    return f"{name or 'the upload'}: larger than this server's limit of {max_file_bytes / 2**20:g} MiB (--max-mb)"


class Receiver:
    """Feed :meth:`feed` the body's chunks, then call :meth:`finish`; the file lands in ``folder``.

    Parameters
    ----------
    boundary : bytes
        From the request's Content-Type (:func:`boundary_of`).
    folder : Path
        A private folder of this request (created by the caller, removed by the caller).
    max_file_bytes : int
        Largest file accepted; one byte more raises 413 at once.
    names_only : bool
        Stop (raise :class:`NameFound`) as soon as the file's name is known: used to name the file in a 413
        decided from ``Content-Length`` without reading the rest.
    """

    def __init__(
        self, boundary: bytes, folder: Path | None, max_file_bytes: int, *, names_only: bool = False
    ):
        self.folder = folder
        self.max_file_bytes = int(max_file_bytes)
        self.max_body_bytes = self.max_file_bytes + FORM_OVERHEAD
        self.names_only = names_only
        self.received = 0  #: body bytes fed so far
        self.written = 0  #: bytes of the file written so far
        self.name: str | None = None  #: the client's file name as shown (display_name)
        self.path: Path | None = None  #: where the file is being written
        self.complete = False  #: the closing boundary was seen
        self._file = None
        self._in_file = False  #: the current part is the file field
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        if not boundary:
            raise UploadRefused(400, "malformed multipart/form-data request: no boundary in its Content-Type")
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._part_begin,
                    "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                    "on_header_value": self._header_value,
                    "on_header_end": self._header_end,
                    "on_headers_finished": self._headers_finished,
                    "on_part_data": self._part_data,
                    "on_part_end": self._part_end,
                    "on_end": self._end,
                },
            )
        except (FormParserError, ValueError):
            raise UploadRefused(400, "malformed multipart/form-data request: unusable boundary") from None

    # -- the parser's callbacks -----------------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._headers = {}
        self._in_file = False

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value.extend(data[start:end])
        if len(self._value) > MAX_HEADER_BYTES:
            raise self._long_header()

    @staticmethod
    def _long_header() -> UploadRefused:
        return UploadRefused(
            422,
            f"a header of the upload's form is over {MAX_HEADER_BYTES} bytes: a file name this long is refused "
            f"(at most {MAX_HEADER_BYTES // 4} characters); rename the file",
        )

    def _header_end(self) -> None:
        field = self._field.decode("latin-1").strip().lower()
        self._headers[field] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", "").encode("latin-1"))
        field = options.get(b"name", b"").decode("utf-8", "replace")
        if field != FIELD:
            return  # another field of the form: its bytes are counted, not kept
        if self.name is not None:
            raise UploadRefused(
                422, f"{self.name}: one file per request (the form has more than one '{FIELD}')"
            )
        filename = options.get(b"filename", b"").decode("utf-8", "replace")  # browsers send UTF-8 names
        name = display_name(filename)
        if not name:
            raise UploadRefused(422, f"no file uploaded: the form's '{FIELD}' field holds no file")
        self.name = name
        if self.names_only:
            raise NameFound(name)
        ext = container_extension(filename, self._headers.get("content-type"))
        if ext is None:
            raise UploadRefused(422, unknown_format(name, filename))
        self.path = self.folder / f"upload{ext}"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
        self._file = os.fdopen(fd, "wb")
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        self.written += end - start
        if self.written > self.max_file_bytes:
            raise UploadRefused(413, too_large(self.name, self.max_file_bytes))
        self._file.write(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._file.close()
            self._in_file = False

    def _end(self) -> None:
        self.complete = True

    # -- the caller's side ----------------------------------------------------------------------------------
    def feed(self, chunk: bytes) -> None:
        """Parse one chunk of the body (raises :class:`UploadRefused`, or :class:`NameFound` in names-only mode)."""
        room = self.max_body_bytes - self.received
        self.received += len(chunk)
        try:
            self._parser.write(
                chunk[: max(0, room)]
            )  # what fits: it may name the file, or be the file's excess
        except FormParserError as e:
            if "header size" in str(e).lower():  # python-multipart's own limit on one header line
                raise self._long_header() from None
            raise UploadRefused(400, "malformed multipart/form-data body") from None
        if self.received > self.max_body_bytes:
            raise UploadRefused(413, too_large(self.name, self.max_file_bytes))

    def finish(self) -> tuple[Path, str]:
        """After the last chunk: ``(path, name)`` of the uploaded file, or :class:`UploadRefused`."""
        self.close()
        if not self.complete:
            raise UploadRefused(
                400, "malformed multipart/form-data body: it ends before its closing boundary"
            )
        if self.name is None or self.path is None:
            raise UploadRefused(422, f"no file uploaded: the form has no '{FIELD}' field with a file")
        if self.written == 0:
            raise UploadRefused(422, f"{self.name}: empty file (0 bytes)")
        return self.path, self.name

    def close(self) -> None:
        """Close the file being written (the caller removes the folder)."""
        if self._file is not None and not self._file.closed:
            self._file.close()


class NameFound(Exception):
    """Raised by a names-only :class:`Receiver` once the file's name is known (``.name``)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name
