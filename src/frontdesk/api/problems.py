"""Every error answer is an RFC 9457 problem document; the mapping from errors happens here only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from frontdesk.errors import FieldError, FrontdeskError, InvalidInput, MalformedRequest, RateLimited
from frontdesk.logs import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
_TYPE_BASE = "https://frontdesk.dev/problems/"


class ProblemFieldError(BaseModel):
    field: str = Field(description="The offending input as a dotted path, e.g. payload.order_id")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document: the body of every 4xx and 5xx answer."""

    type: str = Field(description="A URI naming the kind of problem")
    title: str
    status: int
    detail: str
    errors: list[ProblemFieldError] = Field(description="Each offending input; may be empty")


def problem_body(error: FrontdeskError) -> dict[str, Any]:
    return Problem(
        type=_TYPE_BASE + error.type_slug,
        title=error.title,
        status=error.status,
        detail=error.detail,
        errors=[ProblemFieldError(field=e.field, message=e.message) for e in error.errors],
    ).model_dump()


OpenApiResponses = dict[int | str, dict[str, Any]]

# The schema is among the document's components because the batch results embed it
# (views.BatchResults); FastAPI would describe a ``model`` response as application/json.
_PROBLEM_SCHEMA = {"$ref": f"#/components/schemas/{Problem.__name__}"}


def problem(description: str) -> dict[str, Any]:
    """An OpenAPI response (for ``responses=``) whose body is a problem document."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


AUTHENTICATION_PROBLEMS: OpenApiResponses = {
    401: problem("Missing or invalid credentials"),
    403: problem("The credentials do not allow this call"),
}
# Declared on every operation with parameters: it also stands in for FastAPI's default 422,
# whose body ({"detail": [...]}) frontdesk never sends.
INPUT_PROBLEMS: OpenApiResponses = {
    422: problem("Invalid input: each offending field is named in errors"),
}
BODY_PROBLEMS: OpenApiResponses = {
    400: problem("The body is not valid JSON"),
    413: problem("The body is over the limit (server.max_body_bytes)"),
    **INPUT_PROBLEMS,
}
NOT_FOUND: OpenApiResponses = {404: problem("Not found")}
UNEXPECTED: OpenApiResponses = {500: problem("An unexpected error; the server log has more")}


def problem_response(error: FrontdeskError) -> JSONResponse:
    headers = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_seconds)
    return JSONResponse(
        problem_body(error), status_code=error.status, media_type=PROBLEM_JSON, headers=headers
    )


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """("body", "payload", "order_id") -> "payload.order_id"; list indexes become segments."""
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_error(errors: Sequence[Any]) -> FrontdeskError:
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        message = detail.get("ctx", {}).get("error", "invalid JSON")
        return MalformedRequest(f"the request body is not valid JSON: {message}")
    fields = [FieldError(field_path(e["loc"]), validation_message(e)) for e in errors]
    return InvalidInput("; ".join(f"{f.field}: {f.message}" for f in fields), fields)


def validation_message(error: Mapping[str, Any]) -> str:
    if error.get("type") == "extra_forbidden":
        return "unknown field"
    if error.get("type") == "missing":
        return "required field is missing"
    return str(error.get("msg", "invalid value")).removeprefix("Value error, ")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(FrontdeskError)
    async def on_frontdesk_error(_: Request, error: FrontdeskError) -> JSONResponse:
        return problem_response(error)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        return problem_response(validation_error(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        problem = FrontdeskError(str(error.detail))
        problem.status = error.status_code
        problem.title = {404: "Not found", 405: "Method not allowed"}.get(
            error.status_code, "HTTP error"
        )
        problem.type_slug = f"http-{error.status_code}"
        return problem_response(problem)

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", error_type=type(error).__name__)
        return problem_response(FrontdeskError("an unexpected error occurred; see the logs"))
