"""halab: follow the guide by hand. `halab up|provision|status|fault|down SCENARIO`.

Thin over lab/session.py; the provider's state file carries a lab between invocations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lab.box import DEFAULT_NAME, BoxError, add_box, build_box
from lab.providers import ProviderError
from lab.scenario import ScenarioError
from lab.session import SERVICE_PROCESS, Lab
from lab.wait import WaitTimeout

FAULT_HELP = """faults (all on the running lab):
  crash NODE              every process dies, links go dark (power cut)
  restart NODE            power a crashed node on; it rejoins the cluster
  freeze NODE / thaw NODE SIGSTOP / SIGCONT every process of the node
  kill NODE SERVICE       SIGKILL one service's processes (mysql, galera, rabbitmq, corosync, pacemaker,
                          haproxy, keepalived, memcached)
  stop NODE SERVICE       SIGTERM them and wait until they exit (an orderly stop)
  start NODE SERVICE      start a killed or stopped service again (active/active)
  cut NODE NETWORK        take one NIC's link down / restore NODE NETWORK
  partition NETWORK A[,A2] B[,B2] [--one-way]   drop frames between two sides on one network
  heal                    undo every partition and cut
  standby NODE / online NODE   Pacemaker node standby (orderly migration) and back"""


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(args.scenario, provider=args.provider, profile=args.profile)


def cmd_up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    print(f"provider: {lab.provider_name} ({lab.provider_reason})")
    lab.up()
    print(f"{lab.scenario.name}: nodes {', '.join(lab.scenario.nodes)} up; next: halab provision {args.scenario}")
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if not lab.provider.is_up():
        lab.up()
    lab.provision()
    print(lab.status())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if not lab.provider.is_up():
        print(f"{lab.scenario.name}: not up (halab up {args.scenario})")
        return 1
    print(lab.status())
    for node in lab.scenario.nodes:
        running = lab.provider.is_running(node)
        vips = [str(v.address) for v in lab.scenario.vips.values() if str(v.address) in lab.provider.addresses(node)]
        disks = set(lab.provider.shared_disks().values())
        mounts = [f"{src} on {dst}" for src, dst in lab.provider.mounts(node) if src in disks]
        print(f"{node:8} {'running' if running else 'DOWN':8} VIPs {vips or '-'}  shared mounts {mounts or '-'}")
    return 0


def _check_names(lab: Lab, fault: str, a: list[str]) -> None:
    """Node and network names must be the scenario's: a typo must not print `done` and do nothing."""
    nodes, nets = set(lab.scenario.nodes), set(lab.scenario.networks)
    if fault == "partition":
        named = [("network", a[0], nets)] + [("node", n, nodes) for n in a[1].split(",") + a[2].split(",")]
    else:
        named = [("node", a[0], nodes)] if a else []
        if fault in ("cut", "restore"):
            named.append(("network", a[1], nets))
    for kind, name, known in named:
        if name not in known:
            raise ScenarioError(
                lab.scenario.path, f"{kind}s", f"no {kind} {name!r}", f"use one of: {', '.join(sorted(known))}"
            )


def cmd_fault(args: argparse.Namespace) -> int:
    lab = _lab(args)
    p = lab.provider
    f, a = args.fault, args.args
    need = {
        "crash": 1,
        "restart": 1,
        "freeze": 1,
        "thaw": 1,
        "kill": 2,
        "stop": 2,
        "start": 2,
        "cut": 2,
        "restore": 2,
        "partition": 3,
        "heal": 0,
        "standby": 1,
        "online": 1,
    }
    if f not in need:
        raise SystemExit(f"unknown fault {f!r}\n{FAULT_HELP}")
    if len(a) != need[f]:
        raise SystemExit(f"{f} takes {need[f]} argument(s), got {a}\n{FAULT_HELP}")
    _check_names(lab, f, a)
    if f == "crash":
        p.crash(a[0])
    elif f == "restart":
        lab.restart_node(a[0])
    elif f == "freeze":
        p.freeze(a[0])
    elif f == "thaw":
        p.thaw(a[0])
    elif f == "kill":
        p.kill_service(a[0], SERVICE_PROCESS.get(a[1], a[1]))
    elif f == "stop":
        p.stop_service(a[0], SERVICE_PROCESS.get(a[1], a[1]))
    elif f == "start":
        lab.playbook.start_service(lab.ctx, a[0], a[1])
    elif f == "cut":
        p.cut(a[0], a[1])
    elif f == "restore":
        p.restore(a[0], a[1])
    elif f == "partition":
        p.partition(a[0], a[1].split(","), a[2].split(","), one_way=args.one_way)
    elif f == "heal":
        p.heal()
    elif f in ("standby", "online"):
        p.run(a[0], f"crm node {f} {a[0]}", check=True)
    print(f"{f} {' '.join(a)}: done")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    lab = _lab(args)
    lab.down()
    gone = {
        "netns": "namespaces, processes and loop devices",
        "libvirt": "VMs, libvirt networks and volumes, client namespaces, and the libvirt daemons the lab started",
    }
    print(f"{lab.scenario.name} ({lab.provider_name}): {gone.get(lab.provider_name, 'everything')} removed")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    lab = _lab(args)
    runs = sorted((lab.run_dir.parent).glob("*/report.json"))
    if not runs:
        print(f"no reports under {lab.run_dir.parent}")
        return 1
    print(json.dumps(json.loads(runs[-1].read_text()), indent=2) if args.json else runs[-1])
    return 0


def cmd_box_build(args: argparse.Namespace) -> int:
    box = build_box(Path(args.out), name=args.name, size_gb=args.size_gb, force=args.force)
    if not args.no_add:
        add_box(box, args.name)
        print(f"vagrant box {args.name}: added from {box} (LAB_BOX={args.name})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="halab", description=__doc__, epilog=FAULT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for name, fn, helptext in (
        ("up", cmd_up, "create the scenario's networks and nodes"),
        ("provision", cmd_provision, "configure corosync, pacemaker and the guide's resources"),
        ("status", cmd_status, "crm_mon, VIP holders and shared mounts per node"),
        ("fault", cmd_fault, "apply a fault (see below)"),
        ("down", cmd_down, "remove everything the lab made (also after a killed run)"),
        ("report", cmd_report, "path of the latest report (--json: its content)"),
    ):
        p = sub.add_parser(
            name,
            help=helptext,
            epilog=FAULT_HELP if name == "fault" else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("scenario", help="scenario name (scenarios/NAME.yaml) or path")
        p.add_argument("--provider", default=None, help="netns, libvirt or auto (default: $LAB_PROVIDER or auto)")
        p.add_argument("--profile", default=None, help="guide or hardened (default: $LAB_PROFILE or the scenario's)")
        p.set_defaults(fn=fn)
        if name == "fault":
            p.add_argument("fault")
            p.add_argument("args", nargs="*")
            p.add_argument("--one-way", action="store_true", help="partition: drop only A -> B")
        if name == "report":
            p.add_argument("--json", action="store_true")
    box = sub.add_parser("box", help="the offline Debian 12 libvirt box (lab/box.py)")
    box_sub = box.add_subparsers(dest="box_command", required=True)
    b = box_sub.add_parser("build", help="build it from Debian packages (cached by package list), vagrant box add it")
    b.add_argument("--out", default="/var/tmp/halab-box", help="where the box and its stamp go")
    b.add_argument("--name", default=DEFAULT_NAME, help=f"Vagrant box name (default {DEFAULT_NAME})")
    b.add_argument("--size-gb", type=int, default=4, help="virtual disk size (default 4)")
    b.add_argument("--force", action="store_true", help="rebuild even when the cached box matches")
    b.add_argument("--no-add", action="store_true", help="only build, no `vagrant box add`")
    b.set_defaults(fn=cmd_box_build)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ScenarioError, ProviderError, WaitTimeout, BoxError) as exc:
        print(f"halab: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
