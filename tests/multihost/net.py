"""Simulated hosts for the multi-host test: network namespaces with veth pairs on a bridge,
and a TCP forwarder through which they reach PostgreSQL and Redis (which can add latency).

Needs root and iproute2's ``ip``; ``why_not`` says why not when either is missing.
"""

import os
import queue
import shutil
import socket
import subprocess
import threading
import time


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


class Forwarder:
    """Forwards TCP connections from ``listen`` (host, 0 for any port) to ``target``,
    holding every chunk ``delay`` seconds in each direction (settable while running). The
    delay is applied in a queue, not by sleeping the reader, so a stream keeps its pace."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]):
        self.target = target
        self.delay = 0.0
        self.server = socket.create_server(listen)
        self.address = self.server.getsockname()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                chunks: queue.Queue = queue.Queue()
                threading.Thread(target=self._read, args=(src, chunks), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, chunks), daemon=True).start()

    def _read(self, src: socket.socket, chunks: queue.Queue) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            chunks.put((time.monotonic() + self.delay, data))
            if not data:
                return

    @staticmethod
    def _write(dst: socket.socket, chunks: queue.Queue) -> None:
        while True:
            due, data = chunks.get()
            time.sleep(max(due - time.monotonic(), 0))
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
