"""Fixtures for the client compatibility tests: a tidegate subprocess per test.

`tidegate` starts one server per test (memory backend, ephemeral ports) and yields a
`Tidegate` with `.bootstrap` ("127.0.0.1:PORT") and `.brokers` (one "host:port" per
shard, node id = index). Parametrize it indirectly to change the command line:

    @pytest.mark.parametrize("tidegate", [{"shards": 2, "default_partitions": 4}], indirect=True)

The server's stderr goes to a per-test log file whose tail is attached to the report of
a failing test ("tidegate log" section). TIDEGATE_BIN overrides the binary path.
"""

import os
import signal

import pytest

from harness import log_tail, start_seaweedfs, start_tidegate, stop, stop_seaweedfs


# The session's weed flushes every second, as README advises for acks=all: tidegate answers
# acks=all once SMQ has flushed the records (--smq-acks-all flushed, its default), and weed's
# own 5 s interval would make every produce round of a test wait up to 5 s.
SESSION_WEED_ARGS = "-mq.broker.logFlushInterval=1"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """One SeaweedFS with its MQ broker for the whole session (a harness.SeaweedFS), started
    with SESSION_WEED_ARGS unless SEAWEEDFS_EXTRA_ARGS says otherwise."""
    directory = tmp_path_factory.mktemp("seaweedfs")
    seaweedfs = start_seaweedfs(directory, extra_args=os.environ.get("SEAWEEDFS_EXTRA_ARGS", SESSION_WEED_ARGS))
    try:
        yield seaweedfs
    finally:
        stop_seaweedfs(directory)


@pytest.fixture(params=["memory", "smq"])
def backend(request):
    """Every client test runs against both backends. The value is None for memory, and for
    smq the session's harness.SeaweedFS: tidegate then finds its broker and filer through
    the master (--smq-master), as a user would."""
    return request.getfixturevalue("seaweedfs") if request.param == "smq" else None


@pytest.fixture
def tidegate(request, tmp_path, backend):
    """A running tidegate. Indirect params: an int (shard count) or a dict of start_tidegate kwargs."""
    param = getattr(request, "param", None)
    kwargs = {"shards": param} if isinstance(param, int) else dict(param or {})
    tg = start_tidegate(tmp_path / "tidegate.log", smq=backend, **kwargs)
    request.node.tidegate_log = tg.log_path
    try:
        yield tg
    finally:
        # A server that died under the test is a failure even if the client didn't notice.
        died = tg.proc.poll()
        rc = stop(tg.proc)
        if died is not None:
            pytest.fail(f"tidegate exited by itself with status {died} during the test\n"
                        f"--- stderr ({tg.log_path}) ---\n{log_tail(tg.log_path)}", pytrace=False)
        if rc not in (0, -signal.SIGTERM):
            # A crash or hang on shutdown (-9: killed after the grace period) is a bug too.
            pytest.fail(f"tidegate did not exit cleanly on SIGTERM (status {rc})\n"
                        f"--- stderr ({tg.log_path}) ---\n{log_tail(tg.log_path)}", pytrace=False)


# Fixtures that start or need a SeaweedFS (besides `backend` on smq).
SEAWEEDFS_FIXTURES = {"seaweedfs", "fault_seaweedfs", "two_brokers"}


def pytest_collection_modifyitems(items):
    """Marks `seaweedfs` the tests that need one: scripts/test runs the others beside the
    Rust tests (`-m "not seaweedfs"`), and these after them (`-m seaweedfs`)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_smq = callspec is not None and callspec.params.get("backend") == "smq"
        if on_smq or SEAWEEDFS_FIXTURES & set(item.fixturenames) or item.module.__name__.startswith("test_smq_"):
            item.add_marker("seaweedfs")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    log_path = getattr(item, "tidegate_log", None)
    if report.failed and log_path is not None and report.when == "call":
        report.sections.append(("tidegate log", log_tail(log_path)))
    return report
