"""A real Flower 1.41 federation on 127.0.0.1 for the tests: a SuperLink and SuperNodes, stopped by PID.

Everything is local and insecure (loopback only): free ports, ``FLWR_HOME`` and the SuperLink's database
in a temp dir, telemetry and Flower's update check off. ``flower-superlink`` and ``flower-supernode``
start ``flower-superexec`` children (which start ``flwr-serverapp``, ``flwr-clientapp`` or, in simulation,
``flwr-simulation`` and Ray); they are found as descendants of the processes started here just before
the stop, every one of them is signalled by PID (SIGTERM, then SIGKILL after a grace period), and the
stop fails the test if any is still alive.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

BIN = Path(sys.executable).parent
READY_SECONDS = 90  # SuperLink health endpoint up: 1.3 s idle, 11 s seen under load 8
STOP_SECONDS = 20  # a SuperExec child ends within ~5 s of its parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flower_env(home: Path, ray_tmp: str | None = None) -> dict[str, str]:
    """The processes' environment: this venv's bin first (SuperExec starts flwr-* by name), no telemetry."""
    return {
        **os.environ,
        **({"RAY_TMPDIR": ray_tmp} if ray_tmp else {}),  # Ray's sessions here, not in /tmp/ray
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "RAY_USAGE_STATS_ENABLED": "0",  # the simulation runtime's Ray would report usage otherwise
        # SuperExecs look for new runs every 0.2 s instead of 1 s: shorter rounds, same behaviour
        "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.2",
    }


@dataclass
class Federation:
    """The processes of one local federation and the connection ``flwr run`` uses to reach it."""

    home: Path
    connection: str
    port: int
    ray_tmp: str | None = None  # simulation: a short folder (Ray's socket paths must stay < 108 bytes)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = self.home / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=flower_env(self.home, self.ray_tmp),
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-lines:]) for p in self.logs
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.procs[0].poll() is not None:
                raise RuntimeError(
                    f"flower-superlink exited with {self.procs[0].returncode}:\n{self.log_tail()}"
                )
            health = f"http://127.0.0.1:{self.port}/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=2) as reply:
                if reply.status == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the SuperLink did not answer on port {self.port} in {READY_SECONDS} s")

    def stop(self) -> list[str]:
        """Stop every process by PID; return the ones that could not be stopped (should be none)."""
        tree: dict[int, psutil.Process] = {}
        for proc in self.procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                top = psutil.Process(proc.pid)
                tree[top.pid] = top
                tree.update({p.pid: p for p in top.children(recursive=True)})
        for p in tree.values():  # SuperLink, SuperNodes, their SuperExecs and what those started
            with contextlib.suppress(psutil.NoSuchProcess):
                p.terminate()
        for proc in self.procs:  # reap the processes started here
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_SECONDS)
        _, alive = psutil.wait_procs(list(tree.values()), timeout=STOP_SECONDS)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        _, alive = psutil.wait_procs(alive, timeout=STOP_SECONDS)
        return [f"{p.pid} {p.name()}" for p in alive if _alive(p)]


def _alive(p: psutil.Process) -> bool:
    """Running and not a zombie (a dead process whose exit status nobody has collected yet)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _connection(home: Path, name: str, port: int) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{name}"\n\n'
        f'[superlink.{name}]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )


@contextlib.contextmanager
def federation(home: Path, node_configs: list[str], *, simulation: bool = False) -> Iterator[Federation]:
    """A SuperLink (``--simulation`` for Flower's simulation runtime) and one SuperNode per node config.

    The SuperLink runs ServerApps in this environment (``--disable-runtime-dependency-installation``):
    they import equitable_fl, which a per-run environment built by Flower would not have.
    """
    port = free_port()
    name = "equitable-sim" if simulation else "equitable-local"
    _connection(home, name, port)
    fed = Federation(home, name, port, tempfile.mkdtemp(prefix="eqfl-ray-") if simulation else None)
    link = ["flower-superlink", "--insecure", "--host", "127.0.0.1", "--port", str(port)]
    link += ["--database", str(home / "superlink.db"), "--disable-runtime-dependency-installation"]
    try:
        fed.start("superlink", [*link, *(["--simulation"] if simulation else [])])
        fed.wait_ready()
        for i, config in enumerate(node_configs):
            node = ["flower-supernode", "--insecure", "--superlink", f"127.0.0.1:{port}"]
            node += ["--host", "127.0.0.1", "--port", str(free_port()), "--node-config", config]
            fed.start(f"supernode{i}", node)
        yield fed
    finally:
        left = fed.stop()
        if fed.ray_tmp:
            shutil.rmtree(fed.ray_tmp, ignore_errors=True)
        if left:
            raise AssertionError(f"Flower processes still running after the stop: {left}")
