"""The pages' Jinja environment (autoescaping, from the package's templates folder) and the
static files (the inbox component's script, the stylesheet)."""

from __future__ import annotations

from pathlib import Path

from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

_HERE = Path(__file__).parent.parent

templates = Jinja2Templates(directory=_HERE / "templates")


def static_files() -> StaticFiles:
    return StaticFiles(directory=_HERE / "static")
