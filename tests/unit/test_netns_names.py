"""Names the netns provider makes must fit the kernel's limits and carry the lab's name."""

import pytest

from lab.providers.netns import NetnsProvider
from lab.scenario import load_scenario

pytestmark = pytest.mark.unit


@pytest.fixture
def provider(tmp_path) -> NetnsProvider:
    return NetnsProvider(load_scenario("active-active"), lab="t", state_root=tmp_path)


def test_veth_names_fit_ifnamsiz_and_are_unique(provider: NetnsProvider) -> None:
    names = {provider.veth(n, net) for n, node in provider.scenario.nodes.items() for net in node.addresses}
    assert all(len(v) <= 15 for v in names)
    assert len(names) == sum(len(n.addresses) for n in provider.scenario.nodes.values())


def test_long_names_are_hashed_not_truncated(provider: NetnsProvider) -> None:
    a, b = provider.veth("a-very-long-node-1", "ring0"), provider.veth("a-very-long-node-2", "ring0")
    assert a != b and len(a) == len(b) == 15


def test_namespaces_carry_the_lab_name(provider: NetnsProvider) -> None:
    assert provider.fabric == "halab-t-fabric"
    assert provider.netns("node1") == "halab-t-node1"


def test_state_dir_is_outside_tmp_and_var_lib(provider: NetnsProvider) -> None:
    from lab.providers.netns import default_state_root

    root = str(default_state_root())
    assert not root.startswith("/tmp") and not root.startswith("/var/lib")
