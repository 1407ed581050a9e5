"""A burst of SMS is smoothed to the Twilio account's rate: none meets a 429, none is lost.

2,000 notifications are queued at once against an account configured at 100 sends a second;
the fake Twilio enforces that same limit itself and measures what arrives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fakes.twilio import TwilioFake
from tests.support.client import Api, eventually, unique
from tests.support.instance import instance_of_its_own, providers_environment

ACCOUNT_SID = "AC" + "7a3c" * 8
AUTH_TOKEN = "twilio-auth-token-41d2b6e8f0a3c5e7"
RATE_PER_SECOND = 100
BURST = 10
# The bucket lets out at most BURST + RATE_PER_SECOND sends in any one second, and a full
# burst followed by a second of refills reaches exactly that. Arrivals are timed by the fake,
# which shares the test's event loop with frontdesk: on a loaded machine a send can arrive
# some milliseconds after it left, and bunch with the next ones (seen: 110 or 111 of 110, and
# once, in a full run, enough to meet the fake's limit). The peak is allowed that much; the
# fake answers 429 only past a little more.
ARRIVAL_JITTER = 5
FAKE_TOLERANCE = 10
MESSAGES = 2_000
BATCH = 1_000


@dataclass
class Account:
    api: Api
    fake: TwilioFake


@pytest.fixture(scope="module")
async def account(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Account]:
    fake = TwilioFake(
        ACCOUNT_SID, AUTH_TOKEN, rate_per_second=RATE_PER_SECOND, burst=BURST + FAKE_TOLERANCE
    )
    async with fake.serving():
        environment = {
            **providers_environment(
                "sms",
                {
                    "type": "twilio",
                    "account_sid": ACCOUNT_SID,
                    "auth_token": AUTH_TOKEN,
                    "from": "+15005550006",
                    "base_url": fake.base_url,
                    "rate_per_second": RATE_PER_SECOND,
                    "burst": BURST,
                },
            ),
            "FRONTDESK_CHANNELS__SMS__CONCURRENCY": "50",
        }
        directory = tmp_path_factory.mktemp("sms-throttling")
        async with instance_of_its_own("sqlite", directory, environment=environment) as (api, _):
            yield Account(api, fake)


async def _users_with_phones(api: Api, count: int) -> list[str]:
    gate = asyncio.Semaphore(32)

    async def put(index: int) -> str:
        async with gate:
            return await api.put_user(f"sms-burst-{index}", phone=f"+1201555{index:04d}")

    return await asyncio.gather(*(put(index) for index in range(count)))


async def _queue_at_once(api: Api, template: str, user_ids: list[str]) -> list[str]:
    def batch(users: list[str]) -> dict[str, Any]:
        return {
            "notifications": [
                {"event_id": unique("evt"), "user_id": user_id, "template": template}
                for user_id in users
            ]
        }

    answers = await asyncio.gather(
        *(
            api.http.post("/v1/notifications/batch", json=batch(user_ids[start : start + BATCH]))
            for start in range(0, len(user_ids), BATCH)
        )
    )
    ids = []
    for answer in answers:
        assert answer.status_code == 200, answer.text
        ids += [result["id"] for result in answer.json()["results"]]
    return ids


async def test_burst_of_sms_is_sent_at_the_account_rate_without_a_429(account: Account) -> None:
    api, fake = account.api, account.fake
    user_ids = await _users_with_phones(api, MESSAGES)
    template = await api.put_template({"channels": {"sms": {"text": "Your code is 4242"}}})

    notification_ids = await _queue_at_once(api, template, user_ids)

    async def all_arrived() -> bool:
        return len(fake.messages) >= MESSAGES

    await eventually(all_arrived, timeout=90, interval=0.5)
    arrivals = [message.at for message in fake.messages]
    seconds = max(arrivals) - min(arrivals)
    peak = fake.max_in_any_second()
    print(
        f"\n{MESSAGES} SMS in {seconds:.1f}s ({MESSAGES / seconds:.1f}/s); "
        f"max in any 1-s window: {peak}; 429s: {fake.throttled}"
    )
    assert fake.throttled == 0
    assert len({message.form["To"] for message in fake.messages}) == MESSAGES
    assert peak <= RATE_PER_SECOND + BURST + ARRIVAL_JITTER
    assert MESSAGES / seconds == pytest.approx(RATE_PER_SECOND, rel=0.15)
    for notification_id in notification_ids[:: MESSAGES // 50]:
        (delivery,) = (await api.settled(notification_id))["deliveries"]
        assert delivery["status"] == "sent"
