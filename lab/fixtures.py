"""Helpers for the acceptance suites: one lab per module (profile), brought up once, reused by
every test of that module, torn down even when a test fails or the run is interrupted."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from lab.checks.base import Check
from lab.checks.split_brain import vip_samples
from lab.providers import ProviderError, Unsupported
from lab.report import Event, vip_move_text
from lab.scenario import Scenario, ScenarioError, Vip, load_scenario
from lab.session import Lab, Trial, TrialResult
from lab.wait import until

# (summary table, report path) of every lab this session ran; printed in pytest's terminal summary.
FINISHED: list[tuple[str, str]] = []


def _sigterm_to_interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # so fixture teardown runs when CI or a user sends SIGTERM


def providers_requested() -> list[str]:
    """LAB_PROVIDER, which may name several (`netns,libvirt`): the acceptance suites run once on each."""
    raw = os.environ.get("LAB_PROVIDER", "") or "auto"
    return [p.strip() for p in raw.split(",") if p.strip()] or ["auto"]


def scenario_for(topology: str, shipped: str | None = None) -> Scenario:
    """LAB_SCENARIO (a name or a path) when it is of `topology`, else the shipped scenarios/<shipped>.yaml (default:
    the topology's name): the suites run unchanged on a user's own scenario."""
    wanted = os.environ.get("LAB_SCENARIO", "").strip()
    if not wanted:
        return load_scenario(shipped or topology)
    sc = load_scenario(wanted)
    if sc.topology != topology:
        pytest.fail(
            f"LAB_SCENARIO={wanted} is of topology {sc.topology}, not {topology}: run it with tox -e lab-{sc.topology}",
            pytrace=False,
        )
    return sc


def make_lab(
    topology: str, profile: str | None, provider: str | None = None, shipped: str | None = None
) -> Iterator[Lab]:
    """One lab of the scenario for `topology` (LAB_SCENARIO, else scenarios/<shipped or topology>.yaml) under
    `profile`, up and provisioned, down after the module."""
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        sc = scenario_for(topology, shipped)
    except ScenarioError as exc:
        pytest.fail(str(exc), pytrace=False)
    scenario = sc.name
    try:
        lab = Lab(sc, provider=provider, profile=profile)
    except Unsupported as exc:  # asked for explicitly (LAB_PROVIDER): a suite that runs nothing must not pass
        pytest.fail(str(exc), pytrace=False)
    print(f"\n[halab] {scenario} on {lab.provider_name} ({lab.provider_reason}), profile {lab.profile}")
    try:
        lab.up()
        lab.provision()
        yield lab
    except ProviderError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        try:
            path = lab.write_report()
            FINISHED.append((f"provider: {lab.provider_reason}\n{lab.report.summary_table()}", str(path)))
        finally:
            if os.environ.get("HALAB_KEEP") != "1":
                lab.down()


def broker_loss_trial(lab: Lab, name: str) -> TrialResult:
    """Kill the RabbitMQ node the clients are connected to (the first of their brokers), wait for the consumer to
    resume on another, start the node again; return the trial's result."""
    from provision.active_active import role_nodes

    broker = role_nodes(lab.ctx, "rabbitmq")[0]
    deadline = lab.playbook.recovery_deadline_s(lab.ctx)
    with lab.trial(name) as t:
        t.fault("kill_service", broker, service="rabbitmq")  # with the consumer paused and a backlog queued
        until(
            lambda: t.history().select(service="rabbitmq", type="ok", f="publish", since=t.fault_at),
            timeout=deadline,
            what="a confirmed publish through another broker",
        )
        # what this trial is about: the consumer takes again, from another broker, the backlog the dead one held
        t.cfg.pause_flag.unlink(missing_ok=True)
        until(
            lambda: t.history().select(service="rabbitmq", type="ok", f="consume", since=t.fault_at),
            timeout=deadline,
            what="the consumer to resume on another broker",
        )
        t.heal("kill_service", broker, service="rabbitmq")
        return t.finish()


def assert_checks(res: TrialResult, *, may_fail: tuple[str, ...] = (), lab: Lab | None = None) -> None:
    """Every check of the trial passed, but those whose name holds one of `may_fail` (what a test expects may go
    wrong, e.g. writes acknowledged by the side of a split-brain DRBD discards): those are recorded, not asserted;
    with `lab`, a failed one moves from the report's checks to its notes, saying it failed as allowed. The message
    lists the checks that failed."""
    allowed = [c for c in res.checks if not c.passed and any(m in c.name for m in may_fail)]
    if lab is not None:
        for c in allowed:
            lab.report.checks.remove(c)
            lab.report.notes.append(f"{c.name}: failed, as this trial allows: {c.detail}")
    bad = [c for c in res.checks if not c.passed and c not in allowed]
    assert not bad, "\n".join(f"{c.name}: {c.detail}" for c in bad)


def assert_floor_holds(ev: Event) -> None:
    """The event has a floor (lab/floors.py) and the measured downtime is not below it: a failover faster than
    the timers allow means the clients' history missed part of the outage."""
    assert ev.floor_ms is not None, f"{ev.fault} of {ev.target}: no floor for {ev.service}"
    assert ev.downtime_ms is not None and ev.floor_ms <= ev.downtime_ms, (
        f"{ev.service}: downtime {ev.downtime_ms} ms is below its floor {ev.floor_ms} ms"
    )


def report_failback(t: Trial, res: TrialResult, node: str) -> None:
    """Say in the report what healing `node` inside the trial did: a move back (no stickiness, VRRP preemption)
    is an outage of its own, measured as the heal's event; none is said too."""
    back = [e for e in res.events if e.fault.startswith("heal:") and e.target == node]
    for e in back:
        move = vip_move_text(e.vip, e.vip_from, e.vip_to, e.flap, arrow=" -> ")
        moved = f", VIP {move}" if move else ""
        down = "never recovered" if e.downtime_ms is None else f"{e.downtime_ms} ms"
        t.lab.report.notes.append(f"{t.name}: {node}'s return cost {e.service} {down}{moved}")
    if not back:
        t.lab.report.notes.append(f"{t.name}: {node}'s return cost no service anything (nothing moved back)")


def double_vip_seen(t: Trial, vip: str) -> bool:
    """Has the observer seen `vip` on two nodes at once since the trial's fault, in more successive samples than a
    handover may take (the playbook's VIP_HANDOVER_SAMPLES), as the vip-holders check counts them?"""
    run = 0
    for at, holders in vip_samples(t.history()):
        if t.fault_at is not None and at < t.fault_at:
            continue
        run = run + 1 if len(holders.get(vip, ())) > 1 else 0
        if run > t.lab.playbook.VIP_HANDOVER_SAMPLES:
            return True
    return False


def double_mount_seen(t: Trial) -> bool:
    """Has the observer seen one shared device mounted on two nodes at once since the trial's fault?"""
    for op in t.history().select(f="mounts", since=t.fault_at):
        owners: dict[str, int] = {}
        for mounts in op.value.values():
            for src, _dst in mounts:
                owners[src] = owners.get(src, 0) + 1
        if any(n > 1 for n in owners.values()):
            return True
    return False


def assert_caught(lab: Lab, res: TrialResult, name: str, check_part: str) -> None:
    """Take the mutant trial's checks and events out of the report (they judge a cluster broken on purpose), put
    in one check: the named check failed, as it must; and assert it did."""
    lab.report.checks = [c for c in lab.report.checks if c not in res.checks]
    lab.report.events = [e for e in lab.report.events if e not in res.events]
    hit = [c for c in res.checks if check_part in c.name]
    assert hit, f"mutant {name}: the trial ran no check named *{check_part}*: {[c.name for c in res.checks]}"
    failed = [c for c in hit if not c.passed]
    shown = failed[0].detail if failed else hit[0].detail
    c = Check(f"mutant:{name}: {check_part} fails", bool(failed), f"{'caught' if failed else 'MISSED'}: {shown}")
    lab.report.checks.append(c)
    assert c.passed, c.detail


def double_vip_by_hand(lab: Lab, t: Trial, vip: Vip, node: str) -> None:
    """A mutant's double VIP: `vip` added by hand on `node` (beside its holder) until the observer has seen it on
    two nodes for longer than a handover may take, as the vip-holders check counts it; then removed."""
    prefix = lab.scenario.networks[vip.network].cidr.prefixlen
    own = str(lab.scenario.nodes[node].addresses[vip.network])  # the node's own address on the VIP's network
    addrs = lab.provider.run(node, "ip -o -4 addr show", timeout=15).stdout.splitlines()
    dev = next(line.split()[1] for line in addrs if f" {own}/" in line)
    assert lab.provider.run(node, f"ip addr add {vip.address}/{prefix} dev {dev}", timeout=15).ok
    try:
        until(
            lambda: double_vip_seen(t, str(vip.address)),
            timeout=lab.playbook.recovery_deadline_s(lab.ctx),
            what=f"{vip.address} seen on {node} and its holder",
            seen=lambda: lab.status(),
        )
    finally:
        lab.provider.run(node, f"ip addr del {vip.address}/{prefix} dev {dev}", timeout=15)
