"""Tests for gnosisd.runtime.systemd: sd_notify datagrams over a real unix socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gnosisd.runtime.systemd import SystemdNotifier, watchdog_interval_s


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_sends_ready_watchdog_status_and_stopping_datagrams(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    try:
        assert notifier.enabled
        assert notifier.notify("READY=1")
        assert notifier.watchdog()
        assert notifier.status("trading SPY")
        assert notifier.stopping()
        assert notifier.ready("up")
        got = [sock.recv(4096) for _ in range(5)]
    finally:
        notifier.close()
    assert got == [
        b"READY=1",
        b"WATCHDOG=1",
        b"STATUS=trading SPY",
        b"STOPPING=1",
        b"READY=1\nSTATUS=up",
    ]


def test_supports_abstract_namespace_socket() -> None:
    name = f"gnosisd-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
    try:
        assert notifier.notify("READY=1")
        assert sock.recv(64) == b"READY=1"
    finally:
        notifier.close()
        sock.close()


def test_is_a_no_op_returning_false_without_notify_socket() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    assert notifier.notify("READY=1") is False
    assert notifier.watchdog() is False


def test_reads_notify_socket_from_the_process_environment(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    notifier = SystemdNotifier()
    try:
        assert notifier.notify("STATUS=env")
        assert sock.recv(64) == b"STATUS=env"
    finally:
        notifier.close()


def test_returns_false_instead_of_raising_when_socket_is_gone(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "missing.sock")})
    try:
        assert notifier.notify("WATCHDOG=1") is False
    finally:
        notifier.close()


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": str(os.getpid())}) == (
        30.0
    )


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WATCHDOG_USEC": ""},
        {"WATCHDOG_USEC": "0"},
        {"WATCHDOG_USEC": "abc"},
        {"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"},
    ],
)
def test_watchdog_interval_is_none_when_watchdog_not_meant_for_us(env: dict[str, str]) -> None:
    # pid 1 is never the test process, so its watchdog is not ours to ping.
    assert watchdog_interval_s(env) is None
