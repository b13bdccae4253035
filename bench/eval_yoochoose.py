"""Real-data evaluation on yoochoose-100k with the session-rec / GRU4Rec protocol, through the jobs.

    .venv/bin/python bench/eval_yoochoose.py --stage tune  [--set key=value ...]
    .venv/bin/python bench/eval_yoochoose.py --stage final [--set key=value ...]

Nothing here builds windows or trains on its own: the script runs the same three jobs a
user runs on their own logs (docs/real-data.md), as subprocesses, and reads the figures
from their outputs:

1. ``jobs/import_logs.py --format session-rec`` on ``train_full`` and ``test``;
2. ``jobs/prepare_events.py --config conf/prepare_yoochoose.json``: stage 1 splits whole
   sessions at the session-rec cutoffs, so train/valid/test = train_tr/train_valid/test.
   The ``final`` stage sets ``sequences.valid_start`` to the test cutoff: the valid split
   is then empty and train = train_full, as the protocol's final run wants;
3. ``jobs/train_model.py --config conf/train_yoochoose.json`` (the shipped, chosen
   config): ``tune`` early-stops on train_valid and never scores test; ``final`` trains
   the chosen number of epochs without validation and scores the test split once.

The model's figures and the baselines' come from the artifact's ``metrics.json`` (the
baselines once the training job writes them; until then this script scores popularity
and transitions with the same harness on the job's windows and says so). The ``final``
stage also scores the model on the 99-session subset that the four published peer lists
cover (387 points). Protocol checks: test must hold exactly 10,152 prediction points.
Writes ``<out>/results_<stage>.json``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from interest_tracker.layout import ArtifactStore, SequencesDataset, Stage1Layout, fs  # noqa: E402
from interest_tracker.logs import setup_logging  # noqa: E402

log = logging.getLogger("eval_yoochoose")
DATA = REPO.parent / "shared" / "data" / "yoochoose-100k"
RUN_DATE = "2014-04-08"
TEST_START = "2014-04-07T00:45:00Z"  # conf/prepare_yoochoose.json's test_start
EXPECTED_TEST_POINTS = 10152
PEERS = ("ar", "sr", "vsknn", "gru4rec")
REPORT = ("recall@20", "mrr@20", "recall@10", "ndcg@10")


def job(name: str, args: list[str]) -> float:
    """Run ``jobs/<name>.py`` as a user would (local mode); raise on a non-zero exit."""
    cmd = [sys.executable, str(REPO / "jobs" / f"{name}.py"), "--run-date", RUN_DATE, *args]
    log.info("$ %s", " ".join(cmd[1:]))
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    t = time.perf_counter()
    rc = subprocess.call(cmd, cwd=REPO, env=env)
    if rc != 0:
        raise RuntimeError(f"jobs/{name}.py exited {rc}")
    return time.perf_counter() - t


def prepare(out: Path, stage: str, data: Path, prepare_overrides: list[str]) -> Path:
    """Import + stage 1; returns the sequences directory for RUN_DATE."""
    raw = out / "raw"
    for part in ("train_full", "test"):
        if not (raw / f"part={part}").exists():
            job("import_logs", ["--format", "session-rec", "--input", str(data / f"yoochoose-clicks-100k_{part}.txt"),
                                "--out", str(raw / f"part={part}")])
    tag = "".join(f"_{o.replace('.', '-').replace('=', '-')}" for o in prepare_overrides)
    root = out / f"prepared_{stage}{tag}"
    seq = Path(fs.local_path(Stage1Layout(str(root), dt.date.fromisoformat(str(RUN_DATE))).sequences))
    if not SequencesDataset(str(seq)).has_info():
        sets = [f"input.path={raw}", f"output_root={root}", *prepare_overrides]
        if stage == "final":
            sets.append(f"sequences.valid_start={TEST_START}")  # no valid split: train = train_full
        job("prepare_events", ["--config", str(REPO / "conf" / "prepare_yoochoose.json"),
                               *[a for s in sets for a in ("--set", s)]])
    else:
        log.info("reusing stage 1's output in %s (delete it to prepare again)", root)
    return seq


def fmt(m: dict) -> str:
    return " ".join(f"{k}={m[k]:.4f}" for k in REPORT) + f" points={m['points']}"


def table(results: dict) -> str:
    lines = ["| model | split | Recall@20 | MRR@20 | Recall@10 | NDCG@10 | points |", "|---|---|---|---|---|---|---|"]
    for key, m in results.items():
        name, split = key.split("/", 1)
        lines.append(f"| {name} | {split} | " + " | ".join(f"{m[k]:.4f}" for k in REPORT) + f" | {m['points']} |")
    return "\n".join(lines)


def metrics_baselines(metrics: dict, split: str) -> dict:
    """Baselines the training job wrote into metrics.json, as ``{"<name>/<split>": metrics}``.

    Accepts ``metrics["baselines"][split][name]`` and ``metrics["baselines"][name][split]``.
    """
    base = metrics.get("baselines") or {}
    out = {}
    for a, inner in base.items():
        if not isinstance(inner, dict):
            continue
        if a == split:
            out.update({f"{n}/{split}": m for n, m in inner.items() if isinstance(m, dict) and "points" in m})
        elif isinstance(inner.get(split), dict) and "points" in inner[split]:
            out[f"{a}/{split}"] = inner[split]
    return out


def harness_baselines(seq: Path, split: str, stride: int, keep: set | None = None) -> dict:
    """Popularity and transitions on the job's windows, through the same harness as the model."""
    from interest_tracker.evaluation.baselines import PopularityBaseline, TransitionBaseline, training_pairs
    from interest_tracker.evaluation.harness import evaluate
    from interest_tracker.training.loaders import read_split

    info = SequencesDataset(str(seq)).info()
    src, dst = training_pairs(read_split(str(seq / "train"), 4096, fields=("input_items", "target_items", "target_mask")))
    out = {}
    for name, scorer in (("popularity", PopularityBaseline(info["num_items"], dst)),
                         ("transitions", TransitionBaseline(info["num_items"], src, dst))):
        out[f"{name}/{split}"], _ = evaluate(scorer, read_split(str(seq / split), 512), stride=stride, keep=keep)
    return out


def peer_subset(seq: Path, artifact: str, stride: int) -> dict:
    """Model, baselines and the four peer lists on the points the peer lists cover (99 sessions)."""
    import numpy as np
    import pandas as pd

    from interest_tracker.evaluation.harness import evaluate, model_scorer
    from interest_tracker.evaluation.metrics import DEFAULT_KS
    from interest_tracker.evaluation.peers import load_peer_lists, score_peer_lists, session_items
    from interest_tracker.model import load_model
    from interest_tracker.training.loaders import read_split

    test = pd.read_csv(DATA / "yoochoose-clicks-100k_test.txt", sep="\t",
                       dtype={"SessionId": np.int64, "ItemId": np.int64, "Time": np.float64})
    sessions = session_items(test)
    results, keys = {}, None
    for peer in PEERS:
        res, per = score_peer_lists(load_peer_lists(DATA / "peer-recommendations" / f"{peer}.csv"), sessions, DEFAULT_KS)
        if keys is not None and set(per) != keys:
            raise RuntimeError(f"peer {peer} covers different points than {PEERS[0]}")
        keys = set(per)
        results[f"{peer}/test-99"] = res
    model = load_model(artifact)
    model.eval()
    results["model/test-99"], _ = evaluate(model_scorer(model), read_split(str(seq / "test"), 512), stride=stride,
                                           keep=keys)
    for k, v in harness_baselines(seq, "test", stride, keep=keys).items():
        results[k.replace("/test", "/test-99")] = v
    return results


def rescore(seq: Path, artifact: str, split: str, stride: int) -> dict:
    """An existing artifact scored on another stage-1 output's split (same vocabulary checked):
    how much the evaluation windows alone change the figures (e.g. L=20 vs L=80)."""
    import pandas as pd

    from interest_tracker.evaluation.harness import evaluate, model_scorer
    from interest_tracker.model import load_model
    from interest_tracker.training.loaders import read_split

    vocab_dir = seq.parents[1] / "vocabulary"
    ours = pd.read_parquet(next(vocab_dir.glob("version=*")))[["item_id", "item_index"]].sort_values("item_index")
    theirs = pd.read_parquet(Path(artifact) / "vocabulary.parquet")[["item_id", "item_index"]].sort_values("item_index")
    if not ours.reset_index(drop=True).equals(theirs.reset_index(drop=True)):
        raise RuntimeError(f"{artifact} was trained with another vocabulary than {vocab_dir}")
    model = load_model(artifact)
    model.eval()
    results = {f"model/{split}": evaluate(model_scorer(model), read_split(str(seq / split), 512))[0]}
    results.update(harness_baselines(seq, split, stride))
    print(f"\n## {Path(artifact).name} rescored on {seq} ({split})")
    print(table(results))
    return {"artifact": artifact, "dataset": str(seq), "results": results}


def run(stage: str, out: Path, overrides: list[str], prepare_overrides: list[str], data: Path,
        prepare_only: bool = False, score_artifact: str | None = None) -> dict:
    seq = prepare(out, stage, data, prepare_overrides)
    info = SequencesDataset(str(seq)).info()
    log.info("stage 1: rows=%s targets=%s", info["rows"], info["targets"])
    if info["targets"]["test"] != EXPECTED_TEST_POINTS:
        raise RuntimeError(f"test: {info['targets']['test']} prediction points, the protocol has "
                           f"{EXPECTED_TEST_POINTS}: stage 1's split does not follow the protocol")
    if prepare_only:
        return {"stage": stage, "dataset": str(seq), "dataset_targets": info["targets"]}
    if score_artifact:
        return rescore(seq, score_artifact, "valid" if stage == "tune" else "test", info["eval_stride"])
    # The pid too: two tuning runs started in the same second must not share a version (and its checkpoints).
    version = f"{stage}-{time.strftime('%H%M%S')}-{os.getpid()}"
    sets = [f"dataset={seq}", f"artifact_root={out / 'artifacts'}", f"model_version={version}", "resume=false"]
    if stage == "tune":
        sets.append("evaluate_test=false")  # the test split is scored only by the final stage
    else:
        sets += ["evaluate_test=true", "keep_best=false"]
    sets += overrides
    train_s = job("train_model", ["--config", str(REPO / "conf" / "train_yoochoose.json"),
                                  *[a for s in sets for a in ("--set", s)]])
    store = ArtifactStore(str(out / "artifacts"))
    artifact = Path(fs.local_path(store.version_url(version)))
    metrics = store.metrics(version)
    split = "valid" if stage == "tune" else "test"
    results = {f"model/{split}": metrics[split]}
    baselines = metrics_baselines(metrics, split)
    source = "metrics.json"
    if not baselines:
        source = "this script (the training job's metrics.json has no baselines yet)"
        baselines = harness_baselines(seq, split, info["eval_stride"])
    results.update(baselines)
    hist = metrics["history"]
    report = {"stage": stage, "artifact": str(artifact), "overrides": overrides, "prepare_overrides": prepare_overrides,
              "dataset_targets": info["targets"], "train_job_seconds": train_s,
              "train_seconds_in_epochs": sum(h["seconds"] for h in hist), "epochs_run": len(hist),
              "best_epoch": metrics["best_epoch"], "weights": metrics.get("weights"),
              "valid_per_epoch": [h["valid"] for h in hist], "train_loss_per_epoch": [h["train_loss"] for h in hist],
              "results": results, "baselines_from": source}
    print(f"\n## yoochoose-100k, stage {stage} ({artifact.name}): {len(hist)} epochs, best epoch "
          f"{metrics['best_epoch']}, {report['train_seconds_in_epochs']:.1f}s in epochs, job {train_s:.1f}s; "
          f"baselines from {source}")
    print(table(results))
    if stage == "final":
        report["results_99_sessions"] = peer_subset(seq, str(artifact), info["eval_stride"])
        print("\n### 99-session subset (peer lists' points)")
        print(table(report["results_99_sessions"]))
    (out / f"results_{stage}_{version}.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--stage", choices=["tune", "final"], required=True)
    p.add_argument("--out", default="/tmp/yoochoose-eval", help="scratch directory (outside the repo)")
    p.add_argument("--data", default=str(DATA), help="directory with the yoochoose-clicks-100k_*.txt files")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of conf/train_yoochoose.json (jobs/train_model.py --set)")
    p.add_argument("--prepare-set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of conf/prepare_yoochoose.json (applies when stage 1 runs)")
    p.add_argument("--prepare-only", action="store_true", help="import and run stage 1, do not train")
    p.add_argument("--score-artifact", metavar="DIR", help="do not train: score this artifact on the valid "
                   "split of the stage-1 output that --prepare-set selects (--stage tune only)")
    args = p.parse_args()
    if args.score_artifact and args.stage != "tune":
        p.error("--score-artifact scores validation only (--stage tune): the test split is scored once, by a final run")
    setup_logging("INFO")
    run(args.stage, Path(args.out), args.set, args.prepare_set, Path(args.data), args.prepare_only,
        args.score_artifact)
    return 0


if __name__ == "__main__":
    sys.exit(main())
