"""Cron parsing, validation and fire times across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conveyor.errors import InvalidSchedule, ValidationError
from conveyor.scheduler import Cron, Schedule

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(expr: str, zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    out = []
    for instant in Cron.parse(expr).iter_after(start, zone):
        if instant > end:
            break
        out.append(instant)
    return out


@pytest.mark.parametrize(
    ("expr", "field"),
    [
        ("61 * * * *", "cron.minute"),
        ("*/0 * * * *", "cron.minute"),
        ("0 24 * * *", "cron.hour"),
        ("0 0 0 * *", "cron.day_of_month"),
        ("0 0 30 2 *", "cron.day_of_month"),  # never fires
        ("0 0 31 4,6,9,11 *", "cron.day_of_month"),  # never fires either
        ("0 0 * 13 *", "cron.month"),
        ("0 0 * * 8", "cron.day_of_week"),
        ("0 0 * * mon-xyz", "cron.day_of_week"),
        ("5-1 * * * *", "cron.minute"),
        ("* * * *", "cron"),
        ("a b c d e", "cron.minute"),
    ],
)
def test_bad_expressions_are_typed_errors_naming_the_field(expr: str, field: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Cron.parse(expr)
    assert caught.value.field == field
    assert isinstance(caught.value, ValidationError)


def test_lists_ranges_steps_and_names() -> None:
    cron = Cron.parse("0,30 9-17/4 * jan-mar mon-fri")
    assert cron.minutes == (0, 30) and cron.hours == (9, 13, 17)
    assert cron.months == {1, 2, 3} and cron.weekdays == {0, 1, 2, 3, 4}
    # 2026-01-03 is a Saturday: the next fire is Monday 09:00.
    assert Cron.parse("0 9 * * mon-fri").next_after(utc(2026, 1, 3), ZoneInfo("UTC")) == utc(
        2026, 1, 5, 9
    )


def test_both_day_fields_restricted_match_either() -> None:
    # Classic cron: the 13th, or any Friday.
    got = fires("0 0 13 * fri", ZoneInfo("UTC"), utc(2026, 2, 1), utc(2026, 2, 28))
    assert [d.day for d in got] == [6, 13, 20, 27]


def test_february_29_fires_in_leap_years_only() -> None:
    got = Cron.parse("0 0 29 2 *").next_after(utc(2026, 1, 1), ZoneInfo("UTC"))
    assert got == utc(2028, 2, 29)


def test_spring_forward_a_skipped_time_fires_once_shifted_by_the_gap() -> None:
    # Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    got = fires("30 2 * * *", BERLIN, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    local = [g.astimezone(BERLIN).strftime("%m-%d %H:%M %Z") for g in got]
    assert local == ["03-28 02:30 CET", "03-29 03:30 CEST", "03-30 02:30 CEST"]


def test_spring_forward_hourly_fires_once_per_real_hour() -> None:
    got = fires("0 * * * *", BERLIN, utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 3, 30))
    # 01:00 CET, then 02:00 (skipped, shifted to 03:00 CEST = the real 03:00), 04:00, 05:00.
    assert got == [utc(2026, 3, 29, 0), utc(2026, 3, 29, 1), utc(2026, 3, 29, 2),
                   utc(2026, 3, 29, 3)]  # fmt: skip
    assert len(set(got)) == len(got)


def test_fall_back_a_repeated_time_fires_once_at_its_first_occurrence() -> None:
    # Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    got = fires("30 2 * * *", BERLIN, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert got == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    assert got[0].astimezone(BERLIN).strftime("%H:%M %Z") == "02:30 CEST"


def test_fall_back_every_half_hour_skips_the_repeated_wall_times() -> None:
    got = fires("*/30 * * * *", BERLIN, utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 15))
    local = [g.astimezone(BERLIN).strftime("%H:%M %Z") for g in got]
    assert local == ["02:00 CEST", "02:30 CEST", "03:00 CET"]


def test_new_york_daily_job_keeps_its_wall_time_across_both_changes() -> None:
    spring = fires("0 9 * * *", NEW_YORK, utc(2026, 3, 7, 12), utc(2026, 3, 9, 15))
    assert [g.hour for g in spring] == [14, 13, 13]  # 09:00 EST, then 09:00 EDT
    autumn = fires("0 9 * * *", NEW_YORK, utc(2026, 10, 31, 12), utc(2026, 11, 2, 15))
    assert [g.hour for g in autumn] == [13, 14, 14]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "cron"),
        ({"cron": "* * * * *", "every": 5}, "cron"),
        ({"cron": "61 * * * *"}, "cron.minute"),
        ({"every": 0}, "every"),
        ({"every": -5}, "every"),
        ({"every": float("nan")}, "every"),
        ({"every": 5, "tz": "Mars/Olympus"}, "tz"),
        ({"every": 5, "max_runs": 0}, "max_runs"),
        ({"every": 5, "catch_up": "sometimes"}, "catch_up"),
        ({"every": 5, "catch_up_limit": 0}, "catch_up_limit"),
        ({"every": 5, "grace": -1}, "grace"),
        ({"every": 5, "priority": 5000}, "priority"),
        ({"every": 5, "start": utc(2026, 1, 2), "end": utc(2026, 1, 1)}, "end"),
        ({"cron": "0 0 1 1 *", "start": utc(2026, 1, 2), "end": utc(2026, 6, 1)}, "end"),
        ({"every": 5, "start": "tomorrow"}, "start"),
    ],
)
def test_bad_schedules_are_typed_errors_naming_the_field(
    kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Schedule("s", "job", **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize(("sid", "field"), [("", "id"), ("a:b", "id"), ("x" * 151, "id")])
def test_bad_schedule_ids_and_names(sid: str, field: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Schedule(sid, "job", every=5)
    assert caught.value.field == field
    with pytest.raises(InvalidSchedule) as caught:
        Schedule("ok", "", every=5)
    assert caught.value.field == "job"


def test_interval_fire_times_are_aligned_and_bounded() -> None:
    start = utc(2026, 1, 1, 0, 0, 10)
    s = Schedule("s", "j", every=60, start=start, end=start + timedelta(minutes=2))
    got = list(s.iter_after(utc(2025, 1, 1)))
    assert got == [start, start + timedelta(minutes=1), start + timedelta(minutes=2)]
    free = Schedule("t", "j", every=60)
    assert free.next_after(utc(2026, 1, 1, 0, 0, 30)) == utc(2026, 1, 1, 0, 1)


def test_naive_start_is_read_in_the_schedule_time_zone() -> None:
    s = Schedule("s", "j", cron="0 9 * * *", tz="Europe/Berlin", start=datetime(2026, 7, 1))
    assert s.next_after(utc(2026, 1, 1)) == utc(2026, 7, 1, 7)


def test_catch_up_policies_choose_fire_times() -> None:
    first, now = utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 0, 10, 30)
    base = {"every": 60, "grace": 45}
    skip = Schedule("s", "j", **base)  # type: ignore[arg-type]
    once = Schedule("s", "j", catch_up="once", **base)  # type: ignore[arg-type]
    every = Schedule("s", "j", catch_up="all", catch_up_limit=3, **base)  # type: ignore[arg-type]
    assert skip.due(first, now) == ([utc(2026, 1, 1, 0, 10)], utc(2026, 1, 1, 0, 11))
    assert once.due(first, now)[0] == [utc(2026, 1, 1, 0, 10)]
    assert every.due(first, now)[0] == [utc(2026, 1, 1, 0, m) for m in (8, 9, 10)]
    late = utc(2026, 1, 1, 0, 11, 50)  # the 00:11 fire time is 50 s late: missed
    assert skip.due(first, late)[0] == []
    assert once.due(first, late)[0] == [utc(2026, 1, 1, 0, 11)]


def test_definitions_round_trip_through_json() -> None:
    s = Schedule("s", "j", {"a": 1}, cron="0 9 * * 1", tz="Europe/Berlin",
                 start=datetime(2026, 7, 1), max_runs=3, meta={"tenant": "t"})  # fmt: skip
    assert Schedule.from_json(s.to_json()) == s
    assert Schedule.from_json(s.to_json()).to_json() == s.to_json()


def test_catch_up_after_a_long_outage_is_quick_and_takes_the_latest() -> None:
    import time

    first, now = utc(2025, 1, 1), utc(2026, 2, 5, 12, 0, 30)
    minutely = Schedule("m", "j", cron="* * * * *", catch_up="all", catch_up_limit=3)
    fast = Schedule("f", "j", every=0.01, catch_up="all", catch_up_limit=3)
    yearly = Schedule("y", "j", cron="@yearly", catch_up="once")
    started = time.process_time()
    assert minutely.due(first, now)[0] == [utc(2026, 2, 5, 11, 58), utc(2026, 2, 5, 11, 59),
                                           utc(2026, 2, 5, 12)]  # fmt: skip
    assert fast.due(first, now)[0] == [now - timedelta(milliseconds=i) for i in (20, 10, 0)]
    assert yearly.due(first, now)[0] == [utc(2026, 1, 1)]
    assert time.process_time() - started < 2
    skip = Schedule("s", "j", every=0.01, grace=0.05)
    assert len(skip.due(first, now)[0]) == 6  # within the grace: 50 ms of 10 ms fire times
