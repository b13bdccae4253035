"""The pipeline report, fed by small fixtures that follow the stage contracts.

The Spark aggregations are checked on hand-made rows; the page is checked for its
sections and numbers, and rendered in headless Chromium to prove the plots show.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from interest_tracker.config import ConfigError
from interest_tracker.contracts import load_contract
from interest_tracker.layout import ArtifactStore, Stage1Layout, fs
from interest_tracker.layout.report import ReportPages
from interest_tracker.layout.warehouse import DRIFT as DRIFT_TABLE
from interest_tracker.layout.warehouse import Warehouse
from interest_tracker.report import summaries
from interest_tracker.report.build import SECTION_IDS, MissingInput, build_report
from interest_tracker.report.config import ReportConfig

RUN = dt.date(2026, 11, 28)
T0 = dt.datetime(2026, 11, 28, 8, 0, 0)


def _write(spark, rows, contract: str, url: Path) -> None:
    c = load_contract(contract)
    schema = c.spark_schema()
    df = spark.createDataFrame(rows, schema).drop(*c.partition_by)
    df.coalesce(1).write.mode("overwrite").parquet(str(url))


def session_rows(spec):
    """``spec``: list of (user, event_count) -> sessions contract rows."""
    return [(f"s{i}", u, T0, T0 + dt.timedelta(seconds=10 * n), n, 10.0 * n, RUN) for i, (u, n) in enumerate(spec)]


def event_rows(per_user: dict[str, int]):
    rows = []
    for u, n in per_user.items():
        for k in range(n):
            rows.append((f"{u}-{k}", u, f"i{k % 3}", "view", 1.0, T0 + dt.timedelta(minutes=k), f"{u}-s", None, None, RUN))
    return rows


DRIFT = [("u1", "m1", dt.date(2026, 11, 27), 1.0, "a", "a", False),
         ("u2", "m1", dt.date(2026, 11, 27), 0.95, "a", "b", True),
         ("u3", "m1", dt.date(2026, 11, 27), -1.0, None, None, None),
         ("u4", "m1", None, None, None, None, None)]
# The day before: u2's top category was b (so the timeline shows b -> a).
DAY0 = RUN - dt.timedelta(days=1)
DRIFT_DAY0 = [("u1", "m1", None, None, "a", None, None), ("u2", "m1", None, None, "b", None, None),
              ("u3", "m1", None, None, None, None, None)]
CATEGORIES = [("i0", "a"), ("i1", "b"), ("i2", "c")]
HISTORY = [{"epoch": 0, "train_loss": 5.0, "valid": {"recall@20": 0.2, "mrr@20": 0.05}, "seconds": 3.0},
           {"epoch": 1, "train_loss": 4.0, "valid": {"recall@20": 0.3, "mrr@20": 0.08}, "seconds": 2.5},
           {"epoch": 2, "train_loss": 3.5, "valid": {"recall@20": 0.35, "mrr@20": 0.1}, "seconds": 2.5}]
BASELINES = {"popularity": {"recall@20": 0.1, "mrr@20": 0.02, "recall@10": 0.06, "ndcg@10": 0.03},
             "transitions": {"recall@20": 0.3, "mrr@20": 0.2, "recall@10": 0.25, "ndcg@10": 0.2}}
# The layout of evaluation/selection.py: baselines per split, blended scorers under selection.
METRICS = {"best_epoch": 2, "early_stopping_metric": "mrr@20", "epochs_run": 3, "history": HISTORY,
           "valid": HISTORY[-1]["valid"],
           "test": {"recall@20": 0.33, "mrr@20": 0.09, "recall@10": 0.25, "ndcg@10": 0.12},
           "baselines": {"valid": BASELINES, "test": BASELINES},
           "selection": {"scorers": {"test": {"model": {"recall@20": 0.33}, "blend": {
               "recall@20": 0.36, "mrr@20": 0.21, "recall@10": 0.28, "ndcg@10": 0.22}}}}}
STAGE1 = {"run_date": RUN.isoformat(), "reconciled": True,
          "counts": {"input_rows": 20, "clean": 14, "rejected": {"MISSING_FIELD": 2, "BAD_TIME": 1},
                     "duplicates": {"exact": 2}, "quarantined": {"BOT_RATE": 1}},
          "stats": {"users": 3, "items": 3, "sessions": 5}}


@pytest.fixture(scope="module")
def pipeline_output(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    stage1, wh = Stage1Layout(str(root / "out"), RUN), Warehouse(str(root / "wh"))
    fs.write_json(stage1.report, STAGE1)
    _write(spark, session_rows([("a", 1), ("a", 3), ("b", 3), ("b", 50), ("c", 2)]), "sessions",
           stage1.partition_url("sessions"))
    _write(spark, event_rows({"a": 4, "b": 8, "c": 2, "u2": 5}), "clean_events", stage1.partition_url("events"))
    day0_events = [(*r[:9], DAY0) for r in event_rows({"u2": 3})]
    day0_events = [(f"d0-{r[0]}", r[1], "i1", r[3], r[4], r[5] - dt.timedelta(days=1), *r[6:]) for r in day0_events]
    _write(spark, day0_events, "clean_events", stage1.partition_url("events", DAY0))
    ArtifactStore(str(root / "artifacts")).write("v1", {}, {"model_version": "v1", "vocab_version": 1}, METRICS)
    _write(spark, [(*r, RUN) for r in DRIFT], "user_interest_drift", wh.partition_url(DRIFT_TABLE, RUN))
    _write(spark, [(*r, DAY0) for r in DRIFT_DAY0], "user_interest_drift", wh.partition_url(DRIFT_TABLE, DAY0))
    spark.createDataFrame(CATEGORIES, "item_id string, category string").coalesce(1).write.parquet(
        str(root / "categories"))
    return root


def cfg_for(root: Path, **kw) -> ReportConfig:
    kw.setdefault("item_categories_path", str(root / "categories"))
    return ReportConfig(events_root=str(root / "out"), artifact_root=f"file://{root}/artifacts",
                        warehouse_root=str(root / "wh"), report_dir=str(root / "report"), max_bucket=10, **kw)


def test_capped_value_counts(spark):
    df = spark.createDataFrame([(1,), (1,), (3,), (12,), (40,), (None,)], "n int")
    got = [tuple(r) for r in summaries.capped_value_counts(df, "n", 10).collect()]
    assert got == [(-1, 1), (1, 2), (3, 1), (10, 2)]


def test_log2_bins_spread_a_heavy_tail(spark):
    df = spark.createDataFrame([(v,) for v in (0, 1, 2, 3, 4, 7, 8, 1000, None)], "n int")
    got = [tuple(r) for r in summaries.log2_binned_counts(df, "n").collect()]
    # (bin, lower, upper, count): 1 | 2-3 | 4-7 | 8-15 | 512-1023, zero and null kept apart.
    assert got == [(-2, None, None, 1), (-1, 0, 0, 1), (0, 1, 1, 1), (1, 2, 3, 2), (2, 4, 7, 2), (3, 8, 15, 1),
                   (9, 512, 1023, 1)]


def test_sample_users_are_the_ones_that_moved(spark):
    schema = load_contract("user_interest_drift").spark_schema()
    drift = spark.createDataFrame([(*r, RUN) for r in DRIFT], schema)
    assert [r["user_id"] for r in summaries.sample_drift_users(drift, 3).collect()] == ["u2", "u3", "u1"]


def test_drift_histogram_edges_and_nulls(spark):
    schema = load_contract("user_interest_drift").spark_schema()
    drift = spark.createDataFrame([(*r, RUN) for r in DRIFT], schema)
    hist = [(r["bin"], r["users"]) for r in summaries.drift_histogram(drift, 4).collect()]
    # -1.0 -> first bin; 0.95 and exactly 1.0 -> last bin; the null is not a similarity.
    assert hist == [(0, 1), (3, 2)]
    s = summaries.drift_summary(drift).first()
    assert (s["users"], s["without_previous"], s["top_category_changed"], s["top_category_compared"]) == (4, 1, 1, 2)
    assert s["mean_cosine"] == pytest.approx((1.0 + 0.95 - 1.0) / 3)


def test_report_holds_every_section_and_the_real_numbers(spark, pipeline_output):
    page = build_report(spark, cfg_for(pipeline_output), RUN)
    assert page == ReportPages(str(pipeline_output / "report")).page(RUN)
    assert page.parent.name == f"run_date={RUN}" and page.name == "index.html"  # the documented place
    text = page.read_text()
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in text
    assert "not available" not in text
    summary = json.loads((page.parent / "summary.json").read_text())
    assert summary["missing"] == {}
    assert summary["counts"]["input rows"] == 20 and summary["counts"]["rejected: MISSING_FIELD"] == 2
    # sessions with 1, 2, 3, 3 and 50 (capped at 10) events
    assert summary["session_length"]["values"] == [1, 2, 3, 10]
    assert summary["session_length"]["counts"] == [1, 1, 2, 1]
    # users with 2, 4, 5 and 8 events, in log-spaced bins 2-3, 4-7, 8-15
    assert summary["events_per_user"] == {"bins": [[2, 3], [4, 7], [8, 15]], "counts": [1, 2, 1]}
    assert [r["train_loss"] for r in summary["learning_curves"]] == [5.0, 4.0, 3.5]
    assert summary["metrics"]["split"] == "test"
    assert set(summary["metrics"]["rows"]) == {"model", "popularity", "transitions", "model+blend"}
    assert summary["metrics"]["rows"]["transitions"]["mrr@20"] == 0.2
    assert summary["drift"]["users"] == 4 and summary["drift"]["without_previous"] == 1
    # the timeline follows the users that moved most, with their top category per run date
    assert summary["timeline"]["users"] == ["u2", "u3", "u1"]
    assert summary["timeline"]["runs"]["u2"] == [[str(DAY0), "b"], [str(RUN), "a"]]
    for png in re.findall(r'<img src="([^"]+)"', text):
        assert (page.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert len(re.findall(r"<img ", text)) == 7
    assert not list(page.parent.parent.glob(".*staging*"))


def test_missing_stage_is_shown_not_skipped(spark, pipeline_output, tmp_path):
    cfg = ReportConfig(events_root=str(pipeline_output / "out"), artifact_root=str(tmp_path / "no-artifacts"),
                       warehouse_root=str(tmp_path / "no-warehouse"), report_dir=str(tmp_path / "r"))
    text = build_report(spark, cfg, RUN).read_text()
    for sid in ("learning-curves", "metrics"):
        section = text.split(f'<section id="{sid}">')[1].split("</section>")[0]
        assert "not available" in section and "jobs/train_model.py" in section
    drift = text.split('<section id="drift">')[1].split("</section>")[0]
    assert "jobs/score_users.py" in drift
    with pytest.raises(MissingInput, match="jobs/train_model.py"):
        build_report(spark, ReportConfig(**{**cfg.__dict__, "allow_missing": False}), RUN)


def test_report_dir_must_be_local():
    with pytest.raises(ConfigError, match="report_dir"):
        ReportConfig(events_root="a", artifact_root="b", warehouse_root="c", report_dir="s3a://bucket/r")


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.skip("chromium not installed: run scripts/install_test_tools.sh (apt-get install chromium)")
    return exe


# A harness page frames the report and records, once it has loaded, every image's decoded
# size and every section id: Chromium's log does not report a broken <img>, the DOM does.
HARNESS = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" width="1280" height="5000" src="REPORT"></iframe>
<script>
document.getElementById("f").onload = function () {
  var d = this.contentDocument;
  var imgs = Array.prototype.map.call(d.images, function (i) {
    return {src: i.getAttribute("src"), ok: i.complete && i.naturalWidth > 0, width: i.naturalWidth}; });
  var ids = Array.prototype.map.call(d.querySelectorAll("section"), function (s) { return s.id; });
  document.getElementById("result").textContent = JSON.stringify({title: d.title, images: imgs, sections: ids});
};
</script></body></html>"""


def render(page: Path, tmp: Path) -> tuple[Path, dict, str]:
    """Screenshot of ``page`` in headless Chromium, what the harness saw, and Chromium's log."""
    tmp.mkdir(parents=True, exist_ok=True)
    shot = tmp / "shot.png"
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
             "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--window-size=1280,5200"]
    res = subprocess.run([*flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    harness = tmp / "harness.html"
    harness.write_text(HARNESS.replace("REPORT", page.as_uri()))
    dom = subprocess.run([*flags, "--disable-web-security", "--allow-file-access-from-files",
                          "--virtual-time-budget=10000", "--dump-dom", harness.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r'<pre id="result">(.*?)</pre>', dom.stdout, re.S)
    assert m and m.group(1) != "pending", dom.stdout[-2000:]
    import html as html_mod

    return shot, json.loads(html_mod.unescape(m.group(1))), res.stderr + dom.stderr


def plot_pixels(png: Path) -> int:
    """Pixels of the plots' bar colour (#4c72b0); the page itself uses it nowhere else."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    return sum(1 for r, g, b in img.getdata() if abs(r - 0x4C) < 12 and abs(g - 0x72) < 12 and abs(b - 0xB0) < 12)


def test_report_renders_in_headless_chromium(spark, pipeline_output, tmp_path):
    page = build_report(spark, cfg_for(pipeline_output), RUN)
    copy = tmp_path / "report"
    shutil.copytree(page.parent, copy)
    page = copy / "index.html"
    shot, seen, log = render(page, tmp_path / "ok")
    assert seen["title"].startswith("interest-tracker pipeline report")
    assert seen["sections"] == list(SECTION_IDS)
    assert len(seen["images"]) == 7 and all(i["ok"] and i["width"] >= 400 for i in seen["images"]), seen["images"]
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == []
    shown = plot_pixels(shot)
    assert shown > 20000, f"only {shown} plot pixels in the screenshot"
    shutil.copy(shot, pipeline_output / "report" / "screenshot.png")
    # Negative control: without its PNGs the page shows no plot colour, and the harness sees it.
    for png in copy.glob("*.png"):
        png.unlink()
    shot2, seen2, _ = render(page, tmp_path / "broken")
    assert plot_pixels(shot2) == 0
    assert not any(i["ok"] for i in seen2["images"])


def test_histogram_bars_are_dense_and_capped():
    from interest_tracker.report.build import _dense

    labels, heights = _dense([-1, 2, 4, 10], [1, 2, 3, 4], 10)
    assert labels == ["null", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10+"]
    assert heights == [1, 0, 2, 0, 3, 0, 0, 0, 0, 0, 4]
