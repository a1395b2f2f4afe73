"""Two corosync clusters in one scenario (guide ch. 4's API nodes beside ch. 3's pair): the loader's rules, each
cluster's own corosync.conf, and the context addressing one cluster."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from lab.scenario import SCENARIO_DIR, ScenarioError, parse_scenario
from provision import api_cluster, corosync, keystone, ocf_agents
from provision.context import Context
from tests.unit.scenario_edits import DELETE, edited

pytestmark = pytest.mark.unit

PATH = Path("api-test.yaml")
BASE: dict[str, Any] = yaml.safe_load((SCENARIO_DIR / "api-cluster.yaml").read_text())


def error(*edits: tuple[str, Any]) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(edited(BASE, *edits), PATH)
    return info.value


def test_the_shipped_scenario_holds_two_clusters_and_the_api_one_is_under_test() -> None:
    s = parse_scenario(BASE, PATH)
    clusters = s.clusters
    assert len(clusters) == 2
    api = api_cluster.cluster_under_test(s)
    assert all(s.nodes[n].has_role("api") for n in clusters[api])
    assert not any(s.nodes[n].has_role("api") for c, nodes in clusters.items() if c != api for n in nodes)
    assert s.cluster.nodelist_size == max(len(n) for n in clusters.values())  # corosync's token: per cluster


def test_each_cluster_renders_its_own_nodelist_and_name() -> None:
    s = parse_scenario(BASE, PATH)
    names = set()
    for cluster, nodes in s.clusters.items():
        ctx = Context(s, "guide", None, None, cluster=cluster)  # type: ignore[arg-type]
        assert ctx.cluster_nodes == nodes
        conf = corosync.config(ctx)
        listed = [ln.split(":", 1)[1].strip() for ln in conf.splitlines() if ln.strip().startswith("name:")]
        assert listed == nodes, conf
        names.add(next(ln for ln in conf.splitlines() if "cluster_name:" in ln))
    assert len(names) == 2, "two clusters on one network must not share a cluster_name"


def test_keystone_binds_the_vip_under_pacemaker_and_uses_ch3s_mysql() -> None:
    s = parse_scenario(BASE, PATH)
    vip = str(s.vip_for("keystone-public").address)
    for n in keystone.nodes(s):
        assert keystone.node_address(s, n) == vip  # the guide's bind_host = 192.168.42.103
    assert keystone.database(s) == f"{s.vip_for('mysql').address}:{s.services['mysql'].port}"


def test_the_api_group_lists_its_members_in_the_guides_order() -> None:
    s = parse_scenario(BASE, PATH)
    ctx = _api_ctx(s, SimpleNamespace(has_drbd=False, emulated=False))
    crm = api_cluster.crm(ctx, "/dev/loop7")
    group = next(ln for ln in crm.splitlines() if ln.startswith("group "))
    vip = s.vip_for("keystone-public").resource
    assert group.split()[1:] == [
        api_cluster.group(ctx), vip, "p_keystone", "p_fs_glance", "p_glance-api", "p_cinder-api", "p_neutron-server",
        "p_ceilometer-agent-central",
    ]  # fmt: skip
    assert all(f"ocf:halab:{a}" in crm for a in ocf_agents.AGENTS)
    assert 'os_password="' not in crm, "the admin's password must never be in the CIB"


@pytest.mark.parametrize(
    ("edits", "field", "words"),
    [
        ((("nodes.api2.cluster", DELETE),), "nodes.two_node", "two_node"),  # a 3-node cluster with two_node
        ((("nodes.client.cluster", "api"),), "nodes.client.cluster", "pacemaker role"),
        ((("nodes.api1.cluster", "API_1"),), "nodes.api1.cluster", "lower-case"),
        ((("nodes.api2.roles", ["pacemaker"]),), "nodes.api2.roles", "api role"),
        ((("services.mysql", DELETE), ("services.rabbitmq", DELETE)), "services", "mysql"),
        ((("topology", "active-passive"),), "nodes", "one corosync cluster"),
    ],
)
def test_a_scenario_of_clusters_that_cannot_work_is_one_clear_error(edits: tuple, field: str, words: str) -> None:
    e = error(*edits)
    assert words in str(e), str(e)
    if field != "nodes.two_node":
        assert e.field == field, str(e)
    else:
        assert e.field.endswith("two_node"), str(e)


def test_services_share_a_group_only_behind_one_vip() -> None:
    e = error(("services.glance-api.vip", "mysql"))
    assert e.field == "services.glance-api.group" and "one VIP" in e.fix


def _api_ctx(s: Any, provider: object) -> Context:
    return dataclasses.replace(Context(s, "guide", provider, None), cluster=api_cluster.cluster_under_test(s))  # type: ignore[arg-type]


def test_glances_store_is_a_drbd_resource_under_the_group_where_the_provider_has_drbd() -> None:
    s = parse_scenario(BASE, PATH)
    crm = api_cluster.crm(_api_ctx(s, SimpleNamespace(has_drbd=True, emulated=False)), "/dev/drbd2")
    group = api_cluster.group(_api_ctx(s, None))
    assert 'primitive p_drbd_glance ocf:linbit:drbd' in crm and 'drbd_resource="glance-api"' in crm
    assert "ms ms_drbd_glance p_drbd_glance" in crm
    # each statement on its own line: the group's ends with its last member (crmsh read "p_neutron-serverms" once)
    lines = crm.splitlines()
    assert next(ln for ln in lines if ln.startswith("group ")).split()[-1] == "p_ceilometer-agent-central"
    assert any(ln.startswith("ms ms_drbd_glance ") for ln in lines)
    # ch. 3's pattern: the whole group where DRBD is Primary, started only once it is promoted
    assert f"colocation c_api_on_drbd inf: {group} ms_drbd_glance:Master" in crm
    assert f"order o_drbd_before_api inf: ms_drbd_glance:promote {group}:start" in crm
    assert 'device="/dev/drbd2"' in crm
    stand_in = api_cluster.crm(_api_ctx(s, SimpleNamespace(has_drbd=False, emulated=False)), "/dev/loop7")
    assert "ocf:linbit:drbd" not in stand_in and "ms ms_drbd_glance" not in stand_in
    assert 'device="/dev/loop7"' in stand_in


def test_libvirt_refuses_a_glance_store_without_a_drbd_minor_before_building_anything() -> None:
    s = parse_scenario(BASE, PATH)
    assert api_cluster.unbuilt_on("libvirt", s) is None
    assert api_cluster.unbuilt_on("netns", s) is None
    bare = parse_scenario(edited(BASE, ("services.glance-api.drbd_minor", DELETE),
                                 ("services.glance-api.drbd_port", DELETE)), PATH)  # fmt: skip
    assert api_cluster.unbuilt_on("netns", bare) is None  # the shared-disk stand-in needs no minor
    said = api_cluster.unbuilt_on("libvirt", bare)
    assert said is not None and "services.glance-api" in said and "drbd_minor" in said


def test_lab_services_narrows_ch3s_half_only_and_keeps_mysql() -> None:
    s = parse_scenario(BASE, PATH)
    assert api_cluster.refuses_services(s, ("mysql",)) is None
    assert api_cluster.refuses_services(s, ("mysql", "rabbitmq")) is None
    no_db = api_cluster.refuses_services(s, ("rabbitmq",))
    assert no_db is not None and "keep mysql" in no_db
    apis = api_cluster.refuses_services(s, ("mysql", "glance-api"))
    assert apis is not None and "leave glance-api out" in apis


def test_the_central_agent_runs_only_where_ch3s_rabbitmq_does() -> None:
    s = parse_scenario(BASE, PATH)
    whole = _api_ctx(s, SimpleNamespace(name="netns", emulated=False, has_drbd=False))
    assert api_cluster.central_agent(whole)
    narrowed = dataclasses.replace(whole, only=("mysql",))
    assert not api_cluster.central_agent(narrowed)
    assert "primitive p_ceilometer-agent-central" not in api_cluster.crm(narrowed, "/dev/loop7")
    assert any("RabbitMQ left out" in n for n in api_cluster.notes(narrowed))
    assert not any("left out" in n for n in api_cluster.notes(whole))
