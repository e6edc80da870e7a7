"""A TCP forwarder that adds latency: how the bench and the multi-host test put a slow
network between Harbor's processes and PostgreSQL (or Redis) on one machine."""

import queue
import socket
import threading
import time


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
