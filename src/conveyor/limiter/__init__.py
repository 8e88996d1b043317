"""Flow control: rate limits, concurrency limits, fairness groups and start deadlines.

Everything is enforced in Redis when jobs are fetched (``scripts/_flow.lua``), so a limited
job waits instead of failing and using up attempts. See ``docs/flow-control.md``.
"""

from conveyor.limiter.control import FlowStatus, Limiter
from conveyor.limiter.limits import GroupLimits, Limits, Rate

__all__ = ["FlowStatus", "GroupLimits", "Limiter", "Limits", "Rate"]
