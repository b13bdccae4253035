"""Run training in a child process and SIGKILL it at a chosen log line (the resume tests).

The child runs the production entry point (``training.loop.train``) on a config file, so
what is killed is exactly what a scheduler runs; the caller then checks what the
checkpoint store holds and resumes in-process.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TRAIN_CODE = ("import json, sys; from interest_tracker.training.loop import train; "
              "train(json.load(open(sys.argv[1])))")


def train_until_killed(config: dict, workdir: Path, marker: str, timeout_s: float = 300) -> str:
    """Start training with ``config``, SIGKILL it when a stderr line contains ``marker``.

    Returns the line it was killed at. The child inherits the environment (S3 endpoint and
    credentials included) with the project's ``lib`` first on PYTHONPATH.
    """
    cfg_file = Path(workdir) / "cfg.json"
    cfg_file.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(REPO / "lib")}
    proc = subprocess.Popen([sys.executable, "-c", TRAIN_CODE, str(cfg_file)], stderr=subprocess.PIPE,
                            text=True, env=env)
    killed_at = None
    deadline = time.monotonic() + timeout_s
    try:
        for line in proc.stderr:
            if marker in line:
                proc.send_signal(signal.SIGKILL)
                killed_at = line
                break
            assert time.monotonic() < deadline, "training subprocess made no progress"
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, \
        f"training was not killed at {marker!r} (exit code {proc.returncode})"
    return killed_at
