"""A private PostgreSQL cluster (initdb/pg_ctl of the installed server) on a free port, for tests that stop and
start the database. Runs as the `postgres` system user when the tests run as root (initdb refuses root)."""

import glob
import os
import shutil
import subprocess
import tempfile

import psycopg

from tests.processes import free_port, wait_for


def postgres_bin():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(candidates[-1]) if candidates else None


def unavailable_reason():
    if postgres_bin() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser: initdb cannot run"
    return None


class PrivatePostgres:
    def __init__(self):
        self.port = free_port()
        # Not under pytest's tmp_path: its 0700 parents would keep the postgres user out.
        self.workdir = tempfile.mkdtemp(prefix="rtms-pg-")
        self.data = os.path.join(self.workdir, "pgdata")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/rtms"

    def _run(self, *argv):
        command = [os.path.join(postgres_bin(), argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self):
        os.chmod(self.workdir, 0o777)
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE rtms")
        return self

    def start(self):
        self._run("pg_ctl", "-D", self.data, "-w", "-l", os.path.join(self.workdir, "postgres.log"), "-o",
                  f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        wait_for(self.answers, 20, "private PostgreSQL to answer")

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")

    def remove(self):
        if self.answers():
            self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def answers(self):
        try:
            with psycopg.connect(f"postgres://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False
