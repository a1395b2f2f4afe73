"""The libvirt provider's pure parts: names, DRBD disks and resources, partition rules. No libvirtd, no VM."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.providers.libvirt import LibvirtProvider
from lab.scenario import load_scenario
from provision import drbd
from provision.context import Context
from provision.secrets import load_or_create

pytestmark = pytest.mark.unit


@pytest.fixture
def provider(tmp_path: Path) -> LibvirtProvider:
    return LibvirtProvider(load_scenario("active-passive"), state_root=tmp_path)


def test_clients_are_namespaces_and_cluster_nodes_are_vms(provider: LibvirtProvider) -> None:
    assert provider.vm_nodes == ["node1", "node2"]
    assert provider.client_nodes == ["client"]
    assert provider.domain_name("node1") == "halab-active-passive-node1"
    # never the netns provider's names: both labs of one scenario can exist at once
    assert provider.client_netns("client") == "halab-active-passive-lv-client"
    assert provider.state_dir.name == "active-passive.libvirt"


def test_each_drbd_service_gets_its_own_disk_in_minor_order(provider: LibvirtProvider) -> None:
    assert provider.drbd_backing("mysql") == "/dev/vdb"
    assert provider.drbd_backing("rabbitmq") == "/dev/vdc"
    assert provider.shared_disks() == {"mysql": "/dev/drbd0", "rabbitmq": "/dev/drbd1"}


def test_drbd_resource_is_the_guides(provider: LibvirtProvider) -> None:
    ctx = Context(provider.scenario, "guide", provider, load_or_create(provider.state_dir))
    res = drbd.resource(ctx, "mysql", "/dev/vdb")
    for line in (
        "resource mysql {",
        "device minor 0;",
        'disk "/dev/vdb";',
        "meta-disk internal;",
        "on node1 {",
        "address ipv4 10.0.42.100:7700;",
        "on node2 {",
        "address ipv4 10.0.42.254:7700;",
    ):
        assert line in res, res
    assert "10.0.42.254:7701" in drbd.resource(ctx, "rabbitmq", "/dev/vdc")


def test_resync_deadline_covers_a_full_resync_at_the_minimum_rate(provider: LibvirtProvider) -> None:
    ctx = Context(provider.scenario, "guide", provider, load_or_create(provider.state_dir))
    disk_mb = provider.scenario.services["mysql"].disk_mb
    assert drbd.resync_deadline_s(ctx, "mysql") == drbd.CONNECT_S + disk_mb * 1024 / drbd.C_MIN_RATE_KIB_S


def test_kvm_asked_for_but_absent_is_refused_with_the_fix(
    provider: LibvirtProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lab.providers as providers
    from lab.providers import ProviderError, libvirtd

    monkeypatch.setattr(libvirtd, "preflight", lambda: None)
    monkeypatch.setattr(providers, "kvm_usable", lambda: (False, "the CPU advertises neither vmx nor svm"))
    monkeypatch.setenv("LAB_LIBVIRT_DRIVER", "kvm")
    with pytest.raises(ProviderError, match="unset LAB_LIBVIRT_DRIVER"):
        provider.preflight()


def test_only_daemons_the_lab_started_are_its_to_stop() -> None:
    from lab.providers.libvirtd import Daemons

    assert Daemons("halab-x-lv-virt", {"libvirtd": [123, "456"]}).contained
    # another lab's libvirtd, found running in its namespace: entered, never stopped or deleted
    assert not Daemons("halab-y-lv-virt", {}).contained
    assert Daemons("halab-y-lv-virt", {}).prefix() == ["ip", "netns", "exec", "halab-y-lv-virt"]
    assert not Daemons(None, {}).contained and Daemons(None, {}).prefix() == []
