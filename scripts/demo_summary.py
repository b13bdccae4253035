"""Print where the demo's outputs are, the stage-1 run report, and a few users' recommendations.

The recommendations are read with DuckDB straight from the Parquet files, to show that
a second engine reads the warehouse tables without Spark.
"""
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("demo")


def main(out: str, day: str) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = Path(out).resolve()
    report = json.loads((root / "stage1" / "reports" / f"run_date={day}" / "report.json").read_text())
    log.info("\n== stage-1 run report (%s)", root / "stage1" / "reports" / f"run_date={day}" / "report.json")
    log.info(json.dumps(report["counts"], indent=2))
    log.info("reconciled: %s", report["reconciled"])
    log.info("\n== outputs")
    for name, url in report["outputs"].items():
        log.info("  %-11s %s", name, url)
    log.info("  %-11s %s", "artifacts", root / "artifacts")
    log.info("  %-11s %s", "warehouse", root / "warehouse")
    import duckdb

    recs = root / "warehouse" / "user_recommendations"
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT user_id, list(item_id ORDER BY rank)[1:5] AS top5 "
        f"FROM read_parquet('{recs}/**/*.parquet', hive_partitioning = true) "
        f"GROUP BY user_id ORDER BY user_id LIMIT 5").fetchall()
    log.info("\n== a few users' top-5 recommendations (read with DuckDB from %s)", recs)
    for user, top in rows:
        log.info("  %s: %s", user, ", ".join(top))
    report_html = sorted((root / "report").glob("**/*.html"))
    log.info("\n== pipeline report: %s", report_html[0] if report_html else "(not written)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
