"""Quiet hours in the user's own zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from frontdesk.core.models import QuietHours
from frontdesk.core.rules import quiet_hours_end, release_time

ZONES = [
    ZoneInfo(name)
    for name in (
        "Europe/Paris",
        "America/New_York",
        "Australia/Sydney",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "UTC",
    )
]
INSTANTS = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
CLOCK = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30]))


def _inside(moment: datetime, quiet: QuietHours, zone: ZoneInfo) -> bool:
    wall = moment.astimezone(zone).time().replace(tzinfo=None)
    start = time.fromisoformat(quiet.start)
    end = time.fromisoformat(quiet.end)
    if start < end:
        return start <= wall < end
    return wall >= start or wall < end


@given(INSTANTS, CLOCK, CLOCK, st.sampled_from(ZONES))
def test_the_window_ends_later_outside_the_window_and_within_a_day(
    now: datetime, start: str, end: str, zone: ZoneInfo
) -> None:
    quiet = QuietHours(start, end)

    ends = quiet_hours_end(now, quiet, zone)

    if ends is None:
        assert start == end or not _inside(now, quiet, zone)
        return
    assert _inside(now, quiet, zone)
    assert now < ends <= now + timedelta(hours=26)
    assert not _inside(ends, quiet, zone)
    just_before = ends - timedelta(minutes=1)
    jumped = just_before.astimezone(zone).utcoffset() != ends.astimezone(zone).utcoffset()
    assert just_before <= now or _inside(just_before, quiet, zone) or jumped


def test_night_in_paris_ends_at_seven_local_time() -> None:
    now = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)  # midnight in Paris

    ends = quiet_hours_end(now, QuietHours("22:00", "07:00"), ZoneInfo("Europe/Paris"))

    assert ends == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_an_end_skipped_by_spring_forward_ends_at_the_jump() -> None:
    now = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # 01:00 in New York, before the jump

    ends = quiet_hours_end(now, QuietHours("01:00", "02:30"), ZoneInfo("America/New_York"))

    assert ends == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT


def test_the_repeated_hour_of_fall_back_ends_at_its_second_pass_when_inside_it() -> None:
    now = datetime(2026, 11, 1, 6, 10, tzinfo=UTC)  # 01:10 EST, the second 01:10

    ends = quiet_hours_end(now, QuietHours("00:30", "01:30"), ZoneInfo("America/New_York"))

    assert ends == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_daytime_is_not_quiet() -> None:
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    assert quiet_hours_end(now, QuietHours("22:00", "07:00"), ZoneInfo("Europe/Paris")) is None


@given(st.floats(min_value=0, max_value=1, exclude_max=True))
def test_releases_are_spread_over_the_spread_after_the_window(draw: float) -> None:
    end = datetime(2026, 1, 1, 7, 0, tzinfo=UTC)

    released = release_time(end, 300, draw)

    assert end <= released <= end + timedelta(seconds=300)
