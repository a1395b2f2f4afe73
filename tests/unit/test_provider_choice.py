"""LAB_PROVIDER: explicit names, `auto`, and the several-providers form the acceptance fixture takes."""

from __future__ import annotations

import pytest

import lab.providers as providers
from lab.fixtures import providers_requested
from lab.providers import ProviderError, choose

pytestmark = pytest.mark.unit


def test_an_explicit_provider_is_taken_as_asked() -> None:
    assert choose("libvirt")[0] == "libvirt"
    assert choose("netns")[0] == "netns"


def test_an_unknown_provider_is_refused_with_the_choices() -> None:
    with pytest.raises(ProviderError, match="use netns, libvirt or auto"):
        choose("docker")


def test_auto_takes_libvirt_only_with_kvm_and_vagrant_libvirt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "vagrant_libvirt", lambda: (True, "vagrant with vagrant-libvirt"))
    monkeypatch.setattr(providers, "kvm_usable", lambda: (False, "the CPU advertises neither vmx nor svm"))
    name, why = choose("auto")
    assert name == "netns" and "vmx" in why
    monkeypatch.setattr(providers, "kvm_usable", lambda: (True, "vmx/svm present and /dev/kvm usable"))
    assert choose("auto")[0] == "libvirt"


def test_several_providers_run_the_suites_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_PROVIDER", "netns, libvirt")
    assert providers_requested() == ["netns", "libvirt"]
    monkeypatch.setenv("LAB_PROVIDER", "")
    assert providers_requested() == ["auto"]
