"""Checkers: pure functions from a History (or crm_mon XML) to a Check."""

from lab.checks.availability import MEASURED_BY, Outage, downtime_check, outage
from lab.checks.base import Check
from lab.checks.durability import lost_messages, lost_writes
from lab.checks.placement import online_nodes, placement, resource_nodes
from lab.checks.split_brain import double_mounts, vip_holders, vip_moves, vip_timeline

__all__ = [
    "MEASURED_BY",
    "Check",
    "Outage",
    "double_mounts",
    "downtime_check",
    "lost_messages",
    "lost_writes",
    "online_nodes",
    "outage",
    "placement",
    "resource_nodes",
    "vip_holders",
    "vip_moves",
    "vip_timeline",
]
