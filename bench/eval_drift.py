"""Published tables vs rules on logs that drift: prepare -> train -> score -> next-day eval.

    # ml-latest-small (read in place from ../shared/data), three cutoffs over its last three years:
    .venv/bin/python bench/eval_drift.py --source movielens --cutoffs 2016-03-01,2017-03-01,2018-03-01
    # synthetic logs with catalogue drift and returning users (conf/synthetic_drift.json):
    .venv/bin/python bench/eval_drift.py --source synthetic --cutoffs 2026-11-10
    # the same logs without drift (today's generator), for the "lose nothing" check:
    .venv/bin/python bench/eval_drift.py --source synthetic --synthetic-config conf/synthetic_nodrift.json \
        --cutoffs 2026-11-10 --work bench_output/drift_nodrift

For each cutoff C the run date is D = C - 1 day. Every stage runs through its job
(``python jobs/<job>.py``, local mode) with the configs ``conf/{prepare,train,score}_<source>_drift.json``;
stage 1 gets the WHOLE raw log and ``cleaning.max_future_days = 0``, so every event after
the end of D is rejected as TIME_OUT_OF_WINDOW and nothing from the future reaches the
model, its vocabulary or the scoring state. Then bench/eval_next_day.py judges the
published ``user_recommendations`` for D against the raw events from C on.

``--set-score key=value`` (repeatable) passes settings to the scoring job, e.g.
``--set-score scorer=blend`` where the scoring config has that key; likewise
``--set-train`` and ``--set-prepare``. Prints each cutoff's table and a summary line per
cutoff; writes ``<work>/summary.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import eval_next_day  # noqa: E402  (bench/ is not a package)

from interest_tracker.layout import ArtifactStore, Stage1Layout  # noqa: E402

log = logging.getLogger("eval_drift")
MOVIELENS = ROOT.parent / "shared" / "data" / "ml-latest-small"


def _run(step: str, argv: list[str], logs: Path) -> float:
    """Run one job as a user would; its output goes to <logs>/<step>.log. Returns seconds."""
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.perf_counter()
    with open(logs / f"{step}.log", "w") as out:
        rc = subprocess.call([sys.executable, *argv], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
    took = time.perf_counter() - start
    if rc != 0:
        tail = (logs / f"{step}.log").read_text().splitlines()[-30:]
        raise RuntimeError(f"{step} failed with exit code {rc} after {took:.0f} s:\n" + "\n".join(tail))
    log.info("%s: %.0f s", step, took)
    return took


def _sets(pairs: list[str]) -> list[str]:
    return [x for kv in pairs for x in ("--set", kv)]


def raw_log(args, work: Path) -> tuple[str, str]:
    """(path, format) of the raw-contract log, made once per work dir."""
    raw = work / "raw"
    if (raw / "_SUCCESS").exists() or (raw / "raw" / "_SUCCESS").exists():
        pass
    elif args.source == "movielens":
        ratings = Path(args.movielens_dir) / "ratings.csv"
        if not ratings.exists():
            raise FileNotFoundError(f"{ratings} not found; pass --movielens-dir (ml-latest-small, read in place)")
        _run("import", ["jobs/import_logs.py", "--run-date", args.end_date, "--format", "movielens-csv",
                        "--input", str(ratings), "--out", str(raw)], work / "logs")
    else:
        _run("generate", ["jobs/generate_synthetic.py", "--config", args.synthetic_config, "--run-date",
                          args.end_date, "--out", str(raw), "--format", "parquet"], work / "logs")
    if args.source == "synthetic":
        return str(raw / "raw"), "parquet"
    return str(raw), "parquet"


def run_cutoff(args, work: Path, raw: str, raw_format: str, cutoff: dt.date) -> dict:
    day = (cutoff - dt.timedelta(days=1)).isoformat()
    c = work / f"cutoff={cutoff.isoformat()}"
    if c.exists() and not (args.keep or args.eval_only):
        shutil.rmtree(c)
    logs = c / "logs"
    stage1, artifacts, warehouse = c / "stage1", c / "artifacts", c / "warehouse"
    conf = f"conf/{{}}_{args.source}_drift.json"
    scorers = [x for x in args.scorers.split(",") if x] if args.scorers else [None]
    houses = {x or "tables": c / (f"warehouse_{x}" if x else "warehouse") for x in scorers}
    secs = {} if args.eval_only else run_jobs(args, day, raw, raw_format, stage1, artifacts, houses, logs, conf)
    out = c / "eval.json"
    argv = ["--run-date", day, "--events", raw, "--events-format", raw_format,
            "--recent-days", args.recent_days, "--json", str(out)]
    for label, house in houses.items():
        argv += ["--recommendations", f"{label}={house}/user_recommendations"]
    if args.horizon_days:
        argv += ["--horizon-days", str(args.horizon_days)]
    start = time.perf_counter()
    eval_next_day.main(argv)
    secs["eval"] = time.perf_counter() - start
    res = json.loads(out.read_text())
    res["seconds"] = secs
    store = ArtifactStore(str(artifacts))
    metrics = store.metrics(store.resolve(None))
    res["train_metrics"] = {"best_epoch": metrics.get("best_epoch"), "valid": metrics.get("valid")}
    out.write_text(json.dumps(res, indent=2))
    return res


def run_jobs(args, day, raw, raw_format, stage1, artifacts, houses, logs, conf) -> dict:
    """prepare -> train -> score for run date ``day``, each through its job; seconds per step.
    The scoring job runs once per scorer (``houses``: label -> warehouse root)."""
    secs = {}
    secs["prepare"] = _run("prepare", ["jobs/prepare_events.py", "--config", conf.format("prepare"), "--run-date", day,
                                       "--set", f"input.path={raw}", "--set", f"input.format={raw_format}",
                                       "--set", f"output_root={stage1}", *_sets(args.set_prepare)], logs)
    secs["train"] = _run("train", ["jobs/train_model.py", "--config", conf.format("train"), "--run-date", day,
                                   "--set", f"dataset={Stage1Layout(str(stage1), dt.date.fromisoformat(day)).sequences}",
                                   "--set", f"artifact_root={artifacts}", *_sets(args.set_train)], logs)
    for label, house in houses.items():
        scorer = [] if label == "tables" else ["--set", f"scorer={label}"]
        secs[f"score_{label}"] = _run(
            f"score_{label}", ["jobs/score_users.py", "--config", conf.format("score"), "--run-date", day,
                               "--set", f"events_root={stage1}", "--set", f"artifact_root={artifacts}",
                               "--set", f"warehouse_root={house}", *scorer, *_sets(args.set_score)], logs)
    return secs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", choices=("movielens", "synthetic"), required=True)
    p.add_argument("--cutoffs", required=True, help="comma-separated cutoff dates C (the run date is C - 1)")
    p.add_argument("--work", default=None, help="default bench_output/drift_<source>")
    p.add_argument("--movielens-dir", default=str(MOVIELENS))
    p.add_argument("--synthetic-config", default="conf/synthetic_drift.json")
    p.add_argument("--end-date", default=None, help="import/generate run date (synthetic: the logs' last day)")
    p.add_argument("--recent-days", default="30,90")
    p.add_argument("--horizon-days", type=float, default=None)
    p.add_argument("--set-prepare", action="append", default=[])
    p.add_argument("--set-train", action="append", default=[])
    p.add_argument("--set-score", action="append", default=[])
    p.add_argument("--keep", action="store_true", help="do not clear a cutoff's previous outputs")
    p.add_argument("--scorers", default="", help="comma-separated scoring 'scorer' values to publish and compare "
                   "(one scoring run each, same model); default: the scoring config's")
    p.add_argument("--eval-only", action="store_true", help="only rerun the evaluation on existing tables")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.end_date = args.end_date or ("2018-09-30" if args.source == "movielens" else "2026-11-28")
    work = Path(args.work or ROOT / "bench_output" / f"drift_{args.source}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    raw, raw_format = raw_log(args, work)
    results = []
    for text in args.cutoffs.split(","):
        res = run_cutoff(args, work, raw, raw_format, dt.date.fromisoformat(text.strip()))
        results.append(res)
    k = results[0]["k"]
    print(f"# summary: {args.source}, scoring settings {args.set_score or 'from the config'}, "
          f"training settings {args.set_train or 'from the config'}")
    print(f"{'cutoff':<12} {'users':>6} {'table':>5} {f'HR@{k}':>8} {'best rule':<26} {f'rule HR@{k}':>11} {'ratio':>7} "
          f"{f'tables R@{k}':>12} {f'rule R@{k}':>10}")
    for r in results:
        b = r["rows"][r["best_rule"]]
        for label, t in r["rows"].items():
            if t["kind"] != "table":
                continue
            ratio = t[f"hr@{k}"] / b[f"hr@{k}"] if b[f"hr@{k}"] else float("inf")
            print(f"{r['cutoff'][:10]:<12} {r['returning_users']:>6} {label[:8]:>5} {t[f'hr@{k}']:>8.4f} "
                  f"{r['best_rule']:<26} {b[f'hr@{k}']:>11.4f} {ratio:>7.3f} {t[f'recall@{k}']:>12.4f} "
                  f"{b[f'recall@{k}']:>10.4f}")
    (work / "summary.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
