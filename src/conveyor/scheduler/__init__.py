"""Recurring jobs: cron expressions and intervals in a time zone, stored in Redis, fired by
any number of :class:`Scheduler` instances with exactly one job per fire time."""

from conveyor.scheduler.cron import Cron
from conveyor.scheduler.model import CatchUp, Schedule
from conveyor.scheduler.runner import Scheduler
from conveyor.scheduler.store import ScheduleInfo, Schedules, fire_job_id

__all__ = ["CatchUp", "Cron", "Schedule", "ScheduleInfo", "Scheduler", "Schedules", "fire_job_id"]
