"""Crontab lines with crontab's meaning.

APScheduler numbers weekdays from Monday (0 = Monday), while crontab numbers
them from Sunday (0 and 7 = Sunday). A spec says '0 2 * * 1' meaning Monday
night, as cron and Kubernetes CronJobs read it; the weekday field is spelt
out in names before APScheduler sees it, so the two agree.
"""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def cron_trigger(expression: str, timezone: str = "UTC") -> CronTrigger:
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"'{expression}' has {len(fields)} fields; a crontab line has 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    minute, hour, day, month, weekday = fields
    return CronTrigger(
        minute=minute, hour=hour, day=day, month=month, day_of_week=_weekday_names(weekday), timezone=timezone
    )


def _weekday_names(field: str) -> str:
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = 0, 6
        else:
            low, _, high = span.partition("-")
            first = _day(low)
            last = _day(high) if high else (6 if step_text else first)
            if high and last == 0 and first > 0:  # '5-7' or 'fri-sun': up to Sunday
                last = 7
        if step < 1 or last < first:
            raise ValueError(f"weekday field '{field}': '{part}' is not a range cron accepts")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(NAMES[d] for d in sorted(days))


def _day(token: str) -> int:
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token)
    if token[:3] in NAMES:
        return NAMES.index(token[:3])
    raise ValueError(f"'{token}' is not a weekday (0-7 or sun-sat)")
