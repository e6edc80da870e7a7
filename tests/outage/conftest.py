"""An own PostgreSQL cluster with Harbor's web and a worker on it, for the whole module."""

import os
import shutil

import pytest

from tests.outage.harbor_stack import HarborStack, OwnPostgres


@pytest.fixture(scope="module")
def own_postgres():
    if shutil.which("pg_createcluster") is None or os.geteuid() != 0:
        pytest.skip("needs Debian's pg_createcluster, as root, to make a cluster of its own")
    cluster = OwnPostgres().create()
    yield cluster
    cluster.drop()


@pytest.fixture(scope="module")
def stack(own_postgres, tmp_path_factory):
    """Harbor on ``own_postgres``, with the wait-for-message and sleep-step plans."""
    prefix = f"harboroutage{os.getpid()}"
    harbor = HarborStack(own_postgres.url(), prefix, tmp_path_factory.mktemp("stack"))
    try:
        yield harbor.start(
            plans=["examples/plans/wait-for-message.yaml", "tests/outage/plans/sleep-step.yaml"]
        )
    finally:
        harbor.stop()
