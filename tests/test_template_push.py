"""frontdesk templates push DIR: a folder of templates (one TOML or JSON file each, named by
template id) uploaded as new versions; checked whole first, so a folder with any problem stores
nothing; unchanged templates keep their version."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import frontdesk_cli
from tests.support.client import Api, unique

RECEIPT_TOML = """
category = "transactional"

[channels.email]
subject = "Receipt for order {{ payload.order_id }}"
html = "<p>Thank you, {{ user.name }}.</p>"

[channels.in_app]
title = "Receipt"
body = "Order {{ payload.order_id }} is paid."

[locales.fr.in_app]
title = "Reçu"
"""

NEWSLETTER = {
    "category": "marketing",
    "channels": {
        "email": {
            "subject": "News",
            "html": "<p>News</p><a href='{{ unsubscribe_url }}'>Unsubscribe</a>",
        }
    },
}


async def _push(database_url: str, directory: Path, *options: str) -> tuple[int, str, str]:
    return await frontdesk_cli(database_url, "templates", "push", str(directory), *options)


def _folder(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


async def test_a_folder_is_pushed_then_only_what_changed_gets_a_new_version(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    receipt, newsletter, user_id = unique("receipt"), unique("newsletter"), unique("user")
    folder = _folder(
        tmp_path,
        {
            f"{receipt}.toml": RECEIPT_TOML,
            f"{newsletter}.json": json.dumps(NEWSLETTER),
            "README.md": "not a template",
        },
    )
    first = await _push(database_url, folder)
    _folder(tmp_path, {f"{receipt}.toml": RECEIPT_TOML.replace("Thank you", "Thanks")})

    returncode, stdout, stderr = await _push(database_url, folder)

    assert first[0] == 0, first[2]
    assert "2 stored, 0 unchanged" in first[1]
    assert returncode == 0, stderr
    assert "1 stored, 1 unchanged" in stdout
    receipt_now = (await api.http.get(f"/v1/templates/{receipt}")).json()
    assert receipt_now["version"] == 2
    assert receipt_now["channels"]["email"]["html"] == "<p>Thanks, {{ user.name }}.</p>"
    assert receipt_now["locales"]["fr"]["in_app"]["title"] == "Reçu"
    newsletter_now = (await api.http.get(f"/v1/templates/{newsletter}")).json()
    assert (newsletter_now["version"], newsletter_now["category"]) == (1, "marketing")
    # What was pushed is what the next notification is rendered with.
    await api.put_user(user_id, name="Ada", email=f"{user_id}@example.com", locale="fr-CA")
    sent = await api.send(user_id=user_id, template=receipt, payload={"order_id": "A-1"})
    found = await api.settled(sent.json()["id"])
    assert {d["channel"]: d["status"] for d in found["deliveries"]} == {
        "email": "sent",
        "in_app": "sent",
    }
    inbox = (await api.http.get(f"/v1/users/{user_id}/inbox")).json()["items"]
    assert [item["title"] for item in inbox] == ["Reçu"]


# The folder is checked before frontdesk opens its database: these need no configuration, and
# that the database file is never made shows that nothing was stored.


async def test_a_folder_with_any_bad_file_stores_nothing_and_names_every_problem(
    tmp_path: Path,
) -> None:
    database = tmp_path / "never-opened.db"
    folder = _folder(
        tmp_path / "templates",
        {
            "good.toml": RECEIPT_TOML,
            "broken.toml": "category = ",
            "jinja.json": json.dumps({"channels": {"sms": {"text": "Hello {{ user.name "}}}),
            "fax.json": json.dumps({"channels": {"fax": {"text": "Hi"}}}),
            "twice.json": json.dumps(NEWSLETTER),
            "twice.toml": RECEIPT_TOML,
            "marketing.json": json.dumps(
                {"category": "marketing", "channels": {"email": {"subject": "S", "html": "x"}}}
            ),
            f"{'x' * 201}.json": json.dumps(NEWSLETTER),
        },
    )

    returncode, stdout, stderr = await _push(f"sqlite:///{database}", folder)

    assert returncode == 2, stdout
    assert "nothing stored" in stderr
    assert "broken.toml: is not valid TOML" in stderr
    assert "jinja.json: channels.sms.text" in stderr
    assert "fax.json: channels.fax" in stderr
    assert "twice.toml: template 'twice' is also in twice.json" in stderr
    assert "marketing.json: channels.email.html" in stderr
    assert "unsubscribe_url" in stderr
    assert "not a template id: String should have at most 200 characters" in stderr
    assert "good.toml" not in stderr
    assert not database.exists()


async def test_check_validates_the_folder_and_stores_nothing(tmp_path: Path) -> None:
    database = tmp_path / "never-opened.db"
    folder = _folder(tmp_path / "templates", {"receipt.toml": RECEIPT_TOML})

    returncode, stdout, stderr = await _push(f"sqlite:///{database}", folder, "--check")

    assert returncode == 0, stderr
    assert "1 templates checked, none stored" in stdout
    assert not database.exists()


async def test_a_folder_without_template_files_is_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "templates", {"notes.txt": "nothing here"})

    returncode, _, stderr = await _push(f"sqlite:///{tmp_path / 'unused.db'}", folder)

    assert returncode == 2
    assert "no template files (*.toml or *.json)" in stderr
