"""Which channels a notification goes to, and where on each channel the user is reached."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.models import Channel, Device, User
from frontdesk.core.rules import contact_point, select_channels

ANA = User(
    id="usr_ana",
    email="ana@example.test",
    phone="+33612345678",
    devices=(Device("fcm-token-1", "fcm"), Device("apns-token-2", "apns")),
)
NOBODY = User(id="usr_nobody")


def test_without_a_request_every_template_channel_is_selected_in_the_templates_order() -> None:
    selected = select_channels(["push", "email", "in_app"], None)

    assert selected == [Channel.PUSH, Channel.EMAIL, Channel.IN_APP]


def test_the_request_filters_the_templates_channels_but_keeps_the_templates_order() -> None:
    selected = select_channels(["email", "sms", "push"], [Channel.PUSH, Channel.EMAIL])

    assert selected == [Channel.EMAIL, Channel.PUSH]


def test_a_requested_channel_the_template_does_not_define_is_not_selected() -> None:
    assert select_channels(["email"], [Channel.EMAIL, Channel.SMS]) == [Channel.EMAIL]


def test_an_empty_request_selects_no_channel() -> None:
    assert select_channels(["email", "sms"], []) == []


@given(
    st.permutations(list(Channel)).flatmap(
        lambda order: st.integers(min_value=0, max_value=len(order)).map(lambda n: order[:n])
    ),
    st.none() | st.lists(st.sampled_from(list(Channel))),
)
def test_selection_is_the_template_order_restricted_to_the_request(
    template: list[Channel], requested: list[Channel] | None
) -> None:
    selected = select_channels([channel.value for channel in template], requested)

    wanted = set(Channel) if requested is None else set(requested)
    assert selected == [channel for channel in template if channel in wanted]


def test_email_goes_to_the_users_address() -> None:
    assert contact_point(ANA, Channel.EMAIL) == ("ana@example.test", None)


def test_sms_goes_to_the_users_phone_number() -> None:
    assert contact_point(ANA, Channel.SMS) == ("+33612345678", None)


def test_push_goes_to_every_registered_device_as_a_json_list() -> None:
    address, reason = contact_point(ANA, Channel.PUSH)

    assert reason is None
    assert address is not None
    assert json.loads(address) == [
        {"token": "fcm-token-1", "provider": "fcm"},
        {"token": "apns-token-2", "provider": "apns"},
    ]


def test_in_app_reaches_the_user_by_id_even_without_any_contact() -> None:
    assert contact_point(NOBODY, Channel.IN_APP) == ("usr_nobody", None)


@pytest.mark.parametrize(
    ("channel", "reason"),
    [
        (Channel.EMAIL, "the user has no email address"),
        (Channel.SMS, "the user has no phone number"),
        (Channel.PUSH, "the user has no registered device"),
    ],
)
def test_a_user_without_the_contact_is_unreachable_with_a_reason(
    channel: Channel, reason: str
) -> None:
    assert contact_point(NOBODY, channel) == (None, reason)


def test_an_empty_email_address_counts_as_none() -> None:
    assert contact_point(User(id="usr_1", email=""), Channel.EMAIL)[0] is None


def test_webhooks_reach_the_user_by_id_through_the_users_own_endpoints() -> None:
    assert contact_point(NOBODY, Channel.WEBHOOK) == ("usr_nobody", None)
