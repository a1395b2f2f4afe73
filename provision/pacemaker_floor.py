"""A Pacemaker group's floor (lab/floors.py): the least a move of the group could have cost one service. Shared by
the playbooks whose groups Pacemaker moves: active_passive (ch. 3, the group's last member is the service's) and
api_cluster (ch. 4, one group serving several services, each from its own member on)."""

from __future__ import annotations

from lab import bounds, floors
from lab.floors import Floor
from lab.history import History
from provision import pacemaker
from provision.context import Context


def group_floor(
    ctx: Context,
    service: str,
    group: str,
    member: str | None,
    before: dict[str, str],
    after: dict[str, str],
    membership_change: bool,
    faults: list[tuple[str, str, float]],
    history: History,
) -> Floor | None:
    """The least this group's move could take `service` (lab/floors.py): membership change when the fault needs one,
    the measured ops of the members before the service's own `member` (None: the group's last), and that member's
    start request until the service's first answer."""
    old, new = before.get(group), after.get(group)
    if not (old and new and old != new and faults):
        return None
    # a fault's move is off its target; a heal's (a failback: no stickiness) is onto it, orderly (the node rejoined
    # before Pacemaker moved anything back). Any other move is not this fault's or heal's.
    failback = faults[0][0].startswith("heal:")
    if faults[0][1] != (new if failback else old):
        return None
    membership_change = membership_change and not failback
    ops_xml = ctx.ask("crm_mon -1 -o --output-as=xml")
    cib = ctx.ask("cibadmin -Q --scope resources")
    if not (ops_xml and cib):
        return None
    members = bounds.group_members(cib, group)
    if member is not None:  # the members up to the service's own (ch. 4: one group, several services)
        members = members[: members.index(member) + 1]
    links = floors.chain(ops_xml, members, new, None if membership_change else old)
    if links is None:
        return None
    membership = bounds.membership_floor_ms(ctx.opts) if membership_change else 0
    method = "corosync token + consensus - 2 x hold, " if membership_change else ""
    method = ("a move back onto the returned node: " if failback else "") + method
    method += "exec-time of each member before the service (crm_mon -o)"
    if not ctx.provider.shared_clock:  # the nodes' logs and the client's history are on different clocks
        return Floor(
            service,
            membership,
            links,
            method=method + f"; {members[-1]}'s own stop and start not counted "
            "(the nodes do not share the client's clock)",
            complete=False,
        )
    service_member, since = members[-1], faults[0][2]
    log = ctx.provider.run(
        new, f"grep -F '{floors.REQUEST.format(resource=service_member, node=new)}' {pacemaker.LOG}", timeout=15
    ).stdout.splitlines()
    answer = floors.answer_ms(history, service, floors.start_requests(log, service_member, new, since=since))
    if answer is not None:
        method += f", {service_member}'s start request (pacemaker.log) until the clients' first answer (history)"
    stop = None
    if not membership_change:
        needle = floors.STOPPED.format(resource=service_member, node=old)
        log = ctx.provider.run(old, f"grep -F '{needle}' {pacemaker.LOG}", timeout=15).stdout.splitlines()
        stop = floors.stop_ms(history, service, floors.logged(log, needle, since=since))
        if stop is not None:
            method += f", the clients' last answer until {service_member}'s stop completed on {old} (pacemaker.log)"
    return Floor(
        service,
        membership,
        links,
        answer_ms=answer[1] if answer else 0,
        requested_at=answer[0] if answer else None,
        method=method,
        stop_ms=stop[1] if stop else 0,
        stopped_at=stop[0] if stop else None,
        complete=answer is not None and (membership_change or stop is not None),
    )
