"""The demo's last screen: what each day did, three users whose interest switched, and the report.

    python scripts/demo_summary.py OUT_DIR DAY1 DAY2

Everything is read with DuckDB straight from the Parquet files and JSON reports, to show
that a second engine reads the warehouse tables without Spark. Where they are comes from
the hand-off layer (``interest_tracker.layout``): each warehouse partition is the one its
run's committed manifest names, the stage-1 report and the HTML page are where the layout
puts them. The three users are picked
from the generator's ground truth (``synthetic/ground_truth``: users whose interest moved
to another category on DAY2); the summary says how many of all such users the model
followed, so the three are shown in context, not as a hand-picked success.
"""
from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

from interest_tracker.layout import Stage1Layout, fs
from interest_tracker.layout.artifact import ArtifactStore
from interest_tracker.layout.report import ReportPages
from interest_tracker.layout.warehouse import Warehouse

log = logging.getLogger("demo")
TOP_ITEMS = 5


def _stage1_line(root: Path, day: str) -> str:
    rep = fs.read_json(Stage1Layout(str(root / "stage1"), dt.date.fromisoformat(day)).report)
    c = rep["counts"]
    rejected = sum(c.get("rejected", {}).values())
    dup = sum(c.get("duplicates", {}).values())
    quarantined = sum(c.get("quarantined", {}).values())
    return (f"{day}: {c['input_rows']:,} raw rows = {c['clean']:,} clean + {rejected:,} rejected + {dup:,} duplicates "
            f"+ {quarantined:,} quarantined (bots); {'reconciled' if rep.get('reconciled') else 'NOT RECONCILED'}")


def _scorer_line(root: Path) -> str:
    """What the tables were scored with: the training job's choice between the model, a blend
    with the rules and the rules alone, on validation (``scorer = auto``)."""
    store = ArtifactStore(str(root / "artifacts"))
    version = store.resolve()
    sel = store.metrics(version)["selection"]
    scores = ", ".join(f"{k} {v:.3f}" for k, v in (sel.get("valid") or {}).items()) or "no validation split"
    weights, b = "", sel["blend"]
    if sel["choice"] == "blend" and b.get("model_power"):  # the product form: rules x P_model ** power
        weights = (f" (transitions {b['transitions']:g} + recent {b['recent']:g}, "
                   f"times the model ** {b['model_power']:g})")
    elif sel["choice"] == "blend":
        weights = f" (model {b['model']:g} + transitions {b['transitions']:g} + recent {b['recent']:g})"
    return (f"model {version}: the tables publish the {sel['choice']}{weights}, the best on validation "
            f"({sel['metric']}: {scores})")


def _parquet(root: Path, table: str, day: str) -> str:
    """DuckDB's reader of one table's partition for ``day``, as the run's committed manifest names it."""
    part = Warehouse(str(root / "warehouse")).committed_partition(table, dt.date.fromisoformat(day))
    return f"read_parquet('{fs.local_path(part)}/*.parquet')"


def _top_categories(con, root: Path, user: str, day: str) -> str:
    rows = con.execute(
        f"SELECT c.category, count(*) AS n FROM {_parquet(root, 'user_recommendations', day)} r "
        f"JOIN read_parquet('{root / 'synthetic' / 'item_categories'}/*.parquet') c USING (item_id) "
        f"WHERE r.user_id = ? GROUP BY c.category ORDER BY n DESC, c.category LIMIT 3", [user]).fetchall()
    total = con.execute(f"SELECT count(*) FROM {_parquet(root, 'user_recommendations', day)} WHERE user_id = ?",
                        [user]).fetchone()[0]
    return ", ".join(f"{cat} ({n}/{total})" for cat, n in rows) or "(no recommendations)"


def _top_items(con, root: Path, user: str, day: str) -> str:
    rows = con.execute(
        f"SELECT r.item_id, c.category FROM {_parquet(root, 'user_recommendations', day)} r "
        f"LEFT JOIN read_parquet('{root / 'synthetic' / 'item_categories'}/*.parquet') c USING (item_id) "
        f"WHERE r.user_id = ? ORDER BY r.rank LIMIT {TOP_ITEMS}", [user]).fetchall()
    return " ".join(f"{item}({cat})" for item, cat in rows)


def main(out: str, day1: str, day2: str) -> None:
    from interest_tracker.logs import setup_logging

    setup_logging("INFO")
    import duckdb

    root = Path(out).resolve()
    con = duckdb.connect()
    log.info("stage 1 (every raw row accounted for):")
    for day in (day1, day2):
        log.info("  %s", _stage1_line(root, day))

    drift = _parquet(root, "user_interest_drift", day2)
    users1 = con.execute(f"SELECT count(*) FROM {_parquet(root, 'user_interest', day1)}").fetchone()[0]
    s = con.execute(
        f"SELECT count(*), count(cosine_similarity), avg(cosine_similarity), "
        f"sum(CASE WHEN top_category_changed THEN 1 ELSE 0 END) FROM {drift}").fetchone()
    log.info("scoring: %s scored %d users; %s scored %d users, %d of them with a day-1 vector "
             "(mean cosine to it %.3f), top recommended category changed for %d", day1, users1, day2, s[0], s[1],
             s[2] or float("nan"), s[3] or 0)

    log.info("%s", _scorer_line(root))

    # Ground truth: users whose (last) interest switch happened on DAY2, and whether the
    # model's top recommended category moved to the new interest.
    truth = f"read_parquet('{root / 'synthetic' / 'ground_truth'}/*.parquet')"
    switched = con.execute(f"""
        WITH last AS (
          SELECT user_id, arg_max(to_category, switch_time) AS to_cat, arg_max(from_category, switch_time) AS from_cat,
                 max(switch_time) AS t
          FROM {truth} GROUP BY user_id)
        SELECT l.user_id, printf('c%02d', l.from_cat), printf('c%02d', l.to_cat), l.t, d.cosine_similarity,
               d.previous_top_category, d.top_category,
               coalesce(d.top_category = printf('c%02d', l.to_cat), false) AS followed
        FROM last l JOIN {drift} d USING (user_id)
        WHERE CAST(l.t AS DATE) = DATE '{day2}' AND d.cosine_similarity IS NOT NULL
        ORDER BY followed DESC, d.top_category_changed DESC NULLS LAST, d.cosine_similarity, l.user_id
    """).fetchall()
    followed = sum(1 for r in switched if r[7])
    log.info("ground truth: %d users switched interest on %s; after day 2 the top recommended category of %d of "
             "them (%.0f%%) is their new interest", len(switched), day2, followed,
             100.0 * followed / len(switched) if switched else 0.0)
    for user, from_cat, to_cat, when, cos, prev_top, top, _ in switched[:3]:
        log.info("")
        log.info("%s: switched %s -> %s at %s UTC; cosine day1->day2 %.2f", user, from_cat, to_cat,
                 str(when)[:16], cos)
        for day in (day1, day2):
            log.info("  %s top categories %s", day, _top_categories(con, root, user, day))
            log.info("  %s top-%d items    %s", day, TOP_ITEMS, _top_items(con, root, user, day))

    report = ReportPages(str(root / "report")).page(dt.date.fromisoformat(day2))
    log.info("")
    log.info("outputs: stage 1 %s | model %s | warehouse tables %s", root / "stage1", root / "artifacts",
             root / "warehouse")
    if report.is_file():
        log.info("report: %s", report)
        log.info("open it: xdg-open %s  (or: python3 -m http.server -d %s 8000, then http://localhost:8000/)",
                 report, report.parent)
    else:
        log.warning("report not written: %s is missing", report)


if __name__ == "__main__":
    main(*sys.argv[1:4])
