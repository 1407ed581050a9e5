"""Template rendering: compile a notification template once, render each channel per locale.

Templates are Jinja in an immutable sandbox: a template cannot change its context or reach
Python internals, and using an undefined variable is an error rather than a silent blank.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn, TypeAlias
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import (
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    Undefined,
    meta,
    pass_context,
)
from jinja2.exceptions import UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

from frontdesk.errors import FieldError, InvalidInput

CHANNEL_FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "email": ("subject", "html", "text"),
        "sms": ("text",),
        "push": ("title", "body", "data"),
        "in_app": ("title", "body", "action_url"),
        "webhook": ("event_type", "body"),
    }
)

# The filters read the Babel locale from the render variables; a Jinja context has no other
# per-render slot, and the leading underscore keeps it clear of the caller's names.
_LOCALE_VAR = "_babel_locale"
_ZONE_VAR = "_zone"


def locale_chain(locale: str | None) -> list[str]:
    """``"zh-Hant-TW"`` -> ``["zh-Hant-TW", "zh-Hant", "zh"]``, most specific first."""
    parts = [part for part in (locale or "").replace("_", "-").split("-") if part]
    return ["-".join(parts[:end]) for end in range(len(parts), 0, -1)]


class RenderFailed(Exception):
    """Rendering one field (``email.subject``) failed; re-rendering cannot succeed either."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{reason} ({field})")
        self.field = field
        self.reason = reason


class MissingVariable(RenderFailed):
    """The template used a variable the context does not define, named by its dotted path."""

    def __init__(self, variable: str, field: str) -> None:
        super().__init__(field, f"template variable {variable!r} is undefined")
        self.variable = variable


class _UndefinedUse(UndefinedError):
    """Carries the undefined's origin out of Jinja so ``render`` can name it by path."""

    def __init__(self, obj: Any, name: Any) -> None:
        super().__init__(f"{name!r} is undefined")
        self.obj = obj
        self.name = name


class _TrackingUndefined(StrictUndefined):
    __slots__ = ()

    def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
        # A hint means the sandbox refused the access: keep its SecurityError.
        if self._undefined_hint is not None or self._undefined_name is None:
            super()._fail_with_undefined_error()
        raise _UndefinedUse(self._undefined_obj, self._undefined_name)


# Jinja binds the failing dunders (__str__, __iter__, __add__, ...) to the base function
# object, so an override alone would not be reached from them.
for _attr in dir(StrictUndefined):
    if getattr(StrictUndefined, _attr) is Undefined._fail_with_undefined_error:
        setattr(_TrackingUndefined, _attr, _TrackingUndefined._fail_with_undefined_error)


def _dotted_path(variables: Mapping[str, Any], obj: Any, name: Any) -> str:
    """Find where ``obj`` sits in the context; only runs on failure, so a full walk is fine."""
    if obj is missing:
        return str(name)
    # Small ints, None and 1-char strings are shared objects: only a unique match is trusted.
    found: list[str] = []
    seen: set[int] = set()
    pending: list[tuple[str, Any]] = list(variables.items())
    while pending:
        path, value = pending.pop()
        if value is obj:
            found.append(path)
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, Mapping):
            pending.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            pending.extend((f"{path}.{index}", item) for index, item in enumerate(value))
    # Not found: e.g. a {% set %} value or a method result; say what it was instead.
    return f"{found[0] if len(found) == 1 else f'<{type(obj).__name__}>'}.{name}"


@lru_cache(maxsize=256)
def _babel_locale(locale: str | None) -> Locale:
    for tag in locale_chain(locale):
        try:
            return Locale.parse(tag, sep="-")
        except (ValueError, UnknownLocaleError):
            continue
    return Locale("en")


def _moment(value: Any) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise TypeError(f"expected an ISO-8601 string or a date, got {type(value).__name__}")


def _number(value: Any) -> int | float | Decimal:
    if isinstance(value, int | float | Decimal):
        return value
    # JSON payloads often carry amounts as strings; Decimal keeps them exact.
    return Decimal(str(value))


def _localised(
    babel_format: Callable[..., str], convert: Callable[[Any], Any]
) -> Callable[..., str]:
    """A filter calling ``babel_format(value, *args, locale=<render locale>)``."""

    @pass_context
    def apply(context: Context, value: Any, *args: Any) -> str:
        return babel_format(convert(value), *args, locale=context[_LOCALE_VAR])

    return apply


@pass_context
def _datetime_in_zone(context: Context, value: Any, style: str = "medium") -> str:
    """A date and time as the recipient reads it: their locale, their time zone."""
    return format_datetime(
        _moment(value), style, tzinfo=context[_ZONE_VAR], locale=context[_LOCALE_VAR]
    )


_FILTERS = {  # {{ x | datetime("short") }}, {{ x | number }}, {{ x | currency("EUR") }}
    "datetime": _datetime_in_zone,
    "date": _localised(format_date, _moment),
    "number": _localised(format_decimal, _number),
    "currency": _localised(format_currency, _number),
}


class _DataEnvironment(ImmutableSandboxedEnvironment):
    """A dotted name into a dict is its key: ``payload.items`` is the payload's "items", not
    dict.items. Template data is JSON, and a key is what the author of ``payload.items``
    means; Jinja's own order (the attribute first) lets dict methods shadow such keys. Taking
    the key first also spares the AttributeError Jinja meets on every dotted name into a
    dict, a good part of a render's time. A key holds data, so the sandbox loses nothing."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


def _environment(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = _DataEnvironment(autoescape=autoescape, undefined=_TrackingUndefined)
    env.filters.update(_FILTERS)
    return env


_PLAIN = _environment(autoescape=False)
# Only email.html is HTML; escaping SMS, push or JSON text would corrupt it.
_HTML = _environment(autoescape=True)
_concat = _PLAIN.concat


class _Leaf(NamedTuple):
    template: Template
    field: str  # the render-time name, "webhook.body.items.0", whatever the locale


_Node: TypeAlias = "_Leaf | dict[str, _Node] | list[_Node] | str | int | float | bool | None"
_JINJA_MARKUP = re.compile(r"\{[{%#]")
_Channels: TypeAlias = dict[str, dict[str, _Node]]


def _render_node(node: _Node, variables: dict[str, Any]) -> Any:
    if isinstance(node, _Leaf):
        try:
            # Template.render would copy the variables into a new context for every field;
            # sharing one prepared dict halves the cost of a field (render() adds the globals).
            template = node.template
            return _concat(template.root_render_func(template.new_context(variables, shared=True)))
        except _UndefinedUse as exc:
            variable = _dotted_path(variables, exc.obj, exc.name)
            raise MissingVariable(variable, node.field) from None
        # Anything else a template provokes (a sandbox refusal, 1/0, a date filter given
        # "soon") is the template's fault too, and retrying will not help.
        except Exception as exc:
            raise RenderFailed(node.field, str(exc)) from exc
    if isinstance(node, dict):
        return {key: _render_node(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [_render_node(item, variables) for item in node]
    return node


class CompiledTemplate:
    """A template whose every field is parsed; build it with :func:`compile_template`."""

    __slots__ = ("_by_key", "_variants", "channels", "locales", "variables")

    def __init__(
        self, default: _Channels, overrides: dict[str, _Channels], variables: frozenset[str]
    ) -> None:
        self.channels: tuple[str, ...] = tuple(default)
        # The top-level names the template reads (payload, user, unsubscribe_url...), so a
        # caller can skip building what no field uses.
        self.variables = variables
        self.locales: tuple[str, ...] = tuple(overrides)
        self._variants: dict[str | None, _Channels] = {None: default}
        self._variants.update(overrides)
        # Reversed so that, of two spellings of one locale, the first listed wins.
        self._by_key = {loc.replace("_", "-").lower(): loc for loc in reversed(self.locales)}

    def resolve_locale(self, requested: str | None) -> str | None:
        """The template's own spelling of the best locale for ``requested``; None = default."""
        for tag in locale_chain(requested):
            if (own := self._by_key.get(tag.lower())) is not None:
                return own
        return None

    def render(
        self,
        channel: str,
        locale: str | None,
        context: Mapping[str, Any],
        zone: str | None = None,
    ) -> dict[str, Any]:
        """Render ``channel``'s fields for a reader in ``locale`` and the IANA ``zone``;
        raises MissingVariable or RenderFailed."""
        fields = self._variants[self.resolve_locale(locale)].get(channel)
        if fields is None:
            raise RenderFailed(channel, "the template has no such channel")
        variables = {
            **_PLAIN.globals,
            **context,
            _LOCALE_VAR: _babel_locale(locale),
            _ZONE_VAR: ZoneInfo(zone) if zone else UTC,
        }
        return {field: _render_node(node, variables) for field, node in fields.items()}


def _compile_value(
    env: ImmutableSandboxedEnvironment,
    value: Any,
    origin: str,
    field: str,
    errors: list[FieldError],
    names: set[str],
) -> _Node:
    # field is the render-time path (webhook.body.items.0); origin adds where it came from.
    if isinstance(value, str):
        if not _JINJA_MARKUP.search(value):
            return value  # plain text: nothing to render, on the hot path or elsewhere
        try:
            names.update(meta.find_undeclared_variables(env.parse(value)))
            return _Leaf(env.from_string(value), field)
        except TemplateSyntaxError as exc:
            errors.append(FieldError(f"{origin}.{field}", f"line {exc.lineno}: {exc.message}"))
            return None
    if isinstance(value, Mapping):
        return {
            str(key): _compile_value(env, item, origin, f"{field}.{key}", errors, names)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _compile_value(env, item, origin, f"{field}.{index}", errors, names)
            for index, item in enumerate(value)
        ]
    return value  # type: ignore[no-any-return]  # a JSON number, boolean or null


def _compile_channel(
    channel: str,
    fields: Mapping[str, Any],
    origin: str,
    errors: list[FieldError],
    names: set[str],
) -> dict[str, _Node]:
    compiled: dict[str, _Node] = {}
    for field, value in fields.items():
        if field not in CHANNEL_FIELDS.get(channel, ()):
            errors.append(FieldError(f"{origin}.{channel}.{field}", "no such channel field"))
            continue
        env = _HTML if (channel, field) == ("email", "html") else _PLAIN
        compiled[field] = _compile_value(env, value, origin, f"{channel}.{field}", errors, names)
    return compiled


def compile_template(body: Mapping[str, Any]) -> CompiledTemplate:
    """Parse every field once; InvalidInput lists each field that does not compile."""
    errors: list[FieldError] = []
    names: set[str] = set()
    default: _Channels = {
        channel: _compile_channel(channel, fields, "channels", errors, names)
        for channel, fields in body.get("channels", {}).items()
    }
    overrides: dict[str, _Channels] = {}
    for locale, channels in body.get("locales", {}).items():
        # Each locale gets every channel, with its overrides merged field by field.
        merged = dict(default)
        for channel, fields in channels.items():
            origin = f"locales.{locale}"
            if channel not in default:
                errors.append(FieldError(f"{origin}.{channel}", "not a channel of this template"))
                continue
            merged[channel] = {
                **default[channel],
                **_compile_channel(channel, fields, origin, errors, names),
            }
        overrides[locale] = merged
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return CompiledTemplate(default, overrides, frozenset(names))
