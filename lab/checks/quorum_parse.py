"""`corosync-quorumtool -s` output as the observer records it in a `quorum` sample (pure: text in, dict out).

The format is corosync 3.1.7's tools/corosync-quorumtool.c: a "Quorum information" block (Quorate: Yes/No), a
"Votequorum information" block (Expected votes, Highest expected, Total votes, Quorum, Flags) and a membership
table (Nodeid, Votes, [Qdevice,] Name; the local node's name followed by " (local)").
"""

from __future__ import annotations

import re
from typing import Any

_FIELD = re.compile(r"^([A-Za-z][A-Za-z ]*?):\s*(.*?)\s*$")
_MEMBER = re.compile(r"^\s*(\d+)\s+(\d+)\s+(?:((?:N?A),(?:N?V),(?:N?MW)|NR)\s+)?(\S.*?)\s*$")


class QuorumParseError(ValueError):
    """The text is not `corosync-quorumtool -s` output (corosync down, a truncated answer)."""


def parse_quorumtool(text: str) -> dict[str, Any]:
    """{"quorate", "expected", "highest_expected", "total", "quorum", "flags", "members", "member_ids", "node_id",
    "ring_id"}. Flags as printed (2Node Quorate WaitForAll LastManStanding AutoTieBreaker AllowDownscale Qdevice);
    members are names as the nodelist gives them, the local node included, the qdevice's row left out."""
    fields: dict[str, str] = {}
    members: list[str] = []
    ids: list[int] = []
    in_table = False
    for line in text.splitlines():
        if line.strip().startswith("Nodeid"):
            in_table = True
            continue
        if in_table:
            m = _MEMBER.match(line)
            if m is None:
                continue
            nodeid, name = int(m.group(1)), m.group(4).removesuffix("(local)").strip()
            if nodeid == 0 and name.startswith("Qdevice"):  # the qdevice's row ("Qdevice (votes 1)" when it
                # withholds its vote from this node): a vote, not a member
                continue
            ids.append(nodeid)
            members.append(name)
            continue
        m = _FIELD.match(line)
        if m:
            fields.setdefault(m.group(1), m.group(2))
    if "Quorate" not in fields or "Expected votes" not in fields:
        shown = text.strip().splitlines()[:1] or ["(no output)"]
        raise QuorumParseError(f"not corosync-quorumtool -s output: {shown[0][:200]}")
    quorate = fields["Quorate"].lower()
    if quorate not in ("yes", "no"):
        raise QuorumParseError(f"Quorate is {fields['Quorate']!r}, neither Yes nor No")
    try:
        value: dict[str, Any] = {
            "quorate": quorate == "yes",
            "expected": int(fields["Expected votes"]),
            "highest_expected": int(fields["Highest expected"]),
            "total": int(fields["Total votes"]),
            "quorum": int(fields["Quorum"].split()[0]),  # "4 Activity blocked" when inquorate
        }
    except (KeyError, IndexError, ValueError) as e:
        raise QuorumParseError(f"votequorum information incomplete ({e})") from None
    value["flags"] = [f for f in fields.get("Flags", "").split() if f]
    value["members"] = members
    value["member_ids"] = ids
    if fields.get("Node ID", "").isdigit():
        value["node_id"] = int(fields["Node ID"])
    if "Ring ID" in fields:
        value["ring_id"] = fields["Ring ID"]
    return value
