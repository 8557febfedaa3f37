"""Child processes of the bench: started with a log file in their own session, measured with
psutil, and stopped by PID (a polite signal, then SIGKILL after a deadline), however the bench ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


class ChildFailed(RuntimeError):
    """A child exited or was not ready in time; the message carries the tail of its log."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True, slots=True)
class Usage:
    """CPU seconds (user + system, the process and its children) and memory at one instant."""

    cpu_s: float
    rss_bytes: int


class Child:
    """One subprocess owned by the bench. Every instance is registered in :data:`Children`
    and stopped by :meth:`stop` (or :meth:`Children.stop_all`)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.stop_signal = stop_signal
        with self.log_path.open("ab") as log:
            try:
                self.popen = subprocess.Popen(
                    list(argv),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                    start_new_session=True,  # Ctrl-C in the terminal reaches the bench only; it stops us by PID
                )
            except OSError as exc:
                raise ChildFailed(name, f"cannot start {name} ({argv[0]}): {exc}") from None
        self.process = psutil.Process(self.popen.pid)
        CHILDREN.add(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_until(self, ready: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``ready`` until true; fail if the child exits first or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ChildFailed(
                    self.name, f"{self.name} exited with {self.popen.returncode} before {what}:\n{self.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.05)
        raise ChildFailed(self.name, f"{self.name}: no {what} within {timeout:g}s:\n{self.log_tail()}")

    def usage(self) -> Usage:
        """CPU seconds so far and current RSS of the process plus its live descendants."""
        procs = [self.process]
        with contextlib.suppress(psutil.Error):
            procs += self.process.children(recursive=True)
        cpu = 0.0
        rss = 0
        for proc in procs:
            try:
                times = proc.cpu_times()
                cpu += times.user + times.system + times.children_user + times.children_system
                rss += proc.memory_info().rss
            except psutil.Error:
                continue
        return Usage(cpu_s=cpu, rss_bytes=rss)

    def peak_rss_bytes(self) -> int | None:
        """The kernel's high-water mark of resident memory (VmHWM) of the main process."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, timeout: float = 10.0) -> int | None:
        """``stop_signal``, then SIGKILL after ``timeout``; returns the exit code."""
        try:
            if self.alive():
                self.popen.send_signal(self.stop_signal)
                try:
                    self.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(timeout=timeout)
            return self.popen.returncode
        finally:
            CHILDREN.discard(self)


class _Registry:
    def __init__(self) -> None:
        self._children: list[Child] = []

    def add(self, child: Child) -> None:
        self._children.append(child)

    def discard(self, child: Child) -> None:
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        """Stop every child still registered, newest first (gateways before brokers)."""
        for child in reversed(list(self._children)):
            try:
                child.stop(timeout=5.0)
            except Exception as exc:  # keep stopping the others
                print(f"bench: could not stop {child.name} (pid {child.pid}): {exc!r}")


CHILDREN = _Registry()
