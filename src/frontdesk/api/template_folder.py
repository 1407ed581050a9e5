"""Templates kept as files in a folder, one per template and named by its id
(``order_shipped.toml``, ``welcome.json``), each holding what ``PUT /v1/templates/{id}`` takes.

A folder is checked whole before anything is stored: every problem in every file is named, so
one run shows all that needs fixing, and a folder with any problem changes nothing.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import orjson
from pydantic import TypeAdapter, ValidationError

from frontdesk.api.problems import field_path, validation_message
from frontdesk.api.routes_templates import NewVersion, new_version
from frontdesk.api.schemas import Id, TemplateIn
from frontdesk.errors import FieldError, FrontdeskError, InvalidInput

SUFFIXES = (".toml", ".json")
_TEMPLATE_ID = TypeAdapter(Id)  # a file's name holds what the API's path would


@dataclass(frozen=True, slots=True)
class TemplateFile:
    path: Path
    template_id: str
    version: NewVersion


def read_template_folder(directory: Path) -> list[TemplateFile]:
    """Every template file of ``directory`` (not its subfolders), checked and compiled, in
    template id order; raises InvalidInput whose fields are ``<file>: <field>``."""
    paths = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in SUFFIXES)
    if not paths:
        names = " or ".join(f"*{suffix}" for suffix in SUFFIXES)
        raise InvalidInput.for_field(str(directory), f"no template files ({names}) in it")
    problems: list[FieldError] = []
    found: list[TemplateFile] = []
    seen: dict[str, Path] = {}
    for path in paths:
        template_id = path.stem
        if template_id in seen:
            problems.append(
                FieldError(
                    path.name, f"template {template_id!r} is also in {seen[template_id].name}"
                )
            )
            continue
        seen[template_id] = path
        try:
            _TEMPLATE_ID.validate_python(template_id)
        except ValidationError as error:
            problems.append(
                FieldError(path.name, f"not a template id: {validation_message(error.errors()[0])}")
            )
            continue
        try:
            found.append(TemplateFile(path, template_id, _version_in(path)))
        except _Problems as error:
            problems.extend(error.problems)
    if problems:
        raise InvalidInput("; ".join(f"{p.field}: {p.message}" for p in problems), problems)
    return sorted(found, key=lambda file: file.template_id)


class _Problems(Exception):
    def __init__(self, problems: list[FieldError]) -> None:
        super().__init__()
        self.problems = problems


def _version_in(path: Path) -> NewVersion:
    """The file's template, checked as the API checks a PUT; raises _Problems naming each
    field (prefixed with the file's name) that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _Problems([FieldError(path.name, f"cannot be read: {error}")]) from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else orjson.loads(text)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError) as error:
        kind = path.suffix.removeprefix(".").upper()
        raise _Problems([FieldError(path.name, f"is not valid {kind}: {error}")]) from None
    try:
        return new_version(TemplateIn.model_validate(data))
    except ValidationError as error:
        raise _Problems(
            [
                FieldError(f"{path.name}: {field_path(e['loc'])}", validation_message(e))
                for e in error.errors()
            ]
        ) from None
    except FrontdeskError as error:
        named = [FieldError(f"{path.name}: {e.field}", e.message) for e in error.errors]
        raise _Problems(named or [FieldError(path.name, error.detail)]) from None
