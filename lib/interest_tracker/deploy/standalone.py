"""A throwaway Spark standalone cluster on 127.0.0.1, from the pyspark package.

Why: local mode runs tasks as threads of the driver JVM, so it cannot show what breaks on
a cluster (separate executor JVMs and Python workers, code shipped to them, barrier
scheduling across machines, a machine dying mid-job). A master and N workers on the
loopback interface can. The cluster test (tests/test_cluster_standalone.py) uses this;
so can a developer rehearsing a submit from a Python shell.

Only loopback addresses are used. Every process is started in its own session and
stopped by its id in :meth:`StandaloneCluster.stop`.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


def spark_home() -> Path:
    """The pyspark package directory: it holds bin/spark-class, bin/spark-submit and jars/."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen
    log_path: Path
    webui_port: int
    work_dir: Path | None = None
    killed: bool = False
    """Stopped on purpose by :meth:`StandaloneCluster.kill_worker` (not a startup failure)."""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class StandaloneCluster:
    """``with StandaloneCluster(dir, workers=2) as c:`` starts master + workers; ``c.master_url``."""

    root: Path
    workers: int = 2
    cores: int = 1
    memory: str = "2g"
    daemon_memory: str = "256m"
    master_port: int = field(default_factory=free_port)
    master_webui_port: int = field(default_factory=free_port)
    daemons: list[Daemon] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    def env(self) -> dict[str, str]:
        """Environment for the daemons and for spark-submit against this cluster."""
        home = spark_home()
        return {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": HOST, "SPARK_MASTER_HOST": HOST,
                "SPARK_DAEMON_MEMORY": self.daemon_memory, "SPARK_LOG_DIR": str(self.root / "logs"),
                "SPARK_PID_DIR": str(self.root / "pids"), "SPARK_NO_DAEMONIZE": "1"}

    def _spawn(self, name: str, args: list[str], webui_port: int, work_dir: Path | None = None) -> Daemon:
        log_path = self.root / f"{name}.log"
        out = open(log_path, "ab")  # noqa: SIM115 - closed with the process in stop()
        cmd = [str(spark_home() / "bin" / "spark-class"), *args]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env(), start_new_session=True)
        out.close()
        d = Daemon(name, proc, log_path, webui_port, work_dir)
        self.daemons.append(d)
        log.info("started %s (pid %d): %s", name, proc.pid, " ".join(args))
        return d

    def state(self) -> dict:
        """The master's JSON status (workers, applications)."""
        with urllib.request.urlopen(f"http://{HOST}:{self.master_webui_port}/json/", timeout=5) as r:
            return json.loads(r.read().decode())

    def alive_workers(self) -> list[dict]:
        try:
            return [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]
        except OSError:
            return []

    def wait_for_workers(self, n: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.alive_workers()) >= n:
                return
            dead = [d.name for d in self.daemons if not d.alive and not d.killed]
            if dead:
                break
            time.sleep(1)
        logs = "\n".join(f"--- {d.name}\n{d.log_path.read_text()[-3000:]}" for d in self.daemons)
        raise RuntimeError(f"standalone cluster did not reach {n} alive workers in {timeout}s\n{logs}")

    def start(self) -> "StandaloneCluster":
        self.root.mkdir(parents=True, exist_ok=True)
        self._spawn("master", ["org.apache.spark.deploy.master.Master", "--host", HOST, "--port",
                               str(self.master_port), "--webui-port", str(self.master_webui_port)],
                    self.master_webui_port)
        for i in range(self.workers):
            self.start_worker(i, wait=False)
        self.wait_for_workers(self.workers)
        return self

    def start_worker(self, index: int, wait: bool = True) -> Daemon:
        """Start worker ``index`` (again, after :meth:`kill_worker`), with its own work dir."""
        name = f"worker{index}"
        work = self.root / name
        work.mkdir(parents=True, exist_ok=True)
        port = free_port()
        d = self._spawn(name, ["org.apache.spark.deploy.worker.Worker", self.master_url, "--host", HOST,
                               "--cores", str(self.cores), "--memory", self.memory, "--webui-port", str(port),
                               "--work-dir", str(work)], port, work)
        if wait:
            self.wait_for_workers(len([x for x in self.daemons if x.name.startswith("worker") and x.alive]))
        return d

    def worker_index_of(self, worker_id: str) -> int:
        """Index of the running worker the master knows as ``worker_id`` (via its web UI port)."""
        for w in self.state().get("workers", []):
            if w["id"] == worker_id:
                port = int(w["webuiaddress"].rsplit(":", 1)[1])
                for d in self.daemons:
                    if d.name.startswith("worker") and d.webui_port == port and d.alive:
                        return int(d.name[len("worker"):])
        raise KeyError(f"no running worker with id {worker_id}")

    def worker(self, index: int) -> Daemon:
        return [d for d in self.daemons if d.name == f"worker{index}"][-1]

    def kill_worker(self, index: int) -> None:
        """SIGKILL worker ``index``'s JVM (spark-class execs java, so the pid is the JVM's).

        Its executors notice the lost worker and exit; the driver sees them gone and
        reschedules their tasks, recomputing lost shuffle output.
        """
        d = self.worker(index)
        os.kill(d.proc.pid, signal.SIGKILL)
        d.killed = True
        d.proc.wait(timeout=30)
        log.warning("killed %s (pid %d)", d.name, d.proc.pid)

    def stop(self) -> None:
        for d in reversed(self.daemons):
            # Each daemon has its own session: this reaches its JVM and the executor JVMs it
            # forked, even after the daemon itself was killed by kill_worker().
            try:
                os.killpg(d.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for d in self.daemons:
            try:
                d.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(d.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                d.proc.wait(timeout=10)
        log.info("standalone cluster stopped")

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
