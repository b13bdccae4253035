"""Training and scoring against a real S3-compatible server (moto's server mode on 127.0.0.1).

The server is a separate process speaking the S3 HTTP protocol; the code under test
reaches it only through the standard AWS environment variables (``AWS_ENDPOINT_URL``,
credentials, region), exactly as it would reach AWS. Checkpoints and the model artifact
go to ``s3://``; the training data and the warehouse stay local (Spark's S3 connector
jars are not available offline, and the layout reads the artifact through pyarrow).
"""
from __future__ import annotations

import datetime as dt
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from interest_tracker.config import from_dict, to_dict
from interest_tracker.layout import ArtifactStore, CheckpointStore, SequencesDataset, fs
from interest_tracker.training.config import TrainConfig
from kill_helpers import train_until_killed

REPO = Path(__file__).resolve().parents[1]
RUN = dt.date(2026, 11, 28)
BUCKET = "interest-tracker-test"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}

pytestmark = pytest.mark.skipif(importlib.util.find_spec("moto") is None,
                                reason="moto[server] is not installed: run scripts/bootstrap_env.sh (make test-tools)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """A moto S3 server on a free 127.0.0.1 port, with the AWS variables pointing at it; stopped at the end."""
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    saved = {k: os.environ.get(k) for k in [*S3_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(S3_ENV, AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "moto server exited at start"
                assert time.monotonic() < deadline, "moto server did not start within 60 s"
                time.sleep(0.3)
        import pyarrow.fs as pafs

        pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True,
                          **{"access_key": "testing", "secret_key": "testing", "region": "us-east-1"}
                          ).create_dir(BUCKET)
        yield f"s3://{BUCKET}"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _cfg(dataset: Path, artifact_root: str, **kw) -> TrainConfig:
    base = dict(dataset=str(dataset), artifact_root=artifact_root,
                model_version="v1", batch_size=16, epochs=2, model={"hidden_size": 8, "embedding_dim": 8},
                log_every_steps=10, learning_rate=0.01, warmup_steps=0, loader="pyarrow", evaluate_test=False,
                loss="full", optimizer="adam")
    base.update(kw)
    return from_dict(TrainConfig, base)


def test_the_layout_filesystem_talks_to_the_s3_server(s3_server):
    url = fs.join(s3_server, "probe", "x.json")
    fs.write_json(url, {"a": 1})
    assert fs.read_json(url) == {"a": 1} and fs.is_file(url) and fs.list_names(fs.join(s3_server, "probe")) == ["x.json"]
    fs.delete(fs.join(s3_server, "probe"))
    assert not fs.exists(url)


def test_local_launcher_writes_checkpoint_and_artifact_to_s3(s3_server, training_dataset):
    from interest_tracker.model import load_model
    from interest_tracker.training.checkpoint import load_checkpoint
    from interest_tracker.training.launchers import launch

    root = fs.join(s3_server, "local")
    out = launch(_cfg(training_dataset, root))
    store = ArtifactStore(root)
    assert out["artifact"] == store.version_url("v1") and store.latest() == "v1"
    store.check_complete("v1")
    assert fs.is_file(store.file_url("v1", "learning_curves.png"))
    manifest, metrics = store.manifest("v1"), store.metrics("v1")
    info = SequencesDataset(str(training_dataset)).info()
    assert manifest["dataset_fingerprint"] == info["fingerprint"] and metrics["epochs_run"] == 2
    ckpt = load_checkpoint(store.checkpoint_dir("v1"))
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == metrics["global_step"]
    assert load_model(store.version_url("v1")).config.num_items == info["num_items"]


@pytest.mark.skipif(importlib.util.find_spec("horovod") is None,
                    reason="horovod is not installed: run scripts/build_horovod.sh (make env)")
def test_horovod_two_ranks_write_checkpoint_and_artifact_to_s3(spark, s3_server, training_dataset):
    from interest_tracker.training.launchers import launch

    root = fs.join(s3_server, "horovod")
    ckpt = fs.join(s3_server, "ckpt-horovod")
    out = launch(_cfg(training_dataset, root, launcher="horovod", num_proc=2, checkpoint_dir=ckpt, steps_per_epoch=6,
                      start_timeout_s=180), spark)
    assert out["world_size"] == 2 and out["param_digests"][0] == out["param_digests"][1]
    store = ArtifactStore(root)
    store.check_complete("v1")
    assert store.latest() == "v1" and store.metrics("v1")["global_step"] == 12
    assert CheckpointStore(ckpt).exists()


def test_training_killed_with_sigkill_resumes_from_s3(s3_server, training_dataset, tmp_path):
    from interest_tracker.training.checkpoint import load_checkpoint
    from interest_tracker.training.loop import train

    kw = dict(epochs=3, steps_per_epoch=120, batch_size=8, torch_threads=1)
    reference = train(to_dict(_cfg(training_dataset, str(tmp_path / "ref"), **kw)))

    root = fs.join(s3_server, "killed")
    cfg = _cfg(training_dataset, root, **kw)
    # the child inherits AWS_ENDPOINT_URL and the credentials
    train_until_killed(to_dict(cfg), tmp_path, "epoch 1 step 20/120")  # mid-way through the second epoch
    store = ArtifactStore(root)
    ckpt = load_checkpoint(store.checkpoint_dir("v1"))
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 120  # only the first epoch was saved, on S3
    assert store.latest() is None and not store.exists("v1")

    resumed = train(to_dict(cfg))
    assert resumed["metrics"]["global_step"] == reference["metrics"]["global_step"] == 360
    assert resumed["param_digest"] == reference["param_digest"]
    assert [h["valid"] for h in resumed["metrics"]["history"]] == [h["valid"] for h in reference["metrics"]["history"]]


def test_scoring_job_loads_the_artifact_from_s3(spark, s3_server, tmp_path):
    from test_scoring_support import build_artifact, make_events, scoring_config, write_events

    from interest_tracker.layout.warehouse import Warehouse
    from interest_tracker.scoring import tables as tb
    from interest_tracker.scoring.pipeline import score_run

    art_root = fs.join(s3_server, "scoring-artifacts")
    build_artifact(art_root)
    write_events(spark, tmp_path / "stage1", RUN, make_events(range(12), RUN, seed=4))
    cfg = scoring_config(tmp_path, tmp_path / "wh", mode="full", artifact_root=art_root, register_tables=False)
    result = score_run(spark, cfg, RUN)
    assert result.model_version == "v1" and result.users == 12
    manifest = Warehouse(str(tmp_path / "wh")).read_manifest(spark, RUN)
    assert manifest["model_version"] == "v1" and manifest["tables"][tb.INTEREST]["rows"] == 12
