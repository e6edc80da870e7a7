"""Simulated hosts for the multi-host test: network namespaces with veth pairs on a bridge,
and a TCP forwarder through which they reach PostgreSQL and Redis (which can add latency).

Needs root and iproute2's ``ip``; ``why_not`` says why not when either is missing.
"""

import os
import shutil
import subprocess

from bench.forwarder import Forwarder

__all__ = ["Forwarder", "Network", "why_not"]


def why_not() -> str:
    """Why namespaces cannot be made here ('' when they can)."""
    if os.geteuid() != 0:
        return "the multi-host test makes network namespaces, which needs root"
    if shutil.which("ip") is None:
        return "the multi-host test needs iproute2's `ip` command"
    return ""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class Network:
    """A bridge ``hb<tag>`` at 10.213.<subnet>.1/24 and one namespace per host, each with
    a veth pair (its host side on the bridge). ``cut``/``restore`` take a host's link down
    and up: its TCP connections stall, as with a pulled cable, and resume after."""

    def __init__(self, tag: int):
        self.tag = tag
        self.subnet = tag % 200 + 20
        self.bridge = f"hb{tag}"
        self.hosts: dict[str, tuple[str, str, str]] = {}  # name: (namespace, veth, address)

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge (where the forwarders listen)."""
        return f"10.213.{self.subnet}.1"

    def up(self) -> "Network":
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, name: str) -> str:
        """Make host ``name``; return its address."""
        index = len(self.hosts) + 1
        namespace, outside, inside = f"hb{self.tag}{name}", f"hv{self.tag}{index}", "eth0"
        address = f"10.213.{self.subnet}.{10 + index}"
        ip("netns", "add", namespace)
        ip("link", "add", outside, "type", "veth", "peer", "name", f"hp{self.tag}{index}")
        ip("link", "set", f"hp{self.tag}{index}", "netns", namespace)
        ip("-n", namespace, "link", "set", f"hp{self.tag}{index}", "name", inside)
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", inside)
        ip("-n", namespace, "link", "set", inside, "up")
        ip("-n", namespace, "link", "set", "lo", "up")
        ip("link", "set", outside, "master", self.bridge, "up")
        self.hosts[name] = (namespace, outside, address)
        return address

    def wrap(self, name: str) -> tuple[str, ...]:
        """The command prefix that runs a program on host ``name``."""
        return ("ip", "netns", "exec", self.hosts[name][0])

    def cut(self, name: str) -> None:
        ip("link", "set", self.hosts[name][1], "down")

    def restore(self, name: str) -> None:
        ip("link", "set", self.hosts[name][1], "up")

    def down(self) -> None:
        """Remove every namespace (their veths go with them) and the bridge; never raises."""
        for namespace, _, _ in self.hosts.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
