"""Device selection (interest_tracker.device) with fake device lists: which GPU each kind of
process takes, and the errors that replace silent fallbacks. Runs on CPU-only machines."""
from __future__ import annotations

import pytest

from interest_tracker.config import ConfigError, from_dict
from interest_tracker.device import DeviceError, autocast_dtype, resolve_device, select_device
from interest_tracker.training.config import TrainConfig


def test_cpu_is_always_cpu_and_auto_follows_what_is_there():
    for role in ("local", "horovod", "torch-distributor", "spark-task"):
        assert select_device("cpu", role, cuda_count=8, local_rank=3, task_gpus=["5"]) == "cpu"
        assert select_device("auto", role, cuda_count=0, local_rank=1) == "cpu"
    assert select_device("auto", "local", cuda_count=2) == "cuda:0"
    assert select_device("auto", "horovod", cuda_count=4, local_rank=2) == "cuda:2"


def test_each_launcher_takes_its_own_gpu():
    assert select_device("cuda", "local", cuda_count=4) == "cuda:0"
    # horovod: one GPU per rank on each host, by hvd.local_rank()
    assert [select_device("cuda", "horovod", cuda_count=4, local_rank=r) for r in range(4)] == \
        ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    # TorchDistributor narrows CUDA_VISIBLE_DEVICES to the task's GPU: the rank's local index is its GPU
    assert select_device("cuda", "torch-distributor", cuda_count=1, local_rank=0, visible_devices="3") == "cuda:0"
    # a scoring task: the GPU Spark assigned, not cuda:0
    assert select_device("cuda", "spark-task", cuda_count=4, task_gpus=["2"]) == "cuda:2"
    # ... translated when the executor already restricts the visible GPUs (addresses are physical ids)
    assert select_device("cuda", "spark-task", cuda_count=2, task_gpus=["6"], visible_devices="4,6") == "cuda:1"


def test_a_missing_gpu_is_an_error_that_names_the_fix():
    with pytest.raises(DeviceError, match="sees no CUDA device.*set device='cpu'"):
        select_device("cuda", "local", cuda_count=0)
    with pytest.raises(DeviceError, match="Spark assigned no GPU to this task.*spark.task.resource.gpu.amount"):
        select_device("cuda", "spark-task", cuda_count=4, task_gpus=[])
    with pytest.raises(DeviceError, match="Spark assigned no GPU"):
        select_device("cuda", "spark-task", cuda_count=4, task_gpus=None)
    with pytest.raises(DeviceError, match="local rank 2 but only 2 CUDA device"):
        select_device("cuda", "horovod", cuda_count=2, local_rank=2)
    with pytest.raises(DeviceError, match="torch sees only 2 CUDA"):
        select_device("cuda", "spark-task", cuda_count=2, task_gpus=["3"])
    with pytest.raises(DeviceError, match="hides it"):
        select_device("cuda", "spark-task", cuda_count=2, task_gpus=["1"], visible_devices="4,6")
    with pytest.raises(DeviceError, match="must be one of"):
        select_device("gpu", "local", cuda_count=1)


def test_resolve_device_on_this_machine():
    import torch

    assert resolve_device("cpu", "horovod", local_rank=5) == torch.device("cpu")
    expected = torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto", "local") == expected
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            resolve_device("cuda", "local")


def test_precision_settings():
    import torch

    assert autocast_dtype("fp32", "cpu") is None
    assert autocast_dtype("bf16", "cpu") == torch.bfloat16
    assert autocast_dtype("fp16", "cuda") == torch.float16
    with pytest.raises(DeviceError, match="needs a CUDA device"):
        autocast_dtype("fp16", "cpu")
    good = {"dataset": "d", "artifact_root": "a"}
    assert from_dict(TrainConfig, good).device == "auto" and from_dict(TrainConfig, good).precision == "fp32"
    with pytest.raises(ConfigError, match="'device' must be"):
        from_dict(TrainConfig, {**good, "device": "gpu"})
    with pytest.raises(ConfigError, match="fp16.*needs a GPU"):
        from_dict(TrainConfig, {**good, "device": "cpu", "precision": "fp16"})


def test_torch_distributor_gets_use_gpu_from_the_device_setting(spark):
    from interest_tracker.training.launchers import torch_distributor_gpu

    assert torch_distributor_gpu(spark, "cpu") is False
    assert torch_distributor_gpu(spark, "auto") is False  # this session gives tasks no GPU
    with pytest.raises(ConfigError, match="spark.driver.resource.gpu.amount"):
        torch_distributor_gpu(spark, "cuda")


def test_scoring_refuses_a_task_without_a_gpu(spark):
    """A GPU scoring task that Spark gave no GPU fails with the fix, instead of using cuda:0."""
    from interest_tracker.scoring.config import ExecutorConfig
    from interest_tracker.scoring.predict import _device

    def probe(_):
        try:
            return [str(_device(ExecutorConfig(device="gpu")))]
        except DeviceError as e:
            return [f"error: {e}"]

    out = spark.sparkContext.parallelize([0], 1).mapPartitions(probe).collect()
    assert len(out) == 1 and out[0].startswith("error:")
    assert "Spark assigned no GPU" in out[0] or "no CUDA device" in out[0]
    assert str(_device(ExecutorConfig(device="cpu"))) == "cpu"
