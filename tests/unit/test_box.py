import json
import sys
import tarfile
from pathlib import Path

import pytest

from lab import box, box_commands, box_disk, box_rootfs

pytestmark = pytest.mark.unit

UUID = "0b5c3a2e-6f1d-4c53-9a7e-2d8f1e4b6a90"


def test_metadata_is_what_vagrant_libvirt_reads() -> None:
    assert box.metadata(4) == {"provider": "libvirt", "format": "qcow2", "virtual_size": 4}
    assert json.loads(json.dumps(box.metadata(8)))["virtual_size"] == 8


def test_box_tar_holds_metadata_vagrantfile_and_image(tmp_path: Path) -> None:
    img = tmp_path / "work" / "box.img"
    img.parent.mkdir()
    img.write_bytes(b"QFI\xfb")
    out = tmp_path / "halab-debian12.box"
    box._write_box(out, img, 4)
    with tarfile.open(out) as tar:
        assert tar.getnames() == ["metadata.json", "Vagrantfile", "box.img"]
        meta = json.loads(tar.extractfile("metadata.json").read())
        vagrantfile = tar.extractfile("Vagrantfile").read().decode()
    assert meta == {"provider": "libvirt", "format": "qcow2", "virtual_size": 4}
    assert 'libvirt.cpu_model = "qemu64"' in vagrantfile
    assert 'synced_folder ".", "/vagrant", disabled: true' in vagrantfile


def test_box_file_name_has_no_slash() -> None:
    assert box.box_file_name("halab/debian12") == "halab-debian12.box"


def test_package_list_adds_the_base_and_sorts() -> None:
    pkgs = box.package_list(["tini", "corosync", "tini"])
    assert pkgs == sorted(pkgs) and pkgs.count("tini") == 1
    assert {"linux-image-amd64", "openssh-server", "systemd-sysv", "sudo"} <= set(pkgs)


def test_hash_ignores_order_and_duplicates_but_not_content() -> None:
    h = box.build_hash(["corosync", "pacemaker"])
    assert h == box.build_hash(["pacemaker", "corosync", "corosync"])
    assert h != box.build_hash(["corosync"])
    assert h != box.build_hash(["corosync", "pacemaker"], size_gb=8)
    assert h != box.build_hash(["corosync", "pacemaker"], name="other/box")


def test_stamp_hit_needs_same_hash_and_the_box_file(tmp_path: Path) -> None:
    name, pkgs = "halab/debian12", list(box.ROLE_PACKAGES)
    digest = box.build_hash(pkgs, name=name)
    assert box.cached_box(tmp_path, name, digest) is None  # nothing yet
    box.write_stamp(tmp_path, name, digest, pkgs, build_seconds=1.0)
    assert box.cached_box(tmp_path, name, digest) is None  # stamp without a box
    (tmp_path / "halab-debian12.box").write_bytes(b"x")
    assert box.cached_box(tmp_path, name, digest) == tmp_path / "halab-debian12.box"
    other = box.build_hash([*pkgs, "vim-tiny"], name=name)
    assert box.cached_box(tmp_path, name, other) is None  # package list changed: rebuild
    stamp = json.loads(box.stamp_path(tmp_path, name).read_text())
    assert stamp["hash"] == digest and "corosync" in stamp["packages"] and stamp["box"] == "halab-debian12.box"


def test_corrupt_stamp_means_rebuild(tmp_path: Path) -> None:
    (tmp_path / "halab-debian12.box").write_bytes(b"x")
    box.stamp_path(tmp_path, "halab/debian12").write_text("{not json")
    assert box.cached_box(tmp_path, "halab/debian12", "abc") is None


def test_build_box_returns_the_cached_box_without_running_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_run(*a, **k):
        raise AssertionError("a cached build ran a command")

    for module in (box, box_commands, box_rootfs, box_disk):  # every module of the build that runs commands
        monkeypatch.setattr(module, "run", no_run)
    digest = box.build_hash(box.ROLE_PACKAGES)
    (tmp_path / "halab-debian12.box").write_bytes(b"x")
    box.write_stamp(tmp_path, "halab/debian12", digest, box.ROLE_PACKAGES)
    assert box.build_box(tmp_path, log=lambda _m: None) == tmp_path / "halab-debian12.box"


def test_extlinux_conf() -> None:
    conf = box.render_extlinux_conf("/boot/vmlinuz-6.1.0-35-amd64", "/boot/initrd.img-6.1.0-35-amd64", UUID)
    lines = [line.strip() for line in conf.splitlines()]
    assert "DEFAULT debian" in lines and "LABEL debian" in lines and "SERIAL 0 115200" in lines
    assert "KERNEL /boot/vmlinuz-6.1.0-35-amd64" in lines
    assert "INITRD /boot/initrd.img-6.1.0-35-amd64" in lines
    append = next(line for line in lines if line.startswith("APPEND "))
    assert f"root=UUID={UUID}" in append and "console=ttyS0" in append and "net.ifnames=0" in append
    # the last console= is /dev/console: systemd's messages and the getty go to the serial port
    assert append.rsplit("console=", 1)[1].startswith("ttyS0")


def test_extlinux_conf_rejects_a_bad_uuid() -> None:
    with pytest.raises(ValueError):
        box.render_extlinux_conf("/boot/vmlinuz", "/boot/initrd.img", "not-a-uuid")


def test_fstab_and_partition_table() -> None:
    assert box.render_fstab(UUID).split()[:3] == [f"UUID={UUID}", "/", "ext4"]
    script = box.sfdisk_script()
    assert "label: dos" in script and "start=2048, type=83, bootable" in script


def test_guest_files() -> None:
    files = box.guest_files("ssh-rsa AAAA vagrant insecure public key")
    assert files["etc/sudoers.d/vagrant"] == ("vagrant ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    assert files["home/vagrant/.ssh/authorized_keys"][1] == 0o600
    assert files["etc/machine-id"][0] == ""
    assert "ssh-keygen -A" in files["etc/systemd/system/ssh.service.d/halab-hostkeys.conf"][0]
    dhcp = files["etc/systemd/network/81-halab-dhcp.network"][0]
    assert "Name=en* eth*" in dhcp and "DHCP=ipv4" in dhcp and "IgnoreCarrierLoss=yes" in dhcp
    dropin = files["etc/systemd/network/50-vagrant-eth1.network.d/halab-carrier.conf"][0]
    assert "IgnoreCarrierLoss=yes" in dropin and "ConfigureWithoutCarrier=yes" in dropin


def test_lab_services_are_disabled_but_ssh_is_not() -> None:
    for svc in ("corosync", "pacemaker", "mariadb", "rabbitmq-server", "haproxy", "keepalived", "memcached"):
        assert f"{svc}.service" in box.DISABLED_UNITS
    assert "ssh.service" not in box.DISABLED_UNITS and "ssh.service" in box.ENABLED_UNITS


def test_missing_binary_names_the_debian_package() -> None:
    with pytest.raises(box.MissingBinary) as exc:
        box.run(["extlinux-does-not-exist-here", "--install", "/mnt"])
    assert "extlinux-does-not-exist-here: command not found" in str(exc.value)
    err = box.MissingBinary("extlinux")
    assert err.package == "extlinux" and "apt-get install extlinux" in str(err)
    assert "apt-get install qemu-utils" in str(box.MissingBinary("qemu-img"))
    assert "apt-get install fdisk" in str(box.MissingBinary("sfdisk"))


def test_ensure_binaries_without_install_raises_for_the_missing_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(box_commands.shutil, "which", lambda b: None if b == "mmdebstrap" else f"/usr/bin/{b}")
    with pytest.raises(box.MissingBinary, match="apt-get install mmdebstrap"):
        box.ensure_binaries(["qemu-img", "mmdebstrap"], install=False)


def test_failed_command_names_command_exit_code_and_stderr_tail() -> None:
    script = "import sys\nfor i in range(40): print('line', i, file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(box.BoxError) as exc:
        box.run([sys.executable, "-c", script])
    msg = str(exc.value)
    assert "exit code 3" in msg and sys.executable in msg
    assert "line 39" in msg and "line 0\n" not in msg  # the tail, not everything


def test_hidden_sectors_patch_sets_the_partition_start() -> None:
    sector = bytearray(512)
    sector[510:512] = b"\x55\xaa"
    sector[0x1B] = 0xEE  # neighbours untouched
    sector[0x20] = 0xEF
    patched = box.patch_hidden_sectors(bytes(sector), 2048)
    assert len(patched) == 512 and int.from_bytes(patched[0x1C:0x20], "little") == 2048
    assert patched[0x1B] == 0xEE and patched[0x20] == 0xEF and patched[510:] == b"\x55\xaa"
    with pytest.raises(box.BoxError, match="no extlinux boot sector"):
        box.patch_hidden_sectors(bytes(512), 2048)
