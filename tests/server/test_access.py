"""Users and grants over both endpoints of a real `sluice serve`: what a read-only user, a
full user and the administrator may run; file access; wrong passwords; TLS."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import pymysql
import pytest

from sluice.broker import free_port
from sluice.server.access import Grantee, check
from sluice.testing import LocalBroker, Spawned, produce
from tests.server.conftest import PASSWORD, Server

mariadb = pytest.mark.skipif(shutil.which("mariadb") is None, reason="needs the mariadb client")

TMP = tempfile.gettempdir()  # this test session's own (tests/conftest.py)
# Statement → what it needs: SELECT (read), ALL (write), ADMIN (the server's files, users).
STATEMENTS = {
    "SELECT count(*) FROM t": "SELECT",
    "SELECT * FROM information_schema.PIPELINES": "SELECT",
    "SHOW PIPELINES": "SELECT",
    "SHOW CREATE PIPELINE p": "SELECT",
    "DESCRIBE t": "SELECT",
    "INSERT INTO t VALUES (9)": "ALL",
    "UPDATE t SET id = 10 WHERE id = 9": "ALL",
    "DELETE FROM t WHERE id = 10": "ALL",
    "CREATE TABLE made (a INTEGER)": "ALL",
    "DROP TABLE made": "ALL",
    "STOP PIPELINE IF RUNNING p": "ALL",
    "START PIPELINE p": "ALL",
    "CLEAR PIPELINE ERRORS p": "ALL",
    f"COPY t TO '{TMP}/stolen.csv'": "ADMIN",
    "SELECT * FROM read_csv('/etc/hostname')": "ADMIN",
    "SELECT * FROM '/etc/hostname.csv'": "ADMIN",
    "SELECT read_text('/etc/hostname')": "ADMIN",
    f"ATTACH '{TMP}/other.duckdb' AS other": "ADMIN",
    "INSTALL httpfs": "ADMIN",
    "SET memory_limit = '1GB'": "ADMIN",
    "CREATE USER mallory IDENTIFIED BY 'x'": "ADMIN",
    "GRANT ALL ON *.* TO reader": "ADMIN",
    "CREATE PIPELINE f AS LOAD DATA FS '/etc' INTO TABLE t FORMAT CSV": "ADMIN",
    f"EXTRACT PIPELINE p INTO OUTFILE '{TMP}/x.bin'": "ADMIN",
}
RANK = {"USAGE": 0, "SELECT": 1, "ALL": 2, "ADMIN": 3}


@pytest.mark.parametrize("privilege", ["USAGE", "SELECT", "ALL"])
def test_each_statement_class_needs_its_privilege(privilege: str) -> None:
    who = Grantee("someone", privilege)
    for statement, needed in STATEMENTS.items():
        allowed = RANK[privilege] >= RANK[needed]
        try:
            check(statement, who, "duckdb")
            refused = None
        except Exception as exc:
            refused = str(exc)
        assert (refused is None) == allowed, (statement, refused)
    check("COPY t TO 'x.csv'", Grantee("root", "ALL", admin=True), "duckdb")


def setup_users(server: Server, broker: LocalBroker, name: str) -> None:
    produce(broker.bootstrap, name, [json.dumps({"id": i}).encode() for i in range(5)])
    with server.connect() as conn, conn.cursor() as cur:
        for statement in (
            "CREATE TABLE t (id INTEGER)",
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' INTO TABLE t "
            "FORMAT JSON (id <- id)",
            "START PIPELINE p FOREGROUND",
            "CREATE USER reader IDENTIFIED BY 'read-pw'",
            "GRANT SELECT ON *.* TO reader",
            "CREATE USER writer IDENTIFIED BY 'write-pw'",
            "GRANT ALL PRIVILEGES ON *.* TO writer",
            "CREATE USER nobody IDENTIFIED BY 'no-pw'",
        ):
            cur.execute(statement)
        cur.execute("SHOW USERS")
        assert cur.fetchall() == (("nobody", "USAGE"), ("reader", "SELECT"), ("writer", "ALL"))
        cur.execute("SELECT auth_string FROM sluice.users WHERE name = 'reader'")
        (stored,) = cur.fetchone()  # type: ignore[misc]
        assert "read-pw" not in stored and len(stored) == 40  # SHA1(SHA1(password)), hex


def over_mysql(server: Server, user: str, password: str) -> Callable[[str], str | None]:
    def run(statement: str) -> str | None:
        conn = pymysql.connect(host="127.0.0.1", port=server.port, user=user,
                               password=password, autocommit=True)  # fmt: skip
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                cur.fetchall()
            return None
        except pymysql.err.MySQLError as exc:
            return str(exc.args[-1])
        finally:
            conn.close()

    return run


def over_http(server: Server, user: str, password: str) -> Callable[[str], str | None]:
    def run(statement: str) -> str | None:
        response = httpx.post(f"{server.url}/api/query", json={"sql": statement},
                              auth=(user, password), timeout=30)  # fmt: skip
        return None if response.status_code == 200 else str(response.json()["error"])

    return run


@pytest.mark.parametrize("endpoint", [over_mysql, over_http], ids=["mysql", "http"])
def test_users_may_do_what_they_were_granted_over_both_endpoints(
    endpoint: Callable[..., Callable[[str], str | None]],
    broker: LocalBroker,
    topic: Callable[..., str],
    server: Server,  # after the topic: stopped before it is deleted (see test_http.py)
) -> None:
    setup_users(server, broker, topic(1))
    users = {"nobody": ("no-pw", "USAGE"), "reader": ("read-pw", "SELECT"),
             "writer": ("write-pw", "ALL"), "root": (PASSWORD, "ADMIN")}  # fmt: skip
    for user, (password, privilege) in users.items():
        run = endpoint(server, user, password)
        for statement, needed in STATEMENTS.items():
            if user == "root" and statement.startswith(("CREATE USER", "GRANT", "INSTALL")):
                continue  # changes what the other users of this test are
            refused = run(statement)
            if RANK[privilege] >= RANK[needed]:
                assert refused is None or "may not" not in refused, (user, statement, refused)
            else:
                # (SET over MySQL sets the session's variables, never the store's: the MySQL
                # endpoint answers it itself, and knows no memory_limit)
                said = f"user {user} may not" if not statement.startswith("SET") else ""
                assert refused is not None and said in refused, (user, statement, refused)
    # What was refused did not happen; what the administrator did, did.
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW USERS")
        assert [u for u, _ in cur.fetchall()] == ["nobody", "reader", "writer"]  # no mallory
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (5,)
    assert Path(TMP, "stolen.csv").read_text().splitlines() == ["id", *map(str, range(5))]
    for made in ("stolen.csv", "other.duckdb"):
        Path(TMP, made).unlink()


@pytest.mark.parametrize("endpoint", [over_mysql, over_http], ids=["mysql", "http"])
def test_wrong_passwords_and_unknown_users_are_refused(
    endpoint: Callable[..., Callable[[str], str | None]], server: Server
) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER reader IDENTIFIED BY 'read-pw'")
        cur.execute("GRANT SELECT ON *.* TO reader")
    for user, password in (("reader", "wrong"), ("root", "wrong"), ("ghost", "read-pw")):
        if endpoint is over_mysql:
            with pytest.raises(pymysql.err.OperationalError) as refused:
                endpoint(server, user, password)("SELECT 1")
            assert refused.value.args[0] == 1045
        else:
            answer = httpx.get(f"{server.url}/api/me", auth=(user, password))
            assert answer.status_code == 401 and "access denied" in answer.json()["error"]
    assert endpoint(server, "reader", "read-pw")("SELECT 1") is None
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("REVOKE ALL ON *.* FROM reader")
    assert "may not read" in (endpoint(server, "reader", "read-pw")("SHOW PIPELINES") or "")


def test_a_read_only_login_cannot_act_over_the_api(server: Server) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE USER reader IDENTIFIED BY 'read-pw'")
        cur.execute("GRANT SELECT ON *.* TO reader")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/api/pipelines").status_code == 401  # a password is set: log in
        bad = client.post("/api/login", json={"user": "reader", "password": "nope"})
        assert bad.status_code == 401
        good = client.post("/api/login", json={"user": "reader", "password": "read-pw"})
        assert good.json() == {"user": "reader", "privilege": "SELECT", "admin": False}
        assert client.get("/api/pipelines").status_code == 200  # the cookie logs it in
        stop = client.post("/api/pipelines/any/stop")
        assert stop.status_code == 403 and "GRANT ALL" in stop.json()["error"]
        client.post("/api/logout")
        assert client.get("/api/pipelines").status_code == 401


def test_serve_refuses_a_non_loopback_address_without_a_password(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "sluice.cli", "serve", "--db", str(tmp_path / "x.duckdb"),
               "--host", "0.0.0.0", "--mysql-port", str(free_port()), "--http-port",
               str(free_port())]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "refusing to listen on 0.0.0.0 without a password" in done.stderr
    assert not (tmp_path / "x.duckdb").exists()  # it stopped before opening anything


@mariadb
def test_tls_on_both_endpoints_with_real_clients(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
         "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port, http_port = free_port(), free_port()
    command = [sys.executable, "-m", "sluice.cli", "serve", "--db", str(tmp_path / "tls.duckdb"),
               "--mysql-port", str(port), "--http-port", str(http_port), "--password", PASSWORD,
               "--tls-cert", str(cert), "--tls-key", str(key)]  # fmt: skip
    with Spawned(command) as served:
        served.wait_for_line("Ctrl-C to stop", timeout=60)
        assert f"https://127.0.0.1:{http_port}/" in served.output
        client = ["mariadb", "-h", "127.0.0.1", "-P", str(port), "-u", "root",
                  f"-p{PASSWORD}", "--ssl", "--ssl-ca", str(cert), "--ssl-verify-server-cert",
                  "-N", "-e"]  # fmt: skip
        done = subprocess.run([*client, "SELECT 40 + 2"], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "42"
        trusted = ssl.create_default_context(cafile=str(cert))
        answer = httpx.get(f"https://127.0.0.1:{http_port}/api/me", auth=("root", PASSWORD),
                           verify=trusted)  # fmt: skip
        assert answer.json()["user"] == "root"
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not served on the TLS port
            httpx.get(f"http://127.0.0.1:{http_port}/api/me", auth=("root", PASSWORD))
        assert served.stop() == 0
