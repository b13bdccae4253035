"""The score_users job's argument handling (no Spark: configuration fails before it starts)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from interest_tracker.cli import EXIT_CONFIG_ERROR
from interest_tracker.config import load
from interest_tracker.scoring.config import ScoringConfig

REPO = Path(__file__).resolve().parents[1]


def _job():
    spec = importlib.util.spec_from_file_location("score_users", REPO / "jobs" / "score_users.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_config_loads_and_overrides_apply():
    import json

    cfg = load(ScoringConfig, REPO / "conf" / "score_demo.json", ["mode=full", "executor.device=gpu", "top_k=50"])
    shown = json.loads((REPO / "conf" / "score_demo.json").read_text())["show_users"]  # the demo's own choice
    assert (cfg.mode, cfg.executor.device, cfg.top_k, cfg.show_users) == ("full", "gpu", 50, shown)
    assert cfg.scorer == "auto"  # the shipped default: what validation chose (scoring/blend.py)


def test_bad_config_exits_with_config_error_before_spark(monkeypatch):
    job = _job()
    called = []
    monkeypatch.setattr(job, "main", lambda cfg, run_date: called.append(cfg))
    argv = ["--config", str(REPO / "conf" / "score_demo.json"), "--run-date", "2026-11-28"]
    assert job.cli(argv + ["--set", "executor.device=tpu"]) == EXIT_CONFIG_ERROR
    assert job.cli(argv + ["--set", "show_users=-2"]) == EXIT_CONFIG_ERROR
    assert job.cli(argv[:2] + ["--run-date", "28/11/2026"]) == EXIT_CONFIG_ERROR
    assert called == []
    assert job.cli(argv + ["--show-users", "2"]) == 0
    assert called[0].show_users == 2
