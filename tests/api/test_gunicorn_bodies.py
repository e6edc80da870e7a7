"""Request bodies through the real web server (gunicorn, as deployed): a chunked body, which
has no Content-Length, is read and capped; a false Content-Length never lets more in."""

import json
import socket
import subprocess
import sys

import pytest

from builds.models import BuildMessage
from tests.api.conftest import assert_nothing_stored
from tests.api.test_sendmessage import message
from tests.workers import ROOT, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)
LIMIT = 4096


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(transactional_db):
    """A gunicorn process serving Harbor on the test database, with a 4 KiB body cap."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "harbor.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=worker_env(HARBOR_API_MAX_BODY_BYTES=str(LIMIT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        wait_for(listening, timeout=30, message="gunicorn did not start")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def raw_post(port: int, headers: list[str], body: bytes) -> tuple[int, dict]:
    """Send one raw HTTP/1.1 request; return the status and the JSON body of the answer."""
    head = "\r\n".join(["POST /api/v1/sendmessage HTTP/1.1", "Host: 127.0.0.1", *headers])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    raw_body = rest.partition(b"\r\n\r\n")[2]
    return int(status_line.split()[1]), json.loads(raw_body or b"{}")


def chunked(body: bytes, size: int = 1000) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def headers(api_token: str, *extra: str) -> list[str]:
    return [
        f"Authorization: Bearer {api_token}",
        "Content-Type: application/json",
        "Connection: close",
        *extra,
    ]


def test_a_small_chunked_message_is_stored(gunicorn, api_token, waiting_target):
    body = json.dumps(message(waiting_target)).encode()
    status, answer = raw_post(
        gunicorn, headers(api_token, "Transfer-Encoding: chunked"), chunked(body)
    )
    assert (status, answer["status"]) == (202, "accepted")
    assert BuildMessage.objects.get().receiver_phid == waiting_target.phid


def test_a_large_chunked_message_gets_413(gunicorn, api_token, waiting_target):
    payload = message(waiting_target, unit=[{"name": "x" * LIMIT, "result": "pass"}])
    with assert_nothing_stored():
        status, answer = raw_post(
            gunicorn,
            headers(api_token, "Transfer-Encoding: chunked"),
            chunked(json.dumps(payload).encode()),
        )
    assert (status, answer["error"]) == (413, "too_large")


def test_a_false_small_content_length_lets_only_that_many_bytes_in(
    gunicorn, api_token, waiting_target
):
    payload = message(waiting_target, unit=[{"name": "x" * LIMIT, "result": "pass"}])
    with assert_nothing_stored():
        status, answer = raw_post(
            gunicorn, headers(api_token, "Content-Length: 50"), json.dumps(payload).encode()
        )
    assert (status, answer["error"]) == (400, "invalid_json")
