"""Template rendering: locales, strict variables, escaping, sandboxing, i18n filters."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.rendering import (
    CHANNEL_FIELDS,
    MissingVariable,
    RenderFailed,
    compile_template,
    locale_chain,
)
from frontdesk.errors import InvalidInput

CONTEXT: dict[str, Any] = {
    "payload": {"order_id": "A-17", "total": 1234.5},
    "user": {"name": "Ana"},
    "notification": {"id": "ntf_1"},
    "unsubscribe_url": "https://example.test/u",
    "preferences_url": "https://example.test/p",
}


def sms(text: str) -> dict[str, Any]:
    return {"channels": {"sms": {"text": text}}}


def render_sms(text: str, context: dict[str, Any] = CONTEXT, locale: str | None = None) -> str:
    rendered: str = compile_template(sms(text)).render("sms", locale, context)["text"]
    return rendered


def test_channel_fields_name_every_channel_and_its_fields() -> None:
    assert CHANNEL_FIELDS["email"] == ("subject", "html", "text")
    assert set(CHANNEL_FIELDS) == {"email", "sms", "push", "in_app", "webhook"}


def test_locale_chain_drops_one_subtag_at_a_time() -> None:
    assert locale_chain("zh-Hant-TW") == ["zh-Hant-TW", "zh-Hant", "zh"]
    assert locale_chain("fr-CA") == ["fr-CA", "fr"]
    assert locale_chain(None) == []
    assert locale_chain("") == []


def test_fr_ca_falls_back_to_fr_then_to_the_default() -> None:
    template = compile_template(
        {"channels": {"sms": {"text": "Hello"}}, "locales": {"FR": {"sms": {"text": "Bonjour"}}}}
    )

    assert template.resolve_locale("fr-CA") == "FR"
    assert template.render("sms", "fr-CA", CONTEXT) == {"text": "Bonjour"}
    assert template.resolve_locale("de-DE") is None
    assert template.render("sms", "de-DE", CONTEXT) == {"text": "Hello"}


def test_a_locale_overrides_only_the_fields_it_names() -> None:
    template = compile_template(
        {
            "channels": {
                "email": {"subject": "Order {{ payload.order_id }}", "html": "<p>Hi</p>"},
                "sms": {"text": "Shipped"},
            },
            "locales": {"fr": {"email": {"subject": "Commande {{ payload.order_id }}"}}},
        }
    )

    email = template.render("email", "fr", CONTEXT)
    text = template.render("sms", "fr", CONTEXT)

    assert email == {"subject": "Commande A-17", "html": "<p>Hi</p>"}
    assert text == {"text": "Shipped"}
    assert template.channels == ("email", "sms")
    assert template.locales == ("fr",)


def test_an_undefined_payload_variable_raises_naming_its_path() -> None:
    template = compile_template({"channels": {"email": {"subject": "{{ payload.order_id }}"}}})

    with pytest.raises(MissingVariable) as caught:
        template.render("email", None, {"payload": {}})

    assert caught.value.variable == "payload.order_id"
    assert caught.value.field == "email.subject"
    assert str(caught.value) == "template variable 'payload.order_id' is undefined (email.subject)"


def test_a_nested_undefined_names_the_first_missing_step() -> None:
    with pytest.raises(MissingVariable) as caught:
        render_sms("{{ payload.customer.name }}")

    assert caught.value.variable == "payload.customer"


def test_an_undefined_inside_a_list_item_names_its_index() -> None:
    context = {"payload": {"lines": [{"sku": "a"}, {}]}}

    with pytest.raises(MissingVariable) as caught:
        render_sms("{% for line in payload.lines %}{{ line.sku }}{% endfor %}", context)

    assert caught.value.variable == "payload.lines.1.sku"


def test_testing_an_undefined_in_an_if_is_an_error_too() -> None:
    with pytest.raises(MissingVariable):
        render_sms("{% if payload.coupon %}yes{% endif %}")


def test_is_defined_get_and_default_tolerate_missing_variables() -> None:
    text = render_sms(
        "{% if payload.coupon is defined %}C{% else %}no coupon{% endif %}"
        "|{{ payload.get('coupon', 'none') }}|{{ payload.coupon | default('-') }}"
    )

    assert text == "no coupon|none|-"


def test_email_html_is_escaped_but_sms_text_is_not() -> None:
    template = compile_template(
        {
            "channels": {
                "email": {"subject": "{{ user.name }}", "html": "<p>{{ user.name }}</p>"},
                "sms": {"text": "{{ user.name }}"},
            }
        }
    )
    context = {"user": {"name": "<b>Tom & Jerry</b>"}}

    email = template.render("email", None, context)
    text = template.render("sms", None, context)

    assert email["html"] == "<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>"
    assert email["subject"] == "<b>Tom & Jerry</b>"
    assert text["text"] == "<b>Tom & Jerry</b>"


def test_a_syntax_error_reports_the_field_path_and_line() -> None:
    body = {
        "channels": {"email": {"subject": "ok", "html": "<p>\n{{ user.name </p>"}},
        "locales": {"fr": {"email": {"subject": "{% if %}"}}},
    }

    with pytest.raises(InvalidInput) as caught:
        compile_template(body)

    fields = [(error.field, error.message.split(":")[0]) for error in caught.value.errors]
    assert fields == [("channels.email.html", "line 2"), ("locales.fr.email.subject", "line 1")]


def test_a_syntax_error_in_a_webhook_leaf_is_reported_by_its_index() -> None:
    body = {"channels": {"webhook": {"event_type": "x", "body": {"items": ["{{ }}"]}}}}

    with pytest.raises(InvalidInput) as caught:
        compile_template(body)

    assert [error.field for error in caught.value.errors] == ["channels.webhook.body.items.0"]


def test_a_field_the_channel_does_not_have_is_rejected() -> None:
    with pytest.raises(InvalidInput) as caught:
        compile_template({"channels": {"sms": {"txt": "hi"}}})

    assert [error.field for error in caught.value.errors] == ["channels.sms.txt"]


def test_webhook_body_renders_nested_leaves_and_keeps_numbers() -> None:
    body = {"order": "{{ payload.order_id }}", "qty": 3, "items": ["{{ user.name }}", None, True]}
    template = compile_template(
        {"channels": {"webhook": {"event_type": "order.shipped", "body": body}}}
    )

    rendered = template.render("webhook", None, CONTEXT)

    assert rendered == {
        "event_type": "order.shipped",
        "body": {"order": "A-17", "qty": 3, "items": ["Ana", None, True]},
    }


def test_omitted_optional_fields_are_absent() -> None:
    template = compile_template({"channels": {"in_app": {"title": "T", "body": "B"}}})

    assert template.render("in_app", None, CONTEXT) == {"title": "T", "body": "B"}


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ payload.update({'order_id': 'x'}) }}",
    ],
)
def test_the_sandbox_refuses_python_internals_and_mutation(source: str) -> None:
    with pytest.raises(RenderFailed) as caught:
        render_sms(source)

    assert caught.value.field == "sms.text"
    assert "unsafe" in caught.value.reason


def test_a_dotted_name_into_the_payload_is_its_key_even_where_dicts_have_a_method() -> None:
    context = {"payload": {"items": ["tea", "cake"], "keys": 3}}

    text = render_sms(
        "{% for item in payload.items %}{{ item }} {% endfor %}{{ payload.keys }}", context
    )

    assert text == "tea cake 3"


def test_a_dict_method_is_still_callable_where_no_key_shadows_it() -> None:
    assert render_sms("{% for k, v in payload.items() %}{{ k }}={{ v }};{% endfor %}") == (
        "order_id=A-17;total=1234.5;"
    )


def test_a_key_named_like_an_internal_yields_data_never_the_internal() -> None:
    context = {"payload": {"__class__": "plain text"}}

    assert render_sms("{{ payload.__class__ }}", context) == "plain text"


def test_a_template_cannot_change_the_callers_context() -> None:
    context = {"payload": {"tags": ["a"]}}

    with pytest.raises(RenderFailed):
        render_sms("{{ payload.tags.append('b') }}", context)

    assert context == {"payload": {"tags": ["a"]}}


def test_a_runtime_fault_is_reported_with_its_field() -> None:
    with pytest.raises(RenderFailed, match=r"\(sms\.text\)$"):
        render_sms("{{ payload.total / 0 }}")


def test_currency_and_number_follow_the_render_locale() -> None:
    source = "{{ payload.total | currency('EUR') }} {{ payload.total | number }}"

    english = render_sms(source, locale="en")
    french = render_sms(source, locale="fr-CA")

    assert english == "€1,234.50 1,234.5"
    assert french == "1\xa0234,50\xa0€ 1\xa0234,5"


def test_an_unknown_locale_formats_as_english() -> None:
    assert render_sms("{{ payload.total | number }}", locale="xx-YY") == "1,234.5"


def test_date_and_datetime_format_iso_strings_per_locale() -> None:
    context = {"payload": {"at": "2024-05-01T13:45:00+00:00"}}

    date_fr = render_sms("{{ payload.at | date('long') }}", context, locale="fr")
    stamp_en = render_sms("{{ payload.at | datetime('short') }}", context, locale="en")

    assert date_fr == "1 mai 2024"
    assert stamp_en == "5/1/24, 1:45\u202fPM"


def test_a_channel_the_template_lacks_cannot_be_rendered() -> None:
    with pytest.raises(RenderFailed):
        compile_template(sms("hi")).render("push", None, CONTEXT)


@given(st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="{}")))
def test_a_printed_payload_value_comes_out_verbatim(value: str) -> None:
    assert render_sms("{{ payload.v }}", {"payload": {"v": value}}) == value
