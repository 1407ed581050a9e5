"""The preference rule: most specific wins; consent and unsubscribes come first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.models import (
    Category,
    Channel,
    DeliveryStatus,
    Device,
    Preferences,
    Priority,
    SuppressionKind,
    User,
)
from frontdesk.core.rules import decide, screen

CHOICE = st.one_of(st.none(), st.booleans())


def _decide(preferences: Preferences, **overrides: object) -> bool:
    arguments: dict[str, object] = {
        "category": Category.TRANSACTIONAL,
        "template_id": "order_shipped",
        "channel": Channel.EMAIL,
        "priority": Priority.NORMAL,
        **overrides,
    }
    return decide(preferences, {}, **arguments).allowed  # type: ignore[arg-type]


@given(template=CHOICE, category=CHOICE, channel=CHOICE)
def test_the_most_specific_rule_given_decides(
    template: bool | None, category: bool | None, channel: bool | None
) -> None:
    preferences = Preferences(
        channels={} if channel is None else {"email": channel},
        categories={} if category is None else {"transactional": {"email": category}},
        templates={} if template is None else {"order_shipped": {"email": template}},
    )

    expected = next((c for c in (template, category, channel) if c is not None), True)

    assert _decide(preferences) is expected


def test_transactional_is_opted_in_by_default() -> None:
    assert _decide(Preferences())


@pytest.mark.parametrize(("consent", "allowed"), [({}, False), ({"sms_marketing": True}, True)])
def test_marketing_sms_needs_recorded_consent(consent: dict[str, bool], allowed: bool) -> None:
    decision = decide(
        Preferences(),
        consent,
        category=Category.MARKETING,
        template_id="sale",
        channel=Channel.SMS,
        priority=Priority.NORMAL,
    )

    assert decision.allowed is allowed


def test_critical_bypasses_an_opt_out_but_not_an_unsubscribe() -> None:
    opted_out = Preferences(channels={"email": False})
    unsubscribed = Preferences(unsubscribed=frozenset({"marketing.email"}))

    assert _decide(opted_out, priority=Priority.CRITICAL)
    assert not _decide(unsubscribed, category=Category.MARKETING, priority=Priority.CRITICAL)


def test_critical_does_not_bypass_marketing_sms_consent() -> None:
    decision = decide(
        Preferences(),
        {},
        category=Category.MARKETING,
        template_id="sale",
        channel=Channel.SMS,
        priority=Priority.CRITICAL,
    )

    assert not decision.allowed


def test_screen_suppresses_before_it_asks_preferences() -> None:
    user = User(id="u", email="a@example.com", preferences=Preferences(channels={"email": True}))

    screening = screen(
        user,
        Channel.EMAIL,
        category=Category.TRANSACTIONAL,
        template_id="t",
        priority=Priority.CRITICAL,
        suppressed={("email", "a@example.com"): SuppressionKind.SUPPRESSED},
    )

    assert screening.status is DeliveryStatus.SUPPRESSED


def test_screen_drops_only_the_suppressed_device_tokens() -> None:
    user = User(id="u", devices=(Device("good", "fcm"), Device("dead", "apns")))

    screening = screen(
        user,
        Channel.PUSH,
        category=Category.TRANSACTIONAL,
        template_id="t",
        priority=Priority.NORMAL,
        suppressed={("push", "dead"): SuppressionKind.SUPPRESSED},
    )

    assert screening.status is None
    assert screening.recipient == '[{"token": "good", "provider": "fcm"}]'
