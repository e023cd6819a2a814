"""The ``sluice`` command: thin argument parsing that calls the library."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from sluice import __version__
from sluice._signals import stop_on_signals
from sluice.errors import SluiceError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sluice", description="An operational SQL database with native streaming pipelines."
    )
    parser.add_argument("--version", action="version", version=f"sluice {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log pipeline activity")
    commands = parser.add_subparsers(dest="command", required=True)

    broker = commands.add_parser("broker", help="run the bundled Kafka-compatible broker")
    broker.add_argument("--port", type=int, default=9092)

    sql = commands.add_parser("sql", help="run SQL statements, or an interactive shell")
    sql.add_argument(
        "--db",
        "--store",
        dest="db",
        default=":memory:",
        help="a DuckDB file, or a postgresql://user@host:port/db URL (default: DuckDB in memory)",
    )
    sql.add_argument("--host", help="connect to a running `sluice serve` instead of a file")
    sql.add_argument("--port", type=int, default=3307)
    sql.add_argument("--user", default=os.environ.get("SLUICE_USER", "root"))
    sql.add_argument("--password", default=os.environ.get("SLUICE_PASSWORD", ""))
    group = sql.add_mutually_exclusive_group()
    group.add_argument("-e", "--execute", metavar="SQL", help="statements to run, then exit")
    group.add_argument("-f", "--file", metavar="FILE", help="a file of statements to run")

    serve = commands.add_parser("serve", help="serve the database over the MySQL protocol")
    serve.add_argument(
        "--db",
        "--store",
        dest="db",
        required=True,
        help="a DuckDB file, or a postgresql://user@host:port/db URL",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--mysql-port", type=int, default=3307)
    serve.add_argument(
        "--http-port", type=int, default=8080, help="the dashboard, HTTP API and /metrics"
    )
    serve.add_argument("--no-http", action="store_true", help="serve the MySQL protocol only")
    serve.add_argument(
        "--user",
        default=os.environ.get("SLUICE_USER", "root"),
        help="the administrator (or SLUICE_USER); CREATE USER adds others",
    )
    serve.add_argument(
        "--password",
        default=os.environ.get("SLUICE_PASSWORD", ""),
        help="the administrator's (or SLUICE_PASSWORD); empty: none, on 127.0.0.1 only",
    )
    serve.add_argument("--tls-cert", help="a PEM certificate: both endpoints then speak TLS")
    serve.add_argument("--tls-key", help="the PEM private key of --tls-cert")

    produce = commands.add_parser("produce", help="send standard input, a message per line")
    produce.add_argument("topic")
    produce.add_argument("--broker", default="127.0.0.1:9092", help="bootstrap servers")
    produce.add_argument(
        "--partitions", type=int, default=1, help="create the topic with this many partitions"
    )

    demo = commands.add_parser("demo", help="oil-rig sensors → Kafka → table, live")
    demo.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    demo.add_argument("--rate", type=int, default=20_000, help="messages per second to produce")
    demo.add_argument("--db", help="keep the demo database in this file")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "sql":
            return _sql(args)
        if args.command == "produce":
            return _produce(args.broker, args.topic, args.partitions)
        # The long-running commands stop cleanly, with their children, on SIGTERM or Ctrl-C.
        with stop_on_signals():
            if args.command == "broker":
                return _broker(args.port)
            if args.command == "serve":
                return _serve(args)
            from sluice.demo import run_demo

            return run_demo(duration=args.duration, rate=args.rate, db_path=args.db)
    except SluiceError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # stopped while starting: what had started is stopped
        print("stopped", file=sys.stderr)
        return 0


def _broker(port: int) -> int:
    from sluice.broker import LocalBroker

    broker = LocalBroker(port).start()
    code = None
    try:  # from here on a signal (even one that lands while printing) stops the broker
        print(f"Kafka-compatible broker (Tansu, in memory) listening on {broker.bootstrap}")
        print("Ctrl-C to stop. Messages live in memory and are gone when it stops.", flush=True)
        code = broker.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    if code is not None:  # it ended by itself
        print(f"Error: the broker exited by itself (exit code {code})", file=sys.stderr)
        return 1
    print("broker stopped")
    return 0


def _produce(bootstrap: str, topic: str, partitions: int) -> int:
    from confluent_kafka import KafkaException

    from sluice.broker import admin, create_topic, produce

    try:
        if topic not in admin(bootstrap).list_topics(timeout=10).topics:
            create_topic(bootstrap, topic, partitions)
    except KafkaException as exc:
        raise SluiceError(f"cannot reach Kafka at {bootstrap}: {exc.args[0]}") from exc
    lines = (line.rstrip(b"\r\n") for line in sys.stdin.buffer)
    sent = produce(bootstrap, topic, (line for line in lines if line), partitions=partitions)
    print(f"sent {sent} messages to {topic}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import sluice

    try:
        from sluice.server import Endpoints, serve
    except ImportError as exc:
        raise SluiceError(
            f"sluice serve needs its server libraries: pip install 'sluice[server]' ({exc})"
        ) from exc

    endpoints = Endpoints(
        host=args.host,
        mysql_port=args.mysql_port,
        http_port=None if args.no_http else args.http_port,
        user=args.user,
        password=args.password,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    endpoints.check()  # before the database opens and its pipelines resume
    logging.getLogger("sluice").setLevel(logging.INFO)  # a line per connection and state change
    db = sluice.connect(args.db)  # resumes the pipelines left Running
    try:
        serve(db, endpoints)
    finally:
        # Stopping: a second SIGTERM or Ctrl-C must not cut the closing of the database short.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        db.close()
    print("stopped; the database is closed")
    return 0


def _sql(args: argparse.Namespace) -> int:
    import sluice
    from sluice.shell import interactive, run_script

    if args.host:
        from sluice.server.client import RemoteConnection

        db: sluice.Connection | RemoteConnection = RemoteConnection(
            args.host, args.port, args.user, args.password
        )
    else:
        db = sluice.connect(args.db)
    try:
        if args.execute is not None:
            return run_script(db.execute, args.execute)
        if args.file is not None:
            with open(args.file, encoding="utf-8") as fh:
                return run_script(db.execute, fh.read())
        return interactive(db.execute, f"sluice {__version__} — database {db.database}")
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
