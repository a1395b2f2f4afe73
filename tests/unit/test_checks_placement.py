from __future__ import annotations

import re
from pathlib import Path

import pytest

from lab.checks import online_nodes, placement, resource_nodes

pytestmark = pytest.mark.unit

DATA = Path(__file__).parent / "data" / "checks"
GROUPS = {
    "g_mysql": ["p_ip_mysql", "p_fs_mysql", "p_mysql"],
    "g_rabbitmq": ["p_ip_rabbitmq", "p_fs_rabbitmq", "p_rabbitmq"],
}


def xml(name: str) -> str:
    return (DATA / f"crm_mon_{name}.xml").read_text()


def test_resource_nodes_and_online_nodes() -> None:
    assert resource_nodes(xml("healthy")) == {
        "p_ip_mysql": ["node1"],
        "p_fs_mysql": ["node1"],
        "p_mysql": ["node1"],
        "p_ip_rabbitmq": ["node2"],
        "p_fs_rabbitmq": ["node2"],
        "p_rabbitmq": ["node2"],
        "p_ping": ["node1", "node2"],
    }
    assert online_nodes(xml("healthy")) == ["node1", "node2"]
    assert online_nodes(xml("failover")) == ["node2"]
    assert resource_nodes(xml("double"))["p_ip_mysql"] == ["node1", "node2"]


@pytest.mark.parametrize("name", ["healthy", "failover"])
def test_placement_passes(name: str) -> None:
    c = placement(xml(name), GROUPS)
    assert c.passed, c.detail
    assert c.name == "placement"


def test_resource_on_two_nodes_fails() -> None:
    c = placement(xml("double"))
    assert not c.passed and "p_ip_mysql active on 2 nodes [node1, node2]" in c.detail


def test_failed_resource_fails() -> None:
    c = placement(xml("failed"))
    assert not c.passed and "p_mysql failed on [node1]" in c.detail


def test_blocked_and_stopped_resources_fail() -> None:
    c = placement(xml("blocked"))
    assert not c.passed
    assert "p_fs_mysql blocked" in c.detail and "p_mysql not running (role Stopped)" in c.detail


def test_group_split_across_nodes_fails() -> None:
    c = placement(xml("split"))
    assert not c.passed
    assert "group g_mysql split across nodes: p_ip_mysql@node2, p_fs_mysql@node1, p_mysql@node1" in c.detail
    assert "g_rabbitmq" not in c.detail.split(" (")[0]


def test_expected_groups_are_checked_too() -> None:
    c = placement(xml("healthy"), {"vip_and_broker": ["p_ip_mysql", "p_rabbitmq"], "g_x": ["p_missing"]})
    assert not c.passed
    assert "group vip_and_broker split across nodes: p_ip_mysql@node1, p_rabbitmq@node2" in c.detail
    assert "group g_x: p_missing not in crm_mon output" in c.detail


def test_all_clone_instances_stopped_fails() -> None:
    # One stopped instance (crm_mon_failover.xml) passes; a clone with no instance running does not.
    stopped = (
        '<resource id="p_ping" resource_agent="ocf:pacemaker:ping" role="Stopped" active="false" '
        'orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" '
        'nodes_running_on="0"/>'
    )
    match = re.search(r"<clone .*?>", xml("healthy"))
    assert match
    clone = match.group(0)
    text = re.sub(r"<clone .*</clone>", clone + stopped * 2 + "</clone>", xml("healthy"), flags=re.S)
    c = placement(text)
    assert not c.passed and c.detail.startswith("p_ping not running on any node (clone) (")
    assert "p_ping" in resource_nodes(text) and resource_nodes(text)["p_ping"] == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        "crm_mon: Error: cluster is not available on this node",
        '<pacemaker-result api-version="2.25" request="crm_mon --output-as=xml">'
        '<status code="102" message="Not connected"><errors><error>crm_mon: Connection to cluster failed'
        "</error></errors></status></pacemaker-result>",
        '<pacemaker-result api-version="2.25"><nodes/><resources/><status code="0" message="OK"/></pacemaker-result>',
    ],
)
def test_unusable_output_fails(text: str) -> None:
    assert not placement(text).passed


def _with_fence_device(text: str, *, peer_online: bool) -> str:
    device = (
        '<resource id="st_node1" resource_agent="stonith:fence_virsh" role="Stopped" active="false" '
        'orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" '
        'nodes_running_on="0"/>'
    )
    text = text.replace("<resources>", "<resources>" + device, 1)
    if not peer_online:
        text = re.sub(r'(<node name="node2"[^>]*?)online="true"', r'\1online="false"', text, count=1)
    return text


def test_a_fence_device_with_nowhere_to_run_is_fine_only_while_a_node_is_down() -> None:
    # st_node1 never runs on node1; with node2 down (fenced) it has nowhere to run, as configured.
    down = _with_fence_device(xml("healthy"), peer_online=False)
    assert "st_node1" not in placement(down).detail
    up = _with_fence_device(xml("healthy"), peer_online=True)
    c = placement(up)
    assert not c.passed and "st_node1 not running" in c.detail


PROMOTABLE = """<pacemaker-result api-version="2.30" request="crm_mon --output-as=xml"><resources>
<group id="g_cache" number_resources="2" managed="true" disabled="false">
 <resource id="p_ip_cache" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true" orphaned="false"
   blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
  <node name="node1" id="1" cached="true"/></resource></group>
<clone id="ms_stateful" multi_state="true" unique="false" maintenance="false" managed="true" disabled="false"
  failed="false" failure_ignored="false">
 <resource id="p_stateful" resource_agent="ocf:pacemaker:Stateful" role="Promoted" active="true" failed="false"
   nodes_running_on="1"><node name="node5" id="5" cached="true"/></resource>
 <resource id="p_stateful" resource_agent="ocf:pacemaker:Stateful" role="Unpromoted" active="true" failed="false"
   nodes_running_on="1"><node name="node1" id="1" cached="true"/></resource>
 <resource id="p_stateful" resource_agent="ocf:pacemaker:Stateful" role="Promoted" active="true" failed="true"
   nodes_running_on="1"><node name="node2" id="2" cached="true"/></resource>
 <resource id="p_stateful" resource_agent="ocf:pacemaker:Stateful" role="Stopped" active="false" failed="false"
   nodes_running_on="0"/>
</clone></resources></pacemaker-result>"""


def test_role_nodes_names_the_promoted_instances_and_leaves_failed_ones_out() -> None:
    from lab.checks.placement import role_nodes

    assert role_nodes(PROMOTABLE, "p_stateful") == ["node5"]
    assert role_nodes(PROMOTABLE, "p_stateful", ("Unpromoted",)) == ["node1"]
    assert role_nodes(PROMOTABLE.replace('"Promoted"', '"Master"'), "p_stateful") == ["node5"]  # older schemas
    assert role_nodes(PROMOTABLE, "p_ip_cache") == []
    assert role_nodes(PROMOTABLE, "p_ip_cache", ("Started",)) == ["node1"]
