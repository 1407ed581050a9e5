"""The hosted preference centre, reached by a signed link: a person sees and changes their
opt-ins per category and channel, their quiet hours and time zone, in their own language.
Saving writes the same preferences as ``PUT /v1/users/{id}/preferences``, audited as the user."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from frontdesk.api.pages.rendering import templates
from frontdesk.api.services import ApiServices, get_services
from frontdesk.core.models import Actor, Category, Channel, Preferences, Priority, User
from frontdesk.core.rules import SMS_MARKETING_CONSENT, decide
from frontdesk.core.tokens import PREFERENCES, InvalidToken, verify_token

router = APIRouter(tags=["pages"], include_in_schema=False)

# The channels a person chooses between; webhooks are an integrator's, not a person's.
PAGE_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.PUSH, Channel.IN_APP)
# The IANA zones under the world's regions: the legacy aliases (US/Eastern, Zulu...) and the
# Etc/ offsets would only lengthen the list. Any valid zone is still accepted when saved.
_REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)
_KNOWN_ZONES = frozenset(available_timezones())  # read from disk: once, not per request
TIME_ZONES = ["UTC", *sorted(zone for zone in _KNOWN_ZONES if zone.startswith(_REGIONS))]
# A select rather than <input type=time>: its keyboard use does not change with the browser's
# 12- or 24-hour format, and it cannot hold half a time.
QUIET_TIMES = [f"{hour:02d}:{minute:02d}" for hour in range(24) for minute in (0, 30)]
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# The link lives in a URL and the page shows personal data: keep it out of caches, other
# sites' referrers, search engines and other sites' frames (a framed form invites
# clickjacking). Not "no-referrer": with it, browsers send the form's Origin as "null".
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
}

DEFAULT_LANGUAGE = "en"
TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "title": "Your notification preferences",
        "introduction": "Choose what we send you, and where.",
        "category.transactional": "About your account and orders",
        "category.transactional.hint": "Receipts, shipping updates, security alerts.",
        "category.marketing": "News and offers",
        "category.marketing.hint": "Newsletters, promotions and recommendations.",
        "channel.email": "Email",
        "channel.sms": "Text message (SMS)",
        "channel.push": "Push notification",
        "channel.in_app": "In-app inbox",
        "needs_consent": "Marketing texts need your written consent, which we do not have.",
        "quiet_hours": "Quiet hours",
        "quiet_hours.hint": "Texts and push notifications wait until quiet hours end.",
        "quiet_hours.none": "No quiet hours",
        "quiet_hours.start": "From",
        "quiet_hours.end": "Until",
        "timezone": "Time zone",
        "timezone.unset": "Not set (UTC)",
        "save": "Save preferences",
        "saved": "Your preferences are saved.",
        "errors": "Please correct the following:",
        "error.time": "Choose a time of day from the list.",
        "error.quiet_hours_pair": "Choose both times, or no quiet hours in both.",
        "error.timezone": "Choose a time zone from the list.",
        "link.invalid.title": "This link is not valid",
        "link.invalid": "Open the preferences link from one of our recent messages again.",
        "link.expired.title": "This link has expired",
        "link.expired": "Links to this page last a limited time. "
        "Use the link in a more recent message.",
        "link.no_user.title": "Nothing to show",
        "link.no_user": "We hold no preferences for this link any more.",
        "link.foreign_origin.title": "This form was sent from another site",
        "link.foreign_origin": "Nothing was changed. Open the preferences link again.",
    },
    "fr": {
        "title": "Vos préférences de notification",
        "introduction": "Choisissez ce que nous vous envoyons, et par quel moyen.",
        "category.transactional": "Votre compte et vos commandes",
        "category.transactional.hint": "Reçus, suivi des livraisons, alertes de sécurité.",
        "category.marketing": "Actualités et offres",
        "category.marketing.hint": "Lettres d'information, promotions et recommandations.",
        "channel.email": "E-mail",
        "channel.sms": "SMS",
        "channel.push": "Notification push",
        "channel.in_app": "Boîte de réception de l'application",
        "needs_consent": "Les SMS promotionnels demandent votre consentement écrit, "
        "que nous n'avons pas.",
        "quiet_hours": "Heures calmes",
        "quiet_hours.hint": "Les SMS et notifications push attendent la fin des heures calmes.",
        "quiet_hours.none": "Pas d'heures calmes",
        "quiet_hours.start": "De",
        "quiet_hours.end": "À",
        "timezone": "Fuseau horaire",
        "timezone.unset": "Non défini (UTC)",
        "save": "Enregistrer mes préférences",
        "saved": "Vos préférences sont enregistrées.",
        "errors": "Veuillez corriger ce qui suit :",
        "error.time": "Choisissez une heure dans la liste.",
        "error.quiet_hours_pair": "Choisissez les deux heures, ou aucune heure calme pour les "
        "deux.",
        "error.timezone": "Choisissez un fuseau horaire dans la liste.",
        "link.invalid.title": "Ce lien n'est pas valide",
        "link.invalid": "Ouvrez à nouveau le lien des préférences depuis l'un de nos messages "
        "récents.",
        "link.expired.title": "Ce lien a expiré",
        "link.expired": "Les liens vers cette page ont une durée limitée. "
        "Utilisez le lien d'un message plus récent.",
        "link.no_user.title": "Rien à afficher",
        "link.no_user": "Nous ne conservons plus de préférences pour ce lien.",
        "link.foreign_origin.title": "Ce formulaire a été envoyé depuis un autre site",
        "link.foreign_origin": "Rien n'a été modifié. Ouvrez à nouveau le lien des préférences.",
    },
}


def texts_for(locale: str | None) -> tuple[str, Mapping[str, str]]:
    """(language, texts) for a BCP 47 locale: fr-CA falls back to fr, anything unknown to
    English."""
    language = _language_of(locale or "")
    if language not in TEXTS:
        language = DEFAULT_LANGUAGE
    return language, TEXTS[language]


def _language_of(tag: str) -> str:
    return tag.strip().replace("_", "-").split("-")[0].lower()


def _texts_for_visitor(request: Request) -> tuple[str, Mapping[str, str]]:
    """Without a valid link there is no user to take a locale from: the browser's languages,
    in the order it sends them, choose instead."""
    for entry in request.headers.get("accept-language", "").split(","):
        language = _language_of(entry.split(";")[0])
        if language in TEXTS:
            return language, TEXTS[language]
    return texts_for(None)


class LinkRefused(Exception):
    """Why the page cannot be shown or saved: the answer's status, and the catalogue key of
    the texts that say so."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Choice:
    """One checkbox: whether ``category`` may reach the person on ``channel``."""

    category: Category
    channel: Channel
    opted_in: bool
    # Marketing texts need recorded consent, which this page cannot give.
    locked: bool

    @property
    def key(self) -> str:
        return f"{self.category.value}.{self.channel.value}"


def current_choices(user: User) -> list[Choice]:
    """What the person would receive now, per category and channel, by the same rule the
    orchestrator applies (template-specific choices aside)."""
    consented = user.consent.get(SMS_MARKETING_CONSENT, False)
    choices = []
    for category in Category:
        for channel in PAGE_CHANNELS:
            decision = decide(
                user.preferences,
                user.consent,
                category=category,
                template_id="",
                channel=channel,
                priority=Priority.NORMAL,
            )
            locked = category is Category.MARKETING and channel is Channel.SMS and not consented
            choices.append(Choice(category, channel, decision.allowed, locked))
    return choices


def _user_id_from(services: ApiServices, token: str) -> str:
    now = services.clock.now()
    try:
        return verify_token(services.links.secret, PREFERENCES, token, now)
    except InvalidToken:
        pass
    # InvalidToken does not say why. A token that checks out at the epoch was signed by us and
    # is only out of date: that deserves "expired" (410), not "invalid" (403).
    try:
        verify_token(services.links.secret, PREFERENCES, token, datetime.fromtimestamp(0, UTC))
    except InvalidToken:
        raise LinkRefused(403, "link.invalid") from None
    raise LinkRefused(410, "link.expired")


async def _user(services: ApiServices, token: str) -> User:
    user_id = _user_id_from(services, token)
    found = await services.store.get_users([user_id])
    if user_id not in found:  # erased since the link was sent
        raise LinkRefused(404, "link.no_user")
    return found[user_id]


def _check_origin(request: Request, services: ApiServices) -> None:
    """The defence against cross-site request forgery. There is no session cookie to ride
    on: the signed token in the form is the credential, and another site has it only if the
    person's link leaked. Should it have, a browser still names the page that sent the form
    (Origin), and that must be this site: as configured (server.public_url) or as this
    request reached it. Clients that send no Origin are not browsers, and hold the token."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    ours = {_origin_of(services.settings.server.public_url), _origin_of(str(request.base_url))}
    if origin.lower() not in ours:
        raise LinkRefused(403, "link.foreign_origin")


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True, slots=True)
class FormState:
    """What the form shows: the stored choices, or what was just entered."""

    choices: list[Choice]
    quiet_start: str
    quiet_end: str
    timezone: str

    @classmethod
    def of(cls, user: User) -> FormState:
        quiet = user.quiet_hours
        return cls(
            current_choices(user),
            quiet.start if quiet else "",
            quiet.end if quiet else "",
            user.timezone or "",
        )

    @classmethod
    def entered(cls, user: User, form: Mapping[str, list[str]]) -> FormState:
        opted_in = set(form.get("opt_in", []))
        # Only the choices this page offers are read: a locked one keeps its stored value.
        choices = [
            choice if choice.locked else replace(choice, opted_in=choice.key in opted_in)
            for choice in current_choices(user)
        ]
        return cls(
            choices,
            form.get("quiet_start", [""])[0],
            form.get("quiet_end", [""])[0],
            form.get("timezone", [""])[0],
        )

    def errors(self) -> dict[str, str]:
        """Field id → the catalogue key of what is wrong with it."""
        errors = {}
        for field, value in (("quiet_start", self.quiet_start), ("quiet_end", self.quiet_end)):
            if value and not _HHMM.match(value):
                errors[field] = "error.time"
        if not errors and bool(self.quiet_start) != bool(self.quiet_end):
            missing = "quiet_end" if self.quiet_start else "quiet_start"
            errors[missing] = "error.quiet_hours_pair"
        if self.timezone and self.timezone not in _KNOWN_ZONES:
            errors["timezone"] = "error.timezone"
        return errors


@router.get("/preferences", response_class=HTMLResponse)
async def preference_centre(
    request: Request, token: str = "", services: ApiServices = Depends(get_services)
) -> HTMLResponse:
    """The page behind ``{{ preferences_url }}``. Opening it changes nothing."""
    try:
        user = await _user(services, token)
    except LinkRefused as refused:
        return _refusal_page(request, refused)
    return _centre_page(request, user, token, FormState.of(user))


@router.post("/preferences", response_class=HTMLResponse)
async def save_preferences(
    request: Request, services: ApiServices = Depends(get_services)
) -> HTMLResponse:
    """Save the form. A refused link or a foreign origin changes nothing; bad values show
    the form again with what was entered and what to correct."""
    # The form is URL-encoded and small, so the standard library reads it.
    form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    token = form.get("token", [""])[0]
    try:
        _check_origin(request, services)
        user = await _user(services, token)
    except LinkRefused as refused:
        return _refusal_page(request, refused)

    entered = FormState.entered(user, form)
    errors = entered.errors()
    if errors:
        return _centre_page(request, user, token, entered, errors=errors, status=422)
    await _save(services, user, entered)
    (saved,) = (await services.store.get_users([user.id])).values()
    return _centre_page(request, saved, token, FormState.of(saved), saved=True)


async def _save(services: ApiServices, user: User, entered: FormState) -> None:
    """Quiet hours and time zone live on the user; the opt-ins are preferences, written as
    the preferences API writes them, with the user as the audited actor."""
    record = await services.store.get_user_record(user.id)
    quiet_hours = (
        {"start": entered.quiet_start, "end": entered.quiet_end} if entered.quiet_start else None
    )
    await services.store.put_user(
        user.id, {**record, "timezone": entered.timezone or None, "quiet_hours": quiet_hours}
    )
    chosen = {choice.key: choice.opted_in for choice in entered.choices if not choice.locked}

    def change(stored: Preferences) -> Preferences:
        categories = {name: dict(rule) for name, rule in stored.categories.items()}
        for key, opted_in in chosen.items():
            category, _, channel = key.partition(".")
            categories.setdefault(category, {})[channel] = opted_in
        # As through the API: choosing a category on a channel again lifts an unsubscribe.
        return replace(
            stored, categories=categories, unsubscribed=stored.unsubscribed - chosen.keys()
        )

    await services.store.put_preferences(
        user.id, change, Actor.USER, reason="saved in the preference centre"
    )


def _centre_page(
    request: Request,
    user: User,
    token: str,
    shown: FormState,
    *,
    errors: Mapping[str, str] | None = None,
    saved: bool = False,
    status: int = 200,
) -> HTMLResponse:
    language, texts = texts_for(user.locale)
    context: dict[str, Any] = {
        "lang": language,
        "t": texts,
        "token": token,
        "categories": [
            (category, [choice for choice in shown.choices if choice.category is category])
            for category in Category
        ],
        "form": shown,
        "quiet_start_times": _offered(QUIET_TIMES, shown.quiet_start),
        "quiet_end_times": _offered(QUIET_TIMES, shown.quiet_end),
        "time_zones": _offered(TIME_ZONES, shown.timezone),
        "errors": errors or {},
        "saved": saved,
    }
    return templates.TemplateResponse(
        request, "preferences/centre.html", context, status_code=status, headers=_PAGE_HEADERS
    )


def _offered(offered: list[str], current: str) -> list[str]:
    """The options of a select, with the current value among them even when the API stored
    one the page does not offer, so that saving the page does not lose it."""
    if not current or current in offered:
        return offered
    return sorted([*offered, current])


def _refusal_page(request: Request, refused: LinkRefused) -> HTMLResponse:
    language, texts = _texts_for_visitor(request)
    context = {"lang": language, "t": texts, "reason": refused.reason}
    return templates.TemplateResponse(
        request,
        "preferences/refused.html",
        context,
        status_code=refused.status,
        headers=_PAGE_HEADERS,
    )
