"""provision/galera.py and provision/files/clustercheck.py without daemons: config rendering, status and
grastate.dat parsing, choosing the node to bootstrap from, and the clustercheck HTTP answers."""

from __future__ import annotations

import configparser
import dataclasses
import http.client
import importlib.util
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from lab.scenario import Scenario, load_scenario
from provision import galera, mysql
from provision.context import Context, render
from provision.galera import GaleraError, Position, choose_bootstrap_node
from provision.secrets import Secrets

pytestmark = pytest.mark.unit

UUID = "92bbb384-e8cd-11f1-b419-42a312db05cb"
OTHER_UUID = "6fbaf592-e8cd-11f1-87ef-5f7d2bf0a98a"
SECRETS = Secrets("s3cr3t-pw", "rabbit-pw", "COOKIE", "00" * 128)


def context(suspect_ms: int | None = None, secrets: Secrets = SECRETS) -> Context:
    sc: Scenario = load_scenario("active-active")
    if suspect_ms is not None:
        sc = dataclasses.replace(sc, cluster=dataclasses.replace(sc.cluster, galera_suspect_timeout_ms=suspect_ms))
    return Context(sc, "guide", provider=None, secrets=secrets)  # type: ignore[arg-type]  # rendering only


def mysqld_section(text: str) -> configparser.SectionProxy:
    """Parse as MariaDB reads option files (keys without values allowed, '#' comments)."""
    cp = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=True)
    cp.read_string(text)
    return cp["mysqld"]


# ----------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    "ms,iso", [(5000, "PT5S"), (1500, "PT1.5S"), (500, "PT0.5S"), (7500, "PT7.5S"), (250, "PT0.25S"), (15000, "PT15S")]
)
def test_iso_durations(ms: int, iso: str) -> None:
    assert galera.iso_duration(ms) == iso


def test_default_suspect_timeout_gives_galeras_defaults() -> None:
    assert galera.provider_options(context().opts) == (
        "evs.suspect_timeout=PT5S; evs.inactive_timeout=PT15S; evs.install_timeout=PT7.5S; "
        "evs.keepalive_period=PT1S; evs.inactive_check_period=PT0.5S; gcache.size=32M"
    )


@pytest.mark.parametrize("suspect_ms", [1000, 2000, 5000, 20000])
def test_evs_timers_keep_galeras_ordering(suspect_ms: int) -> None:
    t = galera.evs_timers_ms(context(suspect_ms).opts)
    assert t["evs.suspect_timeout"] == suspect_ms
    assert t["evs.inactive_check_period"] < t["evs.keepalive_period"] < t["evs.suspect_timeout"]
    assert t["evs.suspect_timeout"] < t["evs.install_timeout"] < t["evs.inactive_timeout"]


def test_deadlines_grow_with_the_suspect_timeout() -> None:
    assert galera.departure_bound_s(context().opts) == 22.5  # inactive PT15S + install PT7.5S
    assert galera.departure_bound_s(context(2000).opts) == 9.0
    assert galera.join_deadline_s(context(2000).opts) < galera.join_deadline_s(context(5000).opts)


def test_config_translates_the_guides_galera_cnf() -> None:
    ctx = context()
    text = galera.render_config(ctx, "controller2")
    s = mysqld_section(text)
    assert s["wsrep_on"] == "ON"
    assert s["wsrep_provider"] == "/usr/lib/galera/libgalera_smm.so"
    assert s["wsrep_cluster_address"] == '"gcomm://10.0.0.1,10.0.0.2,10.0.0.3"'
    assert s["wsrep_cluster_name"] == '"galera_cluster"'
    assert s["wsrep_node_address"] == '"10.0.0.2"'
    assert s["wsrep_node_name"] == '"controller2"'
    assert s["wsrep_sst_method"] == "rsync"
    assert s["binlog_format"] == "ROW"
    assert s["default_storage_engine"] == "InnoDB"
    assert s["innodb_autoinc_lock_mode"] == "2"
    assert s["bind-address"] == "0.0.0.0"
    assert s["innodb_buffer_pool_size"] == "16M"
    assert s["performance_schema"] == "OFF"
    assert s["tmpdir"] == "/run/mysqld"  # not the host's shared /tmp
    assert s["wsrep_provider_options"] == f'"{galera.provider_options(ctx.opts)}"'
    assert "innodb_locks_unsafe_for_binlog" not in s  # removed in MariaDB 10.5: would stop mariadbd
    assert "wsrep_sst_auth" not in s


def test_config_follows_the_scenarios_suspect_timeout() -> None:
    s = mysqld_section(galera.render_config(context(2000), "controller1"))
    assert "evs.suspect_timeout=PT2S;" in s["wsrep_provider_options"]
    assert "evs.inactive_timeout=PT6S;" in s["wsrep_provider_options"]


def test_every_node_lists_the_same_members() -> None:
    ctx = context()
    addrs = {mysqld_section(galera.render_config(ctx, n))["wsrep_cluster_address"] for n in galera.galera_nodes(ctx)}
    assert addrs == {'"gcomm://10.0.0.1,10.0.0.2,10.0.0.3"'}
    assert galera.galera_nodes(ctx) == ["controller1", "controller2", "controller3"]


def test_clustercheck_account_is_per_lab_and_not_the_guides_sample() -> None:
    pw = galera.clustercheck_password(context())
    assert pw == galera.clustercheck_password(context())  # same on every node
    assert pw != galera.clustercheck_password(context(secrets=dataclasses.replace(SECRETS, mysql_password="other")))
    assert SECRETS.mysql_password not in pw and len(pw) >= 20
    text = render("galera-clustercheck.cnf.j2", password=pw, socket=galera.SOCKET)
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(text)
    assert dict(cp["client"]) == {"user": "clustercheck", "password": pw, "socket": "/run/mysqld/mysqld.sock"}


def test_accounts_use_the_lab_schema() -> None:
    ctx = context()
    sql = galera.accounts_sql(ctx)
    assert "CREATE TABLE IF NOT EXISTS halab.writes (id BIGINT PRIMARY KEY, client VARCHAR(64), at DOUBLE)" in sql
    assert "CREATE TABLE IF NOT EXISTS halab.writes (id BIGINT PRIMARY KEY, client VARCHAR(64), at DOUBLE)" in (
        mysql.client_sql(ctx)
    )
    assert f"'halab'@'%' IDENTIFIED BY '{SECRETS.mysql_password}'" in sql
    assert f"'clustercheck'@'localhost' IDENTIFIED BY '{galera.clustercheck_password(ctx)}'" in sql


# ----------------------------------------------------------------------------------------------- status

STATUS = (
    f"wsrep_local_state_uuid\t{UUID}\n"
    "wsrep_last_committed\t144\n"
    "wsrep_notify_cmd\t\n"
    "wsrep_incoming_addresses\t10.0.0.1:0,10.0.0.2:0,10.0.0.3:0\n"
    "wsrep_local_state\t4\n"
    "wsrep_local_state_comment\tSynced\n"
    "wsrep_cluster_size\t3\n"
    f"wsrep_cluster_state_uuid\t{UUID}\n"
    "wsrep_cluster_status\tPrimary\n"
    "wsrep_connected\tON\n"
    "wsrep_ready\tON\n"
)


def test_parse_status() -> None:
    st = galera.parse_status(STATUS)
    assert st["wsrep_cluster_size"] == "3"
    assert st["wsrep_notify_cmd"] == ""
    assert st["wsrep_incoming_addresses"] == "10.0.0.1:0,10.0.0.2:0,10.0.0.3:0"
    assert galera.parse_status("") == {}
    assert galera.parse_status("ERROR 2002 (HY000): Can't connect") == {}


def test_member_means_synced_in_a_primary_component() -> None:
    st = galera.parse_status(STATUS)
    assert galera.is_member(st) and galera.is_member(st, 3)
    assert not galera.is_member(st, 2)
    assert not galera.is_member({**st, "wsrep_cluster_status": "non-Primary"})
    assert not galera.is_member({**st, "wsrep_local_state_comment": "Donor/Desynced"})
    assert not galera.is_member({**st, "wsrep_ready": "OFF"})
    assert not galera.is_member({})
    assert galera.summary({}) == "mysqld down"
    assert galera.summary(st) == "size=3 Primary Synced seqno=144"


# ----------------------------------------------------------------------------------------------- grastate.dat

CRASHED = f"""# GALERA saved state
version: 2.1
uuid:    {UUID}
seqno:   -1
safe_to_bootstrap: 0
"""
CLEAN = f"""# GALERA saved state
version: 2.1
uuid:    {UUID}
seqno:   141
safe_to_bootstrap: 1
"""


def test_parse_grastate() -> None:
    assert galera.parse_grastate(CRASHED) == galera.GraState(UUID, -1, False)
    assert galera.parse_grastate(CLEAN) == galera.GraState(UUID, 141, True)
    old = CLEAN.replace("safe_to_bootstrap: 1\n", "").replace("version: 2.1", "version: 2.0")
    assert galera.parse_grastate(old).safe_to_bootstrap  # before galera 3.19 every node was bootstrappable


@pytest.mark.parametrize("text", ["", "garbage", CLEAN.replace("seqno:   141", "seqno: x")])
def test_bad_grastate_says_so(text: str) -> None:
    with pytest.raises(ValueError, match="not a grastate.dat"):
        galera.parse_grastate(text)


RECOVER_LOG = f"""2026-11-25 12:42:06 0 [Note] Starting MariaDB 10.11.19-MariaDB-0+deb12u1 as process 301
2026-11-25 12:42:06 0 [Note] InnoDB: Starting crash recovery from checkpoint LSN=47043
2026-11-25 12:42:06 0 [Note] WSREP: Recovered position: {OTHER_UUID}:7
2026-11-25 12:42:06 0 [Note] WSREP: Recovered position: {UUID}:141
2026-11-25 12:42:06 0 [Note] /usr/sbin/mariadbd: Shutdown complete
"""


def test_parse_recovered_position() -> None:
    assert galera.parse_recovered_position(RECOVER_LOG) == (UUID, 141)  # the last one
    assert galera.parse_recovered_position(f"WSREP: Recovered position: {galera.ZERO_UUID}:-1") == (
        galera.ZERO_UUID,
        -1,
    )
    assert galera.parse_recovered_position("[ERROR] Aborting") is None


# ----------------------------------------------------------------------------------------------- choosing


def pos(node: str, seqno: int, safe: bool = False, uuid: str = UUID, source: str = "wsrep-recover") -> Position:
    return Position(node, uuid, seqno, safe, source)


def test_the_most_advanced_node_is_chosen() -> None:
    c = choose_bootstrap_node([pos("c1", 140), pos("c2", 141), pos("c3", 139)])
    assert c.node == "c2"
    assert c.reason == "c2: highest seqno 141; behind: c1 140, c3 139"
    assert [p.node for p in c.positions] == ["c1", "c2", "c3"]


def test_highest_seqno_beats_safe_to_bootstrap() -> None:
    # safe_to_bootstrap marks the last node to leave cleanly; should it be behind, bootstrapping it loses writes
    c = choose_bootstrap_node([pos("c1", 100, safe=True, source="grastate"), pos("c2", 120)])
    assert c.node == "c2"


def test_ties_prefer_safe_to_bootstrap_then_scenario_order() -> None:
    c = choose_bootstrap_node([pos("c1", 141), pos("c2", 141), pos("c3", 141, safe=True, source="grastate")])
    assert c.node == "c3"
    assert "tied with c1, c2, and it has safe_to_bootstrap: 1" in c.reason
    c = choose_bootstrap_node([pos("c1", 141), pos("c2", 141), pos("c3", 141)])
    assert c.node == "c1"
    assert c.reason == "c1: highest seqno 141, tied with c2, c3, first in scenario order"


def test_unknown_positions_are_skipped_and_named() -> None:
    c = choose_bootstrap_node(
        [
            pos("c1", -1, source="missing"),
            pos("c2", 5, uuid=galera.ZERO_UUID),  # never joined a cluster
            pos("c3", 3),
        ]
    )
    assert c.node == "c3"
    assert "position unknown on c1, c2" in c.reason


def test_no_known_position_refuses() -> None:
    with pytest.raises(GaleraError, match="no node knows its position.*c1 .*:-1 \\(missing\\)"):
        choose_bootstrap_node([pos("c1", -1, source="missing"), pos("c2", -1, uuid=galera.ZERO_UUID)])


def test_different_histories_need_a_human() -> None:
    with pytest.raises(GaleraError, match="disagree on the cluster's history"):
        choose_bootstrap_node([pos("c1", 10), pos("c2", 12, uuid=OTHER_UUID)])


def test_position_prints_for_the_report() -> None:
    assert str(pos("c1", 141, safe=True, source="grastate")) == f"c1 {UUID}:141 (grastate safe_to_bootstrap)"


# ----------------------------------------------------------------------------------------------- clustercheck.py


@pytest.fixture(scope="module")
def cc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("clustercheck", galera.CLUSTERCHECK_SRC)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_clustercheck_is_stdlib_only() -> None:
    text = Path(galera.CLUSTERCHECK_SRC).read_text()
    imports = {ln.split()[1].split(".")[0] for ln in text.splitlines() if ln.startswith(("import ", "from "))}
    assert imports <= {"__future__", "argparse", "subprocess", "sys", "http"}
    assert text.startswith("#!/usr/bin/python3\n")


@pytest.mark.parametrize(
    "state,donor_ok,up",
    [("4", False, True), ("2", False, False), ("2", True, True), ("0", True, False), (None, False, False)],
)
def test_clustercheck_availability(cc: ModuleType, state: str | None, donor_ok: bool, up: bool) -> None:
    assert cc.available(state, donor_ok) is up


def test_clustercheck_reads_the_state_with_the_mysql_client(cc: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def fake_run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, "wsrep_local_state\t4\n", "")

    monkeypatch.setattr(cc.subprocess, "run", fake_run)
    assert cc.local_state("/etc/mysql/clustercheck.cnf", 5) == "4"
    assert seen[0][:2] == ["mysql", "--defaults-file=/etc/mysql/clustercheck.cnf"]

    monkeypatch.setattr(cc.subprocess, "run", lambda argv, **kw: subprocess.CompletedProcess(argv, 1, "", "ERROR"))
    assert cc.local_state("/x", 5) is None

    def hang(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, 5)

    monkeypatch.setattr(cc.subprocess, "run", hang)
    assert cc.local_state("/x", 5) is None


@pytest.fixture
def served(cc: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, dict[str, str | None]]]:
    """The handler on an ephemeral loopback port, answering from a state the test sets."""
    state: dict[str, str | None] = {"value": "4"}
    monkeypatch.setattr(cc, "local_state", lambda defaults_file, timeout: state["value"])
    server = cc.ThreadingHTTPServer(("127.0.0.1", 0), cc.Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], state
    finally:
        server.shutdown()
        server.server_close()


def ask(port: int, method: str = "OPTIONS") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, "/")
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_clustercheck_answers_haproxy(served: tuple[int, dict[str, str | None]]) -> None:
    port, state = served
    assert ask(port) == (200, b"Galera cluster node is synced.\r\n")  # HAProxy's httpchk default: OPTIONS /
    assert ask(port, "GET") == (200, b"Galera cluster node is synced.\r\n")
    state["value"] = "2"  # donor: not available by default (AVAILABLE_WHEN_DONOR=0)
    assert ask(port) == (503, b"Galera cluster node is not synced.\r\n")
    state["value"] = None  # mysqld down
    assert ask(port, "HEAD") == (503, b"")
