"""Property-based fuzzing of the spool reader: generated and mutated spool files, real collector, real DuckDB.

Every example writes a batch of three files (two good ones and one made from a real job file by a
generated mutation) into a fresh spool folder and ingests it into one shared warehouse. Whatever
the mutation, the collector must not crash, each file must end either ingested exactly (the
warehouse holds what its lines say) or quarantined with a reason (and nothing of it in the
warehouse), and the good files of the batch still go in.
"""

from __future__ import annotations

import itertools
import json
import math
import os

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.ingest import DONE, QUARANTINE, CollectorConfig, ingest_pending
from spool import TABLES

pytestmark = pytest.mark.slow  # hundreds of generated files through the real collector

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 500)
# Tables whose rows carry the job id, and the kind of record behind each.
JOB_TABLES = {kind: table for kind, table in TABLES.items() if kind not in ("run", "sample", "load_level", "request", "server_step")}
_ids = itertools.count()

# -- generated JSON values, including the awkward ones ------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=10),  # any code point that UTF-8 can carry
    st.sampled_from(["", "\x00", "\ud800", "é" * 3, "🙂", "\u202e", "NaN", "1e999", "2026-13-45T99:00:00"]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                                          inner, max_size=3),
                      max_leaves=8)


def _dumps(obj) -> str:
    """JSON as a careless writer would produce it: NaN and Infinity bare, lone surrogates escaped."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=True)


# -- mutations: each takes the template's lines and returns the file's bytes ------------------------

def _file(lines: list[str], eol: str = "\n") -> bytes:
    return (eol.join(lines) + eol).encode("utf-8", "surrogatepass")  # a lone surrogate as a careless writer would


def _with(lines: list[str], i: int, line: str) -> bytes:
    """The file with line i replaced."""
    return _file(lines[:i] + [line] + lines[i + 1:])


@st.composite
def set_field(draw, lines):
    i = draw(st.integers(0, len(lines) - 1))
    obj = json.loads(lines[i])
    key = draw(st.sampled_from(sorted(obj)) | st.text(max_size=8))
    obj[key] = draw(values)
    return _with(lines, i, _dumps(obj))


@st.composite
def drop_field(draw, lines):
    i = draw(st.integers(0, len(lines) - 1))
    obj = json.loads(lines[i])
    obj.pop(draw(st.sampled_from(sorted(obj))))
    return _with(lines, i, _dumps(obj))


@st.composite
def huge_string(draw, lines):
    """One field several MB long: a line of several MB."""
    i = draw(st.integers(0, len(lines) - 1))
    obj = json.loads(lines[i])
    key = draw(st.sampled_from(sorted(set(obj) - {"kind", "schema_version"}) or ["x"]))
    obj[key] = draw(st.sampled_from(["a", "é", "🙂", "\\", '"'])) * draw(st.integers(1_000_000, 3_000_000))
    return _with(lines, i, _dumps(obj))


@st.composite
def deep_nesting(draw, lines):
    """A value nested deeper than any parser's recursion limit, written as text."""
    i = draw(st.integers(1, len(lines) - 1))
    depth = draw(st.sampled_from([50, 999, 1001, 5000, 100_000]))
    nested = draw(st.sampled_from(["[", '{"a":'])) * depth
    closing = ("]" if nested[0] == "[" else "}") * depth
    return _with(lines, i, lines[i][:-1] + f',"deep":{nested}1{closing}}}')


@st.composite
def kind_or_version(draw, lines):
    i = draw(st.integers(0, len(lines) - 1))
    obj = json.loads(lines[i])
    if draw(st.booleans()):
        obj["kind"] = draw(st.sampled_from(["bogus", "", "Job", "request", None, 3]))
    else:
        obj["schema_version"] = draw(st.sampled_from([0, 2, 99, "1", 1.5, None]))
    return _with(lines, i, _dumps(obj))


@st.composite
def cut(draw, lines):
    """The file cut short at any byte."""
    data = _file(lines)
    return data[:draw(st.integers(0, len(data) - 1))]


@st.composite
def raw_bytes(draw, lines):
    """Bytes inserted or overwritten anywhere: invalid UTF-8, NUL, stray quotes and newlines."""
    data = bytearray(_file(lines))
    at = draw(st.integers(0, len(data) - 1))
    junk = draw(st.binary(min_size=1, max_size=6) | st.sampled_from([b"\xff", b"\xc3", b"\x00", b'"', b"\n",
                                                                     b"\r\n", b"\xef\xbb\xbf", b"NaN"]))
    if draw(st.booleans()):
        data[at:at + len(junk)] = junk
    else:
        data[at:at] = junk
    return bytes(data)


@st.composite
def odd_lines(draw, lines):
    """Lines that are valid JSON but not records, duplicate keys, CRLF endings, blank lines."""
    i = draw(st.integers(0, len(lines) - 1))
    choice = draw(st.sampled_from(["array", "number", "string", "dupkey", "crlf", "blank", "bom"]))
    if choice == "crlf":
        return _file(lines, eol="\r\n")
    if choice == "bom":
        return b"\xef\xbb\xbf" + _file(lines)
    if choice == "blank":
        return _file(lines[:i] + [""] + lines[i:])
    replacement = {"array": "[" + lines[i] + "]", "number": "42", "string": '"kind"',
                   "dupkey": lines[i][:-1] + ',"kind":"step"}'}[choice]
    return _with(lines, i, replacement)


MUTATIONS = [set_field, drop_field, huge_string, deep_nesting, kind_or_version, cut, raw_bytes, odd_lines]

# -- the fixtures: a real job file as the template, one warehouse for all examples ---------------


@pytest.fixture(scope="module")
def template(small_sweep) -> list[str]:
    """The lines of the richest real job file of the small sweep (run, job, phases, steps, samples)."""
    cfg, written = small_sweep
    jobs = [p for p in written if p.name.startswith("job-")]
    return max((p.read_text().splitlines() for p in jobs), key=len)


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("fuzz") / "w.duckdb")


def _renamed(lines: list[str], n: int) -> tuple[list[str], str, str]:
    """The template with run and job ids unique to this file."""
    first, second = json.loads(lines[0]), json.loads(lines[1])
    run_id, job_id = first["run_id"], second["job_id"]
    new_run, new_job = f"fz-run-{n:08d}", f"fz-job-{n:08d}"  # one length: the same draws
    text = "\n".join(lines).replace(job_id, new_job).replace(run_id, new_run)
    return text.splitlines(), new_run, new_job


def _records(data: bytes) -> list[dict]:
    """The records of a file the collector accepted (blank lines and a BOM are no records)."""
    records = []
    for line in data.decode("utf-8-sig").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except RecursionError:  # nested past Python's limit; the template's own keys come first
            records.append(json.loads(line[:line.index(',"deep":')] + "}"))
    return records


def _expected_rows(records: list[dict], job_id: str) -> dict[str, int]:
    """What an ingested file must have put in each job table: its records of that kind for this job."""
    expected = dict.fromkeys(JOB_TABLES.values(), 0)
    for obj in records:
        if obj.get("kind") in JOB_TABLES and obj.get("job_id") == job_id:
            expected[JOB_TABLES[obj["kind"]]] += 1
    return expected


def _rows(con, job_id: str) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t} WHERE job_id = ?", [job_id]).fetchone()[0]
            for t in JOB_TABLES.values()}


# The JSON types a column's value must have to be compared exactly. A value of another type is
# converted the way DuckDB's JSON reader converts it (0.5 into an integer column reads as 0): the
# collector accepts that, and the closing check below does not hold it to the written value.
_JSON_TYPES = {"INTEGER": (int,), "BIGINT": (int,), "DOUBLE": (int, float), "VARCHAR": (str,),
               "BOOLEAN": (bool,)}


def _comparable(value, column_type: str) -> bool:
    kinds = _JSON_TYPES.get(column_type, ())
    return isinstance(value, kinds) and (column_type == "BOOLEAN" or not isinstance(value, bool))


def _same(stored, written) -> bool:
    if isinstance(written, float) and math.isnan(written):
        return stored is not None and math.isnan(stored)
    return stored == written


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture, HealthCheck.large_base_example])
@given(data=st.data())
def test_every_spool_file_is_ingested_exactly_or_quarantined_with_a_reason(data, template, shared_db,
                                                                        tmp_path_factory):
    # 1. A batch: a good file, the mutated one, another good file, in a fresh spool folder.
    n = next(_ids)
    spool = tmp_path_factory.mktemp(f"spool{n}")
    mutation = data.draw(st.sampled_from(MUTATIONS), label="mutation")
    files = {}
    for slot in ("good-a", "mutated", "good-b"):
        lines, run_id, job_id = _renamed(template, n * 3 + len(files))
        body = data.draw(mutation(lines), label="file") if slot == "mutated" else _file(lines)
        (spool / run_id).mkdir()
        (spool / run_id / f"{slot}.jsonl").write_bytes(body)
        files[slot] = (f"{run_id}/{slot}.jsonl", job_id, body)
    # 2. The collector must not raise, whatever the files hold.
    report = ingest_pending(CollectorConfig(spool=str(spool), db=shared_db, busy_wait=60))
    reasons = dict(report.quarantined)
    con = duckdb.connect(shared_db, read_only=True)
    try:
        for slot, (file_id, job_id, body) in files.items():
            ingested = con.execute("SELECT count(*) FROM ingested_files WHERE file_id = ?", [file_id]).fetchone()[0]
            rows = _rows(con, job_id)
            if slot != "mutated" or ingested:
                # 3a. Ingested exactly: once, in done/, and the warehouse holds what its lines say.
                assert ingested == 1 and (spool / DONE / file_id).read_bytes() == body, (slot, reasons)
                assert file_id not in reasons
                records = _records(body)
                assert rows == _expected_rows(records, job_id), (slot, body[:300])
                job = next((o for o in records if o.get("kind") == "job" and o.get("job_id") == job_id), None)
                if job is not None:  # its values of the right JSON type are stored as written
                    stored = con.execute("SELECT * FROM jobs WHERE job_id = ?", [job_id]).fetchone()
                    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                             "WHERE table_name = 'jobs'").fetchall())
                    names = [d[0] for d in con.description]
                    for column, value in job.items():
                        if column in names and _comparable(value, types[column]):
                            assert _same(stored[names.index(column)], value), (column, value)
            else:
                # 3b. Quarantined with a reason, nothing of it in the warehouse.
                moved = spool / QUARANTINE / file_id
                assert moved.read_bytes() == body and not (spool / file_id).exists()
                reason = moved.with_name(moved.name + ".reason").read_text().strip()
                assert reason and reasons[file_id] == reason
                assert sum(rows.values()) == 0, rows
    finally:
        con.close()
