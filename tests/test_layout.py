"""The layout package without Spark: the pyarrow filesystem layer, the artifact store, checkpoints."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from interest_tracker.layout import ArtifactNotFound, ArtifactStore, CheckpointStore, SequencesDataset, fs

REPO = Path(__file__).resolve().parents[1]


def test_paths_become_file_urls_and_urls_pass_through(tmp_path):
    assert fs.to_url(str(tmp_path)) == f"file://{tmp_path}"
    assert fs.to_url("file:/x/y") == "file:///x/y"
    assert fs.to_url("s3://b/k") == "s3://b/k"
    assert fs.join("s3://b/", "/a/", "c") == "s3://b/a/c"
    assert fs.local_path(f"file://{tmp_path}/a") == f"{tmp_path}/a" and fs.local_path("s3://b/a") is None
    assert fs.is_object_store("s3a://b/a") and not fs.is_object_store("hdfs://nn/a")


def test_small_files_are_written_whole_and_read_back(tmp_path):
    url = fs.join(fs.to_url(str(tmp_path)), "d", "e", "f.json")
    fs.write_json(url, {"x": [1, 2]})
    fs.write_json(url, {"x": [3]})  # replaced, not appended
    assert fs.read_json(url) == {"x": [3]}
    assert fs.list_names(fs.join(fs.to_url(str(tmp_path)), "d", "e")) == ["f.json"]  # no temp file left
    fs.delete(fs.join(fs.to_url(str(tmp_path)), "d"))
    assert not fs.exists(url) and fs.list_names(str(tmp_path / "d")) == []
    with pytest.raises(FileNotFoundError, match="f.json not found"):
        fs.read_bytes(url)


def test_an_unknown_scheme_names_what_is_supported():
    with pytest.raises(ValueError, match="supported: file://, hdfs://, s3://"):
        fs.resolve("ftp://host/x")


def test_artifact_store_publishes_whole_versions_and_moves_latest_last(tmp_path):
    store = ArtifactStore(str(tmp_path / "art"))
    with pytest.raises(ArtifactNotFound, match="train a model first"):
        store.resolve(None)
    url = store.write("v1", {"weights.pt": b"w1", "model_config.json": b"{}", "vocabulary.parquet": b"p"},
                      {"model_version": "v1"}, {"mrr@20": 0.5})
    assert url == f"file://{tmp_path}/art/v1" and store.latest() == "v1" and store.resolve(None) == "v1"
    store.check_complete("v1")
    assert store.metrics("v1") == {"mrr@20": 0.5} and store.read_bytes("v1", "weights.pt") == b"w1"
    store.write("v1", {"weights.pt": b"w2"}, {"model_version": "v1"}, {})  # rewriting replaces the whole version
    assert sorted(fs.list_names(store.version_url("v1"))) == ["artifact.json", "metrics.json", "weights.pt"]
    assert sorted(fs.list_names(store.root)) == ["_LATEST", "v1"]  # no staging or old copies left
    with pytest.raises(ArtifactNotFound, match="no model_config.json"):
        store.check_complete("v1")
    with pytest.raises(ArtifactNotFound, match="not a complete artifact"):
        store.set_latest("v9")
    with pytest.raises(ValueError, match="plain name"):
        store.write("_x", {}, {}, {})


def test_checkpoint_store_round_trips_bytes(tmp_path):
    store = CheckpointStore(str(tmp_path / "ck"))
    assert store.read() is None and not store.exists()
    store.write(b"abc")
    store.write(b"defg")
    assert store.read() == b"defg" and fs.list_names(store.url) == ["checkpoint.pt"]


def test_sequences_dataset_names_its_parts_and_explains_a_missing_info(tmp_path):
    ds = SequencesDataset(str(tmp_path / "out" / "sequences" / "run_date=2026-11-28"))
    assert ds.split("valid") == f"file://{tmp_path}/out/sequences/run_date=2026-11-28/valid"
    assert ds.output_root == f"file://{tmp_path}/out"
    assert ds.vocabulary_url(1) is None
    with pytest.raises(FileNotFoundError, match="run jobs/prepare_events.py first"):
        ds.info()


def test_the_layout_imports_no_stage_and_no_torch():
    code = ("import sys, interest_tracker.layout, interest_tracker.layout.stage1, interest_tracker.layout.artifact; "
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('interest_tracker.prepare', "
            "'interest_tracker.training', 'interest_tracker.scoring', 'pyspark'))]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "lib")})
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_module_outside_the_layout_builds_hand_off_paths_or_reads_pointers():
    """The grep of issue 8: ``_LATEST``, ``dataset_info.json`` and ``.replace("file://"`` only in layout/."""
    offenders = []
    for path in sorted((REPO / "lib").rglob("*.py")) + sorted((REPO / "bench").rglob("*.py")):
        if "layout" in path.parts:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if ('"_LATEST"' in code or "'_LATEST'" in code or '/ "dataset_info.json"' in code
                    or '"dataset_info.json")' in code or 'replace("file://"' in code):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []
