"""A ``cobrowse serve`` subprocess for tests: ready once it prints ``cobrowse: ready``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import pytest

ROOT = Path(__file__).resolve().parents[1]


class ServeProcess:
    """Runs ``python -m cobrowse serve ARGS`` with exactly ``env``; its output is kept in ``output``."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cobrowse", "serve", *args],
            cwd=ROOT,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a process group of its own, as a terminal gives a command
        )
        self.output: list[str] = []
        self.ready = threading.Event()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if line.startswith("cobrowse: ready"):
                self.ready.set()

    def wait_ready(self, deadline_s: float = 30) -> Self:
        """Wait for the ``cobrowse: ready`` line (the process's readiness signal), or fail the test."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end and self.proc.poll() is None:
            if self.ready.wait(0.1):
                return self
        self.stop()
        pytest.fail("cobrowse serve not ready:\n" + "".join(self.output))

    def stop(self) -> int:
        """Ctrl-C, as a person would (the terminal signals the whole process group: the rewrite
        workers too); killed only if it does not stop within 20 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return int(self.proc.returncode)


def children_of(pid: int) -> list[int]:
    """The pids of ``pid``'s child processes (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found
