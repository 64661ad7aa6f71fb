"""``moodscope serve``: a local web service and page for predicting the emotion of uploaded audio.

Needs the ``serve`` extra (``pip install "moodscope[serve]"``: FastAPI, uvicorn, python-multipart). Importing this
package does not import them; :func:`require_extra` says, in one line, what is missing.

>>> from moodscope.serve.app import create_app      # doctest: +SKIP
>>> app = create_app("default", max_mb=100, queue=8)  # an ASGI app: uvicorn, or FastAPI's TestClient
"""

from __future__ import annotations

import importlib

from ..errors import MissingToolError

#: the modules of the ``serve`` extra, by the package that installs them
EXTRA = {"fastapi": "fastapi", "uvicorn": "uvicorn", "python_multipart": "python-multipart"}


def require_extra() -> None:
    """Raise :class:`MissingToolError` (one line) when a package of the ``serve`` extra is not installed."""
    missing = []
    for module, package in EXTRA.items():
        try:
            importlib.import_module(module)
        except ImportError:
            if module == "python_multipart" and _old_multipart():
                continue
            missing.append(package)
    if missing:
        raise MissingToolError(
            f'{", ".join(missing)} not installed: moodscope serve needs it (pip install "moodscope[serve]")'
        )


def _old_multipart() -> bool:
    """python-multipart before 0.0.13 installs the module ``multipart``."""
    try:
        from multipart.multipart import MultipartParser  # noqa: F401
    except ImportError:
        return False
    return True


def serve(**options) -> int:
    """Run the server until interrupted (:func:`moodscope.serve.runner.run`); the extra is checked first."""
    require_extra()
    from .runner import run

    return run(**options)


__all__ = ["EXTRA", "require_extra", "serve"]
