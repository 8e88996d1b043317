"""Flows: parents that run after their children, across queues, enqueued in one step."""

from conveyor.flows.model import ChildFailure, FlowJob
from conveyor.flows.store import ChildResult, FlowNode, Flows

__all__ = ["ChildFailure", "ChildResult", "FlowJob", "FlowNode", "Flows"]
