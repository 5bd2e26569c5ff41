"""A RabbitMQ cluster of three nodes on local ports, for the tests that kill nodes.

The nodes run RabbitMQ's own scripts from the Debian package (`/usr/lib/rabbitmq/bin`,
where they run as the calling user), each with a node name, AMQP port, distribution
port and data and log folders of its own under a temporary folder, no plugin, and one
Erlang cookie (in the temporary folder, which is the scripts' HOME). The machine's own
node (`rabbit@<host>` on 5672) is never addressed. Everything is stopped and deleted
when the cluster closes.

    with Cluster(tmp_path) as cluster:
        cluster.url(vhost)          # amqp://guest:guest@127.0.0.1:p1,127.0.0.1:p2,.../vhost
        cluster.kill(1)             # SIGKILL node 1, as a crash would
        cluster.stop(2)             # `rabbitmqctl stop`: a clean shutdown
        cluster.start(1)            # the node again, with its data: it rejoins
        cluster.ctl(0, "list_queues", "-p", vhost, "name", "leader")
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.acceptance.monitoring import scrape

SCRIPTS = Path(os.environ.get("CQRS_RABBITMQ_SCRIPTS", "/usr/lib/rabbitmq/bin"))
NODES = 3
BOOT_TIMEOUT = 120  # seconds a node may take to start (or to rejoin)
CTL_TIMEOUT = 60  # seconds a rabbitmqctl call may take


class Cluster:
    """Three RabbitMQ nodes clustered on this machine's loopback."""

    def __init__(self) -> None:
        for script in ("rabbitmq-server", "rabbitmqctl"):
            if not (SCRIPTS / script).exists():
                raise RuntimeError(f"RabbitMQ's {script} is not in {SCRIPTS}: install the "
                                   "rabbitmq-server package (scripts/ensure-services does)")
        self.base = Path(tempfile.mkdtemp(prefix="cqrs-rabbitmq-cluster-"))
        token = secrets.token_hex(3)
        self.names = [f"cqrs{token}n{i}@localhost" for i in range(NODES)]
        self.ports = [scrape.free_port() for _ in range(NODES)]
        self.dist_ports = [scrape.free_port() for _ in range(NODES)]
        self._processes: list[subprocess.Popen | None] = [None] * NODES
        self._prepare(token)

    # -- life cycle ----------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            for index in range(NODES):
                self.start(index, wait=False)
            for index in range(NODES):
                self.await_node(index)
            running = self.ctl(0, "cluster_status")
            if any(name not in running for name in self.names):
                raise RuntimeError(f"the nodes did not cluster:\n{running}")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every node (killed if it does not stop) and delete the folder."""
        for index, process in enumerate(self._processes):
            if process is not None and process.poll() is None:
                self._kill_group(index)
        shutil.rmtree(self.base, ignore_errors=True)

    def start(self, index: int, wait: bool = True) -> None:
        """Start node `index` (again, keeping its data) and wait until it runs."""
        log = (self.base / f"n{index}.out").open("ab")
        self._processes[index] = subprocess.Popen(
            [str(SCRIPTS / "rabbitmq-server")], env=self._node_env(index), cwd=self.base,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        if wait:
            self.await_node(index)

    def await_node(self, index: int) -> None:
        """Wait until node `index` has booted (the Erlang VM takes a moment to register)."""
        deadline = time.monotonic() + BOOT_TIMEOUT
        while True:
            done = self._run_ctl(index, "await_startup", "--timeout", "10", check=False)
            if done.returncode == 0:
                return
            process = self._processes[index]
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"node {self.names[index]} exited:\n{self.log(index)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.names[index]} did not start:\n{done.stdout}"
                                   f"{done.stderr}\n{self.log(index)}")
            time.sleep(0.5)

    def kill(self, index: int) -> None:
        """SIGKILL node `index`'s Erlang VM, as a crash or the OOM killer would."""
        pid = int((self.base / f"n{index}" / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        self._kill_group(index)

    def stop(self, index: int) -> None:
        """Stop node `index` cleanly with `rabbitmqctl stop`."""
        self.ctl(index, "stop")
        process = self._processes[index]
        if process is not None:
            process.wait(CTL_TIMEOUT)

    # -- looking at it -------------------------------------------------------------------

    def url(self, vhost: str, query: str = "") -> str:
        """Return one AMQP URL naming every node, in order."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.ports)
        return f"amqp://guest:guest@{hosts}/{vhost}" + (f"?{query}" if query else "")

    def node_url(self, index: int, vhost: str) -> str:
        """Return the AMQP URL of node `index` alone."""
        return f"amqp://guest:guest@127.0.0.1:{self.ports[index]}/{vhost}"

    def ctl(self, index: int, *args: str) -> str:
        """Run `rabbitmqctl` against node `index`; return its output, fail if it fails."""
        return self._run_ctl(index, *args).stdout

    def leader(self, via: int, vhost: str, queue: str) -> int:
        """Return the index of the node leading quorum queue `queue`."""
        out = self.ctl(via, "list_queues", "-q", "--no-table-headers", "-p", vhost,
                       "name", "leader")
        for line in out.splitlines():
            parts = line.split()
            if parts and parts[0] == queue:
                return self.names.index(parts[1])
        raise AssertionError(f"no queue {queue} in:\n{out}")

    def log(self, index: int) -> str:
        path = self.base / f"n{index}.out"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    # -- internals -----------------------------------------------------------------------

    def _prepare(self, token: str) -> None:
        cookie = self.base / ".erlang.cookie"
        cookie.write_text(f"CQRSCLUSTER{token.upper()}COOKIE")
        cookie.chmod(0o400)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")  # not the machine's
        peers = "\n".join(f"cluster_formation.classic_config.nodes.{i + 1} = {name}"
                          for i, name in enumerate(self.names))
        for index in range(NODES):
            folder = self.base / f"n{index}"
            folder.mkdir()
            (folder / "rabbitmq.conf").write_text(
                "cluster_formation.peer_discovery_backend = classic_config\n"
                f"{peers}\n")

    def _common_env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.base),
                "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
                "ERL_EPMD_ADDRESS": "127.0.0.1"}

    def _node_env(self, index: int) -> dict[str, str]:
        folder = self.base / f"n{index}"
        return {
            **self._common_env(),
            "RABBITMQ_NODENAME": self.names[index],
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.ports[index]),
            "RABBITMQ_DIST_PORT": str(self.dist_ports[index]),
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_PID_FILE": str(folder / "pid"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
        }

    def _run_ctl(self, index: int, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(SCRIPTS / "rabbitmqctl"), "-n", self.names[index], *args],
                              env=self._common_env(), capture_output=True, text=True,
                              timeout=CTL_TIMEOUT)
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.names[index]} failed: "
                               f"{done.stdout}{done.stderr}")
        return done

    def _kill_group(self, index: int) -> None:
        process = self._processes[index]
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(CTL_TIMEOUT)
