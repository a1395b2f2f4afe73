"""Scenario files (scenarios/*.yaml) as frozen dataclasses.

Every mistake in a file is reported as one ScenarioError naming the file, the field as a dotted
path (``nodes.node2.addresses.ring0``), what is wrong, and how to fix it.

This module finds, reads and parses a file and puts its sections together; beside it:
  scenario_model.py     the dataclasses (Scenario, Node, ClusterOptions, ...), TOPOLOGIES, KNOWN_ROLES, ScenarioError
  scenario_sections.py  one parser per section, and the rules that span sections
  scenario_fields.py    the field parsers every section uses; scenario_quorum.py the quorum options
The model's names are re-exported here, so `from lab.scenario import Scenario` keeps working.
"""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lab.scenario_fields import (
    _NAME as _NAME_RE,
)
from lab.scenario_fields import (
    _fail,
    _int,
    _Invalid,
    _ref,
    _section,
    _show,
    _str,
    _StrictLoader,
)
from lab.scenario_model import (
    KNOWN_ROLES,
    TOPOLOGIES,
    ClusterOptions,
    Network,
    Node,
    Profile,
    Scenario,
    ScenarioError,
    Service,
    Vip,
)
from lab.scenario_sections import (
    _check_qdevice,
    _check_topology,
    _cluster,
    _networks,
    _nodes,
    _profiles,
    _services,
    _vips,
)

__all__ = [
    "KNOWN_ROLES",
    "SCENARIO_DIR",
    "TOPOLOGIES",
    "ClusterOptions",
    "Network",
    "Node",
    "Profile",
    "Scenario",
    "ScenarioError",
    "Service",
    "Vip",
    "lab_name",
    "load_scenario",
    "parse_scenario",
    "renamed",
    "scenario_path",
]

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


# --- loading -------------------------------------------------------------------------------------


def scenario_path(name_or_path: str | Path) -> Path:
    """An existing file as is, else ``SCENARIO_DIR/<name>.yaml``."""
    given = Path(name_or_path)
    if given.is_file():
        return given
    if len(given.parts) == 1:
        candidate = SCENARIO_DIR / (given.name if given.suffix == ".yaml" else f"{given.name}.yaml")
        if candidate.is_file():
            return candidate
    available = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))) or "(none)"
    raise ScenarioError(
        name_or_path,
        "(file)",
        "no such scenario file",
        f"use a scenario name from {SCENARIO_DIR} ({available}) or the path of an existing .yaml file",
    )


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Read, parse and validate a scenario by name or path."""
    path = scenario_path(name_or_path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except _Invalid as e:
        raise ScenarioError(path, e.field, e.problem, e.fix) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(path, "(file)", f"cannot read it ({e})", "make it a readable UTF-8 text file") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(e, "problem", None) or str(e)
        raise ScenarioError(
            path, where, f"not valid YAML ({problem})", "check the indentation, colons and brackets there"
        ) from None
    return parse_scenario(data, path)


def parse_scenario(data: Any, path: Path) -> Scenario:
    """Validate already-loaded YAML data and build the Scenario."""
    try:
        return _parse(data, Path(path))
    except _Invalid as e:
        raise ScenarioError(path, e.field, e.problem, e.fix) from None


def lab_name(value: str, where: str = "--lab") -> str:
    """A lab name becomes namespace, domain and host-name prefixes: a hostname label of at most 20 characters."""
    if not _NAME_RE.match(value) or len(value) > 20:
        _fail(
            where,
            f"{value!r} cannot name a lab",
            "use at most 20 lowercase letters, digits and inner '-' (rename the file, or pass --lab NAME)",
        )
    return value


def renamed(scenario: Scenario, lab: str | None) -> Scenario:
    """The same scenario run as another lab (`--lab NAME`): two copies side by side in their own namespaces."""
    if not lab or lab == scenario.name:
        return scenario
    try:
        return dataclasses.replace(scenario, name=lab_name(lab))
    except _Invalid as e:
        raise ScenarioError(scenario.path, e.field, e.problem, e.fix) from None


# --- the scenario --------------------------------------------------------------------------------


def _parse(data: Any, path: Path) -> Scenario:
    top = _section(
        data,
        "",
        ("topology", "networks", "nodes", "cluster"),
        ("name", "chapters", "description", "vips", "services", "profile", "profiles"),
    )
    if "name" in top:
        _fail(
            "name",
            "a scenario no longer names its lab",
            "delete the `name:` line: the lab is named after the file (mylab.yaml -> mylab), or `--lab NAME`",
        )
    topology = top["topology"]
    if topology not in TOPOLOGIES:
        _fail(
            "topology",
            f"unknown topology {_show(topology)}",
            "use one of: " + "; ".join(f"{k} ({v})" for k, v in TOPOLOGIES.items()),
        )
    name = lab_name(path.stem, "(file name)")
    chapters = top.get("chapters") or []
    if not isinstance(chapters, list):
        _fail("chapters", f"expected a list, got {_show(chapters)}", "write the guide's chapters as e.g. [2, 3]")
    taken: dict[IPv4Address, str] = {}  # every address in use -> the field using it
    resources: dict[str, str] = {}  # every Pacemaker resource id -> the field defining it
    networks = _networks(top["networks"], taken)
    nodes = _nodes(top["nodes"], networks, taken)
    vips = _vips(top.get("vips"), networks, taken, resources)
    services = _services(top.get("services"), vips, resources)
    cluster = _cluster(top["cluster"], nodes)
    profiles = _profiles(top.get("profiles"), top["cluster"], cluster, nodes)

    if not any(n.gateway for n in networks.values()):
        for where, opts in [("cluster", cluster)] + [
            (f"profiles.{p.name}", dataclasses.replace(cluster, **p.overrides)) for p in profiles.values()
        ]:
            if opts.ping_check:
                _fail(
                    f"{where}.ping_check",
                    "ping_check is true but no network has a gateway to ping",
                    "give the management network a `gateway:` (the lab fabric holds it), or set ping_check: false",
                )
    if "profile" not in top and profiles:
        _fail("profile", "missing required field", f"add `profile:` naming one of: {', '.join(profiles)}")
    if not profiles:
        profiles["default"] = Profile("default", "the cluster options as written", MappingProxyType({}))
    default_profile = _ref(top.get("profile", "default"), profiles, "profile", "profile")
    _check_topology(topology, networks, nodes, services)
    scenario = Scenario(
        name=name,
        path=path,
        topology=topology,
        chapters=tuple(_int(c, f"chapters.{i}") for i, c in enumerate(chapters)),
        description=_str(top["description"], "description") if "description" in top else "",
        networks=MappingProxyType(networks),
        nodes=MappingProxyType(nodes),
        vips=MappingProxyType(vips),
        services=MappingProxyType(services),
        cluster=cluster,
        profiles=MappingProxyType(profiles),
        default_profile=default_profile,
    )
    # on the options each section runs with, as Scenario.options gives them (the cluster's own: no profile's)
    _check_qdevice(topology, "cluster", cluster)
    for p in profiles:
        _check_qdevice(topology, f"profiles.{p}", scenario.options(p))
    return scenario
