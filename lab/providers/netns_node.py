"""netns provider, the base every part of it builds on: the lab's names, its state file, and a node's PID 1."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lab.providers.base import ProviderError
from lab.providers.common import LabState, default_state_root, starttime
from lab.scenario import Scenario

# Processes of a SIGKILLed namespace are gone within milliseconds; seconds only on a badly overloaded machine.
DOWN_S = 10
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class NetnsNode(LabState):
    name: str  # NetnsProvider's

    def __init__(self, scenario: Scenario, lab: str | None = None, state_root: Path | None = None) -> None:
        self.scenario = scenario
        self.lab = lab or scenario.name
        self.prefix = f"halab-{self.lab}"
        self.state_dir = (state_root or default_state_root()) / self.lab
        self.state_file = self.state_dir / "state.json"
        self._state: dict = self._load_state()

    # ---------------------------------------------------------------- names and state
    @property
    def fabric(self) -> str:
        return f"{self.prefix}-fabric"

    def netns(self, node: str) -> str:
        return f"{self.prefix}-{node}"

    def veth(self, node: str, network: str) -> str:
        """Fabric-side veth name (IFNAMSIZ is 16): readable when it fits, hashed when not."""
        name = f"{node}-{network}"
        if len(name) <= 15:
            return name
        return "v" + hashlib.sha1(name.encode()).hexdigest()[:14]

    def _fresh_state(self) -> dict:
        return {
            "provider": self.name,
            "lab": self.lab,
            "namespaces": [],
            "loops": {},
            "init_pids": {},
            "cut": [],
            "filters": [],
        }

    def _node_dir(self, node: str) -> Path:
        return self.state_dir / "nodes" / node

    # ---------------------------------------------------------------- the node's PID 1
    def is_running(self, node: str) -> bool:
        return self._init_alive(node)

    def _init_pid(self, node: str) -> int | None:
        """The node's PID 1 as a host PID, only if it is still the process we started (PIDs are reused: a stale
        one would point nsenter and kill at some host process)."""
        self._refresh_state()
        pid = self._state["init_pids"].get(node)
        if pid and starttime(pid) is not None and starttime(pid) == self._state.get("init_starts", {}).get(node):
            return int(pid)
        return None

    def _init_alive(self, node: str) -> bool:
        return self._init_pid(node) is not None

    def _enter(self, node: str) -> list[str]:
        pid = self._init_pid(node)
        if not pid:
            raise ProviderError(f"node {node} is not running (crashed or lab not up): `halab up` or restart it")
        return ["nsenter", "-t", str(pid), "-n", "-m", "-u", "-i", "-p", "-r", "-w"]
