"""Minimal sd_notify(3) without dependencies: READY=1, WATCHDOG=1, STOPPING=1, STATUS=... datagrams.

Protocol: a datagram to the AF_UNIX socket named by $NOTIFY_SOCKET ('@' = Linux abstract namespace).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

log = structlog.stdlib.get_logger(__name__)


class SystemdNotifier:
    """Send state notifications to systemd; outside systemd each call is a no-op returning False."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, msg: str) -> bool:
        """Send `msg` (e.g. "READY=1", "STATUS=trading"); True if the datagram was sent."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(msg.encode("utf-8"), self._address)
        except OSError as exc:
            # systemd gone or socket unwritable: report, never crash the daemon over it.
            log.warning("sd_notify failed", message=msg, error=str(exc))
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1" if status is None else f"READY=1\nSTATUS={status}")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog_interval_s(self) -> float | None:
        """Half of $WATCHDOG_USEC in seconds (how often to ping), None if the watchdog is off.

        Like sd_watchdog_enabled(3), a WATCHDOG_PID naming another process disables it.
        """
        if self._watchdog_pid and self._watchdog_pid != str(os.getpid()):
            return None
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        return usec / 1_000_000 / 2

    def close(self) -> None:
        if self._sock is not None:
            sock, self._sock = self._sock, None
            sock.close()


def _socket_address(raw: str) -> str | bytes | None:
    if not raw:
        return None
    if raw.startswith("@"):
        return b"\0" + raw[1:].encode("utf-8")  # abstract namespace: leading NUL byte
    if raw.startswith("/"):
        return raw
    return None  # vsock and other forms are not used by gnosisd's deployment


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """Half of $WATCHDOG_USEC in seconds, or None when systemd's watchdog is not enabled."""
    return SystemdNotifier(environ).watchdog_interval_s()
