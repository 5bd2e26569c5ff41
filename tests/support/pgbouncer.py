"""A PgBouncer of a test's own, in transaction pooling mode, in front of the local PostgreSQL.

    with PgBouncer("127.0.0.1", 5432, pool_size=1) as bouncer:
        bouncer.port           # where clients connect
        bouncer.pools()        # SHOW POOLS, as {database: {column: value}}

It runs from Debian's `pgbouncer` package (the binary is looked up on PATH and in
/usr/sbin); `PgBouncer.missing()` says what is missing, for a skip. As root it runs as
the `postgres` user, since PgBouncer refuses to run as root. Every database name is sent
on to the server as it is; authentication is trust, as on the server.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

WAIT = 10.0  # seconds for it to listen


def _binary() -> str | None:
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgBouncer:
    """One PgBouncer process, started on entering and stopped on leaving."""

    def __init__(self, host: str, port: int, *, user: str = "postgres", pool_size: int = 1,
                 wait_timeout: int = 5) -> None:
        self.host, self.server_port, self.user = host, port, user
        self.pool_size, self.wait_timeout = pool_size, wait_timeout
        self.port = _free_port()
        self.process: subprocess.Popen | None = None
        self.dir: Path | None = None

    @staticmethod
    def missing() -> str | None:
        """Return why no PgBouncer can start here, or None."""
        if _binary() is None:
            return "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
        return None

    def __enter__(self) -> PgBouncer:
        binary = _binary()
        assert binary is not None, self.missing()
        self.dir = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
        (self.dir / "users.txt").write_text(f'"{self.user}" ""\n')
        (self.dir / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.host} port={self.server_port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.dir / 'users.txt'}\n"
            f"admin_users = {self.user}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmin_pool_size = 0\nreserve_pool_size = 0\n"
            f"max_client_conn = 50\nquery_wait_timeout = {self.wait_timeout}\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.dir / 'pgbouncer.log'}\n"
        )
        command = [binary, str(self.dir / "pgbouncer.ini")]
        if os.geteuid() == 0:
            os.chmod(self.dir, 0o755)  # noqa: S103 - the postgres user reads the config
            shutil.chown(self.dir, user="postgres")
            command.insert(1, "--user=postgres")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"pgbouncer did not start: {self.log()}") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()  # left open, it is a ResourceWarning at collection
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        """Return what PgBouncer logged, and wrote to stderr if it died."""
        text = ""
        if self.dir is not None and (self.dir / "pgbouncer.log").exists():
            text = (self.dir / "pgbouncer.log").read_text()
        if self.process is not None and self.process.poll() is not None and self.process.stderr:
            text += self.process.stderr.read().decode(errors="replace")
        return text[-2000:]

    def pools(self) -> dict[str, dict[str, object]]:
        """Return SHOW POOLS from the admin console: per database, its counters."""
        import psycopg2  # the suite's helpers speak psycopg2 (both matrix drivers install it)

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user,
                                dbname="pgbouncer")
        conn.autocommit = True  # the console takes no transactions
        try:
            cursor = conn.cursor()
            cursor.execute("SHOW POOLS")
            columns = [c.name for c in cursor.description]
            return {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}
        finally:
            conn.close()
