"""WITH TRANSFORM: external programs between extract and parse, against the real broker."""

from __future__ import annotations

import json
import shutil
import tarfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

import sluice
from sluice.testing import LocalBroker, produce, wait_for
from sluice.transforms.program import frame
from sluice.vocab import ArrowRecords
from tests.e2e.helpers import kafka, states

# Reads Kafka's framed records (8-byte little-endian length + payload), writes one JSON line
# each with the reading converted to Fahrenheit; an argument names the field to add.
FAHRENHEIT = """\
import json, struct, sys
field = sys.argv[1]
data = sys.stdin.buffer.read()
at = 0
while at < len(data):
    (n,) = struct.unpack_from("<Q", data, at)
    doc = json.loads(data[at + 8 : at + 8 + n])
    at += 8 + n
    doc[field] = doc["c"] * 9 / 5 + 32
    sys.stdout.write(json.dumps(doc) + "\\n")
print("converted", file=sys.stderr)
"""


def write_program(tmp_path: Path, name: str, text: str, *, executable: bool = False) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    if executable:
        path.chmod(0o755)
    return path


def errors(db: sluice.Connection) -> list[tuple[str, str, str, str | None]]:
    return db.execute(
        "SELECT ERROR_TYPE, ERROR_KIND, ERROR_MESSAGE, STD_ERROR "
        "FROM information_schema.PIPELINES_ERRORS ORDER BY ERROR_ID"
    ).fetchall()


def test_frame_is_length_prefixed_little_endian() -> None:
    assert frame([b"ab", b"", b"xyz"]) == (
        b"\x02\0\0\0\0\0\0\0ab" + b"\0" * 8 + b"\x03\0\0\0\0\0\0\0xyz"
    )
    assert frame([]) == b""
    # the native drain's records: Arrow chunks, a null an empty record
    chunks = pa.chunked_array([pa.array([b"ab", None]), pa.array([b"xyz"])], pa.binary())
    assert frame(ArrowRecords(chunks)) == frame([b"ab", b"", b"xyz"])


def test_a_python_program_transforms_kafka_records_exactly_once(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], tmp_path: Path
) -> None:
    name = topic(4)
    produce(
        broker.bootstrap, name, [json.dumps({"id": i, "c": i * 5}).encode() for i in range(2000)]
    )
    program = write_program(tmp_path, "fahrenheit.py", FAHRENHEIT)
    db.execute("CREATE TABLE t (id INTEGER, c DOUBLE PRECISION, f DOUBLE PRECISION)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        f"WITH TRANSFORM ('file://{program}', '', 'f') INTO TABLE t "
        "FORMAT JSON (id <- id, c <- c, f <- f)"
    )
    stages = db.execute("TEST PIPELINE p LIMIT 1 STAGES").fetchall()
    assert [s for s, _, _ in stages] == ["extract", "transform", "parse", "load"]
    assert json.loads(stages[1][2])["f"] == json.loads(stages[0][2])["c"] * 9 / 5 + 32
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    assert sum(b[2] for b in batches) == 2000
    assert db.execute("SELECT count(DISTINCT id), sum(f) FROM t").fetchone() == (
        2000,
        sum(i * 9 + 32 for i in range(2000)),
    )
    # what the program wrote to stderr while it succeeded is a warning, per partition
    notes = errors(db)
    assert notes and {(t, k, e) for t, k, _, e in notes} == {
        ("Warning", "Transform", "converted\n")
    }
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []


def test_an_awk_program_transforms_files_and_set_transform_changes_it(
    db: sluice.Connection, tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.csv").write_text("".join(f"{i},{i * 10}\n" for i in range(100)))
    db.execute("CREATE TABLE t (id INTEGER, v INTEGER)")
    awk = shutil.which("awk")
    assert awk is not None
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{data}/*.csv' "
        # arguments are split as a shell splits words (quotes group them); no shell runs
        "WITH TRANSFORM ('awk', '', '-F, ''{print $1 \"\\t\" $2 * 2}''') INTO TABLE t"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*), sum(v) FROM t").fetchone() == (100, 2 * 10 * 4950)

    script = write_program(tmp_path, "triple.sh", "awk -F, '{print $1 \"\\t\" $2 * 3}'\n")
    db.execute(f"ALTER PIPELINE p SET TRANSFORM ('file://{script}', '', '')")
    assert f"file://{script}" in db.execute("SHOW CREATE PIPELINE p").fetchall()[0][1]
    (data / "b.csv").write_text("".join(f"{i},{i}\n" for i in range(100, 110)))
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT sum(v) FROM t WHERE id >= 100").fetchone() == (
        3 * sum(range(100, 110)),
    )


def test_a_program_in_an_archive_runs_by_its_name(db: sluice.Connection, tmp_path: Path) -> None:
    write_program(
        tmp_path, "double.py", "import sys\nfor line in sys.stdin: print(int(line) * 2)\n"
    )
    archive = tmp_path / "transform.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "double.py", arcname="bin/double.py")
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.txt").write_text("1\n2\n3\n")
    db.execute("CREATE TABLE t (v INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{data}/*.txt' "
        f"WITH TRANSFORM ('file://{archive}', 'bin/double.py', '') INTO TABLE t"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT sum(v) FROM t").fetchone() == (12,)
    with pytest.raises(sluice.SluiceError, match=r"holds no program 'bin/nope\.py'"):
        db.execute(
            f"CREATE OR REPLACE PIPELINE p AS LOAD DATA FS '{data}/*.txt' "
            f"WITH TRANSFORM ('file://{archive}', 'bin/nope.py', '') INTO TABLE t"
        )


def test_a_crashing_program_fails_the_batch_with_its_stderr_and_loads_nothing(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], tmp_path: Path
) -> None:
    name = topic(1)
    produce(broker.bootstrap, name, [b'{"id": 1}', b'{"id": 2}'])
    crash = write_program(
        tmp_path,
        "crash.py",
        """\
        import sys
        sys.stdin.buffer.read()
        print('{"id": 99}')
        sys.stdout.flush()
        print("Traceback: ValueError: sensor 7 reads nonsense", file=sys.stderr)
        sys.exit(3)
        """,
    )
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_RETRIES_PER_BATCH_PARTITION 1 "
        f"WITH TRANSFORM ('file://{crash}', '', '') INTO TABLE t FORMAT JSON (id <- id)"
    )
    with pytest.raises(sluice.SluiceError, match=r"exited with code 3 on partition 0: Traceback"):
        db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)  # not even its one line
    db.execute("START PIPELINE p")
    wait_for(lambda: states(db) == [("p", "Error")], message="state Error")
    kinds = {(t, k, e) for t, k, _, e in errors(db)}
    assert kinds == {("Error", "Transform", "Traceback: ValueError: sensor 7 reads nonsense\n")}
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    reason = db.execute("SELECT ERROR_MESSAGE FROM information_schema.PIPELINES").fetchone()
    assert reason is not None and "exited with code 3" in reason[0]


def test_a_hanging_program_is_killed_at_its_timeout_and_on_stop(
    db: sluice.Connection, tmp_path: Path
) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.txt").write_text("1\n")
    started = tmp_path / "started"
    hang = write_program(
        tmp_path,
        "hang.py",
        f"""\
        import sys, time
        print("waiting for nothing", file=sys.stderr, flush=True)
        open({str(started)!r}, "a").close()
        time.sleep(3600)
        """,
    )
    db.execute("CREATE TABLE t (v INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{data}/*.txt' "
        "CONFIG '{\"transform_timeout_ms\": 300}' "
        f"WITH TRANSFORM ('file://{hang}', '', '') INTO TABLE t"
    )
    with pytest.raises(sluice.SluiceError, match=r"within 0.3 s .*transform_timeout_ms.* killed"):
        db.execute("START PIPELINE p FOREGROUND")
    assert errors(db)[-1][3] == "waiting for nothing\n"

    # Without the timeout, STOP PIPELINE kills the program of the batch in flight.
    db.execute(
        f"CREATE OR REPLACE PIPELINE p AS LOAD DATA FS '{data}/*.txt' "
        f"WITH TRANSFORM ('file://{hang}', '', '') INTO TABLE t"
    )
    db.execute("START PIPELINE p")
    wait_for(started.exists, message="the program to start")
    db.execute("STOP PIPELINE p")  # returns once the runner has ended, its program killed
    assert states(db) == [("p", "Stopped")]
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_partitions_programs_run_at_once(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], tmp_path: Path
) -> None:
    """Each program waits until all four have started: run one after another, the first would
    wait until its timeout."""
    name = topic(4)
    produce(broker.bootstrap, name, [b"%d" % i for i in range(40)], partitions=4)
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    together = write_program(
        tmp_path,
        "together.py",
        f"""\
        import os, struct, sys, time, uuid
        data = sys.stdin.buffer.read()
        open(os.path.join({str(meeting)!r}, uuid.uuid4().hex), "w").close()
        while len(os.listdir({str(meeting)!r})) < 4:
            time.sleep(0.01)
        at = 0
        while at < len(data):
            (n,) = struct.unpack_from("<Q", data, at)
            print(data[at + 8 : at + 8 + n].decode())
            at += 8 + n
        """,
    )
    db.execute("CREATE TABLE t (v INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "CONFIG '{\"transform_timeout_ms\": 60000}' "
        f"WITH TRANSFORM ('file://{together}', '', '') INTO TABLE t"
    )
    batches = db.execute("START PIPELINE p FOREGROUND LIMIT 1 BATCHES").fetchall()
    assert batches[0][2] == 40
    assert db.execute("SELECT sum(v) FROM t").fetchone() == (sum(range(40)),)


def test_bad_transforms_are_named_when_the_pipeline_is_created(
    db: sluice.Connection, tmp_path: Path
) -> None:
    db.execute("CREATE TABLE t (v INTEGER)")
    create = (
        f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.txt' WITH TRANSFORM (%s) INTO TABLE t"
    )
    with pytest.raises(sluice.SluiceError, match="no-such-program' is not on PATH"):
        db.execute(create % "'no-such-program', '', ''")
    with pytest.raises(sluice.SluiceError, match="does not exist"):
        db.execute(create % f"'file://{tmp_path}/missing.py', '', ''")
    with pytest.raises(sluice.SluiceError, match="only file:// URIs"):
        db.execute(create % "'http://example.invalid/t.py', '', ''")
    (tmp_path / "t.bin").write_text("")
    with pytest.raises(sluice.SluiceError, match="is not executable"):
        db.execute(create % f"'file://{tmp_path}/t.bin', '', ''")
    with pytest.raises(sluice.SluiceError, match="transform_timeout_ms must be an integer >= 1"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA FS '{tmp_path}/*.txt' "
            "CONFIG '{\"transform_timeout_ms\": -1}' "
            "WITH TRANSFORM ('awk', '', '{print}') INTO TABLE t"
        )
