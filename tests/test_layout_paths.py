"""The layout's path contracts without Spark: run partitions, item stats, report pages, and the grep of issue 8.

Issue 8 asks that no module outside ``interest_tracker.layout`` builds the hand-off
paths (``run_date=`` partitions, ``_LATEST``, ``dataset_info.json``, ``_manifests``).
The last test checks that over the code that runs (lib/, jobs/, bench/, scripts/): it
parses each Python file and looks only at string literals that are not docstrings, so
prose in docstrings and error messages that tell a user where things are stays allowed.
"""
from __future__ import annotations

import ast
import datetime as dt
import re
from pathlib import Path

import pyarrow as pa
import pytest

from interest_tracker.layout import SequencesDataset, fs
from interest_tracker.layout.partition import parse_run_partition, partition_url, run_partition
from interest_tracker.layout.report import ReportPages

REPO = Path(__file__).resolve().parents[1]
D = dt.date(2026, 11, 28)


def test_a_run_partition_has_one_spelling_and_parses_back():
    assert run_partition(D) == "run_date=2026-11-28"
    assert parse_run_partition("run_date=2026-11-28") == D
    assert parse_run_partition("run_date=28/11/2026") is None and parse_run_partition("_staging") is None
    assert partition_url("s3://b/wh/user_interest", D) == "s3://b/wh/user_interest/run_date=2026-11-28"
    assert partition_url("/x/t/", D) == "/x/t/run_date=2026-11-28"  # a path stays a path


def test_item_stats_written_outside_spark_read_back_through_the_layout(tmp_path):
    ds = SequencesDataset(str(tmp_path / "sequences" / run_partition(D)))
    ds.write_item_stats(pa.table({"item_index": pa.array([0, 1, 2], pa.int32()),
                                  "train_count": pa.array([0, 5, 7], pa.int64())}))
    ds.write_item_stats(pa.table({"item_index": pa.array([0, 1], pa.int32()),
                                  "train_count": pa.array([0, 9], pa.int64())}))  # replaces, not appends
    got = ds.read_item_stats()
    assert got.column("item_index").to_pylist() == [0, 1] and got.column("train_count").to_pylist() == [0, 9]
    assert fs.list_names(ds.item_stats) == ["part-00000.parquet"]
    with pytest.raises(ValueError, match="missing \\['train_count'\\]"):
        ds.write_item_stats(pa.table({"item_index": pa.array([0], pa.int32())}))


def test_report_pages_are_published_whole_in_their_run_directory(tmp_path):
    pages = ReportPages(f"file://{tmp_path}/report")
    assert pages.page(D) == tmp_path / "report" / "run_date=2026-11-28" / "index.html"
    assert pages.summary(D).parent == pages.run_dir(D)
    first = pages.staging_dir(D)
    (first / "index.html").write_text("old")
    (first / "stale.png").write_bytes(b"x")
    assert pages.publish(first, D) == pages.page(D) and pages.page(D).read_text() == "old"
    second = pages.staging_dir(D)
    assert second.name.startswith(".") and list(second.iterdir()) == []  # hidden, fresh
    (second / "index.html").write_text("new")
    pages.publish(second, D)
    assert sorted(p.name for p in pages.run_dir(D).iterdir()) == ["index.html"]  # the old page's files are gone
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == ["run_date=2026-11-28"]  # no staging left
    with pytest.raises(ValueError, match="local path or file://"):
        ReportPages("s3://bucket/report")


# ------------------------------------------------------------------ the grep of issue 8

# A literal that names a hand-off file or pointer, or builds a run partition: ``run_date=``
# followed by a format field, a glob or the end of the literal (then an f-string value or a
# concatenation follows). Prose such as "the run_date=... directory" does not match.
POINTERS = {"_LATEST", "dataset_info.json", "_manifests"}
BUILDS_PARTITION = re.compile(r"run_date=(\{|\*|$)")


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for stmt in body:  # every bare string statement: docstrings and attribute docstrings
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                        and isinstance(stmt.value.value, str):
                    ids.add(id(stmt.value))
    return ids


def _offences(path: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstring_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            parts = [p.strip("/") for p in node.value.split("/")]
            if POINTERS & set(parts) or BUILDS_PARTITION.search(node.value):
                out.append(f"{path.relative_to(root)}:{node.lineno}: {node.value!r}")
    return sorted(out, key=lambda o: int(o.split(":")[1]))


def test_no_code_outside_the_layout_builds_hand_off_paths():
    files = [p for d in ("lib", "jobs", "bench", "scripts") for p in sorted((REPO / d).rglob("*.py"))
             if "layout" not in p.relative_to(REPO).parts]
    assert len(files) > 50
    offenders = [o for f in files for o in _offences(f)]
    shell = [f"{p.relative_to(REPO)}:{n}: {line.strip()}" for p in sorted((REPO / "scripts").glob("*.sh"))
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if not line.lstrip().startswith("#") and ("_LATEST" in line or "run_date=" in line)]
    assert offenders + shell == []


def test_the_grep_sees_a_hand_built_path(tmp_path):
    """The check above is not vacuous: each kind of hand-built path is found."""
    src = tmp_path / "x.py"
    src.write_text('"""run_date=D in a docstring is prose."""\n'
                   'a = root / "_LATEST"\n'
                   'b = f"{root}/sequences/run_date={day}"\n'
                   'c = "out/reports/run_date={run_date}/report.json"\n'
                   'd = f"{root}/dataset_info.json"\n'
                   'e = "pass the run_date=... directory"\n')
    found = _offences(src, tmp_path)
    assert [o.split(":")[1] for o in found] == ["2", "3", "4", "5"]
