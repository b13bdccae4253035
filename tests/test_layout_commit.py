"""One commit point per run: a failure between table publishes leaves every table on the previous run.

The failure is injected after the 2nd of the published outputs through the layout's
publish hook (``layout.commit.after_publish_hook``); the tables are then read with
DuckDB, a second engine that knows nothing of our code, through the usual
``<table>/run_date=*/*.parquet`` glob. A killed run (no synchronous rollback) is
recovered by the next layout read. Reruns complete.
"""
from __future__ import annotations

import datetime as dt

import pytest

from interest_tracker.layout import commit, fs
from interest_tracker.layout.warehouse import TABLES, Warehouse
from test_scoring_support import build_artifact, make_events, scoring_config, write_events

duckdb = pytest.importorskip("duckdb")

D = dt.date(2026, 11, 28)


def _duck(root, table: str, run_date: dt.date) -> dict:
    """{model_version: rows} of one run_date of a warehouse table, read by DuckDB."""
    rows = duckdb.connect().execute(
        f"SELECT model_version, count(*) FROM read_parquet('{root}/{table}/run_date=*/*.parquet', "
        f"hive_partitioning = true) WHERE run_date = DATE '{run_date}' GROUP BY 1").fetchall()
    return dict(rows)


def _fail_after_second(index: int, final: str) -> None:
    if index == 1:
        raise RuntimeError(f"injected failure after publishing {final}")


@pytest.fixture()
def scoring(spark, tmp_path):
    from interest_tracker.scoring.pipeline import score_run

    build_artifact(tmp_path / "artifacts", "v1", seed=0)
    build_artifact(tmp_path / "artifacts", "v2", seed=5)
    write_events(spark, tmp_path / "stage1", D, make_events(range(12), D, seed=3))
    wh = tmp_path / "wh"

    def run(version: str):
        cfg = scoring_config(tmp_path, wh, mode="full", model_version=version, register_tables=False)
        return score_run(spark, cfg, D)

    run("v1")
    first = Warehouse(str(wh)).read_manifest(spark, D)
    assert first["model_version"] == "v1" and {t: _duck(wh, t, D) for t in TABLES} == {
        t: {"v1": first["tables"][t]["rows"]} for t in TABLES}
    # Readers without Spark find each partition through the committed manifest.
    assert Warehouse(str(wh)).committed_manifest(D) == first
    assert {t: Warehouse(str(wh)).committed_partition(t, D) for t in TABLES} == {
        t: Warehouse(str(wh)).partition_url(t, D) for t in TABLES}
    with pytest.raises(FileNotFoundError, match="run jobs/score_users.py --run-date 2026-11-27"):
        Warehouse(str(wh)).committed_partition(TABLES[0], D - dt.timedelta(days=1))
    return wh, run, first


def _assert_previous_run(spark, wh, first) -> None:
    for t in TABLES:
        assert _duck(wh, t, D) == {"v1": first["tables"][t]["rows"]}, t
    assert Warehouse(str(wh)).read_manifest(spark, D)["commit_id"] == first["commit_id"]
    for t in TABLES:  # no backup or staging left where a reader could trip on it
        assert [n for n in fs.list_names(str(wh / t)) if n.startswith("_")] == [], t
    # only the manifest (Hadoop's local filesystem adds hidden .crc checksums beside files)
    assert [n for n in fs.list_names(str(wh / "_manifests")) if not n.startswith(".")] == [f"run_date={D}.json"]


def test_failure_after_the_second_table_publish_keeps_all_four_on_the_previous_run(spark, scoring, monkeypatch):
    wh, run, first = scoring
    monkeypatch.setattr(commit, "after_publish_hook", _fail_after_second)
    with pytest.raises(RuntimeError, match="injected failure"):
        run("v2")
    _assert_previous_run(spark, wh, first)

    monkeypatch.setattr(commit, "after_publish_hook", None)
    result = run("v2")  # the rerun completes
    manifest = Warehouse(str(wh)).read_manifest(spark, D)
    assert result.model_version == manifest["model_version"] == "v2"
    assert manifest["extra"]["mode"] == "full" and "scorer" in manifest["extra"]
    for t in TABLES:
        assert _duck(wh, t, D) == {"v2": manifest["tables"][t]["rows"]}, t


def test_a_run_killed_between_publishes_is_rolled_back_by_the_next_read(spark, scoring, monkeypatch):
    wh, run, first = scoring

    def killed(spark_, entries):  # the process dies: no synchronous rollback, the journal stays
        raise RuntimeError("killed before rolling back")

    monkeypatch.setattr(commit, "after_publish_hook", _fail_after_second)
    monkeypatch.setattr(commit, "_rollback", killed)
    with pytest.raises(RuntimeError, match="killed"):
        run("v2")
    seen = {t: set(_duck(wh, t, D)) for t in TABLES}
    assert sorted(map(sorted, seen.values())) == [["v1"], ["v1"], ["v2"], ["v2"]]  # the mix a kill leaves
    assert [n for n in fs.list_names(str(wh / "_manifests")) if n.startswith("_journal-")]

    monkeypatch.undo()
    assert Warehouse(str(wh)).read_manifest(spark, D)["commit_id"] == first["commit_id"]  # recovers first
    _assert_previous_run(spark, wh, first)
    assert run("v2").model_version == "v2"


@pytest.mark.timeout(1800)  # three small stage-1 runs: minutes on a loaded 2-core machine
def test_stage1_failure_after_the_second_publish_keeps_the_previous_run(spark, tmp_path, monkeypatch):
    from interest_tracker.layout import Stage1Layout
    from interest_tracker.prepare.config import InputConfig, PrepareConfig, SequenceConfig
    from interest_tracker.prepare.pipeline import run_prepare
    from interest_tracker.synthetic.config import InjectionConfig, SyntheticConfig
    from interest_tracker.synthetic.generator import generate
    from interest_tracker.synthetic.writers import write_raw

    def raw(seed: int, users: int) -> str:
        data = generate(spark, SyntheticConfig(
            num_users=users, num_items=80, num_categories=3, events_per_user=20, min_events_per_user=8,
            max_events_per_user=30, end_time="2026-11-28T23:00:00Z", seed=seed,
            injection=InjectionConfig(malformed=0.02, num_bots=1)))
        write_raw(data, str(tmp_path / f"raw{seed}"), "jsonl")
        return str(tmp_path / f"raw{seed}")

    out = tmp_path / "out"

    def cfg(path: str) -> PrepareConfig:
        return PrepareConfig(input=InputConfig(path=path, format="jsonl"), output_root=str(out),
                             sequences=SequenceConfig(window_length=6, num_row_groups=2))

    layout = Stage1Layout(str(out), D)

    def snapshot() -> dict:
        con = duckdb.connect()
        counts = {t: con.execute(f"SELECT count(*) FROM read_parquet('{out}/{t}/run_date=*/*.parquet', "
                                 f"hive_partitioning = true) WHERE run_date = DATE '{D}'").fetchone()[0]
                  for t in ("events", "rejected", "quarantine", "sessions")}
        train = con.execute(f"SELECT count(*) FROM read_parquet('{out}/sequences/run_date={D}/train/*.parquet')"
                            ).fetchone()[0]
        info = layout.dataset().info()
        return {"tables": counts, "train_rows": train, "fingerprint": info["fingerprint"],
                "report": fs.read_json(layout.report)["counts"],
                "vocab": fs.read_text(layout.vocabulary_pointer).strip()}

    first_rep = run_prepare(spark, cfg(raw(1, 30)), D)
    before = snapshot()
    assert before["tables"]["events"] == first_rep["counts"]["clean"] and before["report"] == first_rep["counts"]

    second_raw = raw(2, 45)
    monkeypatch.setattr(commit, "after_publish_hook", _fail_after_second)
    with pytest.raises(RuntimeError, match="injected failure"):
        run_prepare(spark, cfg(second_raw), D)
    assert snapshot() == before
    assert sorted(n for n in fs.list_names(str(out / "vocabulary")) if not n.startswith(".")) == ["_LATEST", "version=1"]

    monkeypatch.setattr(commit, "after_publish_hook", None)
    rep = run_prepare(spark, cfg(second_raw), D)
    after = snapshot()
    assert after["tables"]["events"] == rep["counts"]["clean"] != before["tables"]["events"]
    manifest = commit.read_manifest(spark, layout.root, layout.partition)
    assert manifest["counts"] == rep["counts"] and manifest["sequences"]["fingerprint"] == after["fingerprint"]


def test_a_removal_is_undone_when_a_later_publish_of_the_run_fails(spark, tmp_path, monkeypatch):
    """A move with no staging removes its output at the commit (a rerun that no longer writes
    a date's windows); a failure later in the same commit brings the removed output back."""
    root = tmp_path / "root"
    old = root / "sequences" / "run_date=2026-11-28"
    old.mkdir(parents=True)
    (old / "part-0.parquet").write_text("old windows")
    table = root / "events"
    (table / "run_date=2026-11-28").mkdir(parents=True)
    (table / "run_date=2026-11-28" / "part-0.parquet").write_text("old events")
    staged = table / "_staging" / "run_date=2026-11-28-x"
    staged.mkdir(parents=True)
    (staged / "part-0.parquet").write_text("new events")
    moves = [(None, fs.to_url(str(old))), (fs.to_url(str(staged)), fs.to_url(str(table / "run_date=2026-11-28")))]

    monkeypatch.setattr(commit, "after_publish_hook", _fail_after_second)
    with pytest.raises(RuntimeError, match="injected failure"):
        commit.commit_run(spark, fs.to_url(str(root)), "run_date=2026-11-28", moves, {"kind": "test"})
    assert (old / "part-0.parquet").read_text() == "old windows"
    assert (table / "run_date=2026-11-28" / "part-0.parquet").read_text() == "old events"

    monkeypatch.setattr(commit, "after_publish_hook", None)
    staged.mkdir(parents=True)
    (staged / "part-0.parquet").write_text("new events")
    commit.commit_run(spark, fs.to_url(str(root)), "run_date=2026-11-28", moves, {"kind": "test"})
    assert not old.exists()
    assert (table / "run_date=2026-11-28" / "part-0.parquet").read_text() == "new events"
    assert not list((root / "sequences").glob("_*")) and not list(table.glob("_*"))
