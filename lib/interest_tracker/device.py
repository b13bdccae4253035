"""Which torch device a process runs on: one decision for training ranks and scoring workers.

Why one function: the rule "which GPU is mine" depends on who started the process
(a horovod rank, a TorchDistributor rank, a Spark Python worker, a plain local run)
and on what Spark assigned, and getting it wrong is silent (every rank piles onto
``cuda:0``, or a scoring task uses a GPU that Spark gave to another task). The rule
lives here once, as a pure function of plain inputs (:func:`select_device`), so it is
unit-tested with fake device lists on machines without a GPU; :func:`resolve_device`
gathers those inputs from torch and the environment.

This module imports neither pyspark nor the model: callers that run inside a Spark
task pass the task's GPU addresses (``TaskContext.resources()["gpu"].addresses``).

Rules (``requested`` is ``"auto" | "cuda" | "cpu"``):

- ``cpu``: always ``cpu``.
- ``auto``: ``cpu`` when no CUDA device is visible, else as ``cuda``.
- ``cuda`` with role

  - ``local``: ``cuda:0``;
  - ``horovod``: ``cuda:{hvd.local_rank()}``: one GPU per rank on each host;
  - ``torch-distributor``: ``cuda:{LOCAL_RANK}``: TorchDistributor(use_gpu=True) sets
    ``CUDA_VISIBLE_DEVICES`` to the GPUs Spark gave the task, so the rank's local index
    is its GPU;
  - ``spark-task`` (a scoring worker): the first GPU address Spark assigned to the task,
    translated through ``CUDA_VISIBLE_DEVICES`` when that is set. No address is an
    error, never a silent ``cuda:0``: two tasks would share one GPU.

  A requested GPU that is not there is an error that says what to change.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

REQUESTS = ("auto", "cuda", "cpu")
ROLES = ("local", "horovod", "torch-distributor", "spark-task")
PRECISIONS = ("fp32", "bf16", "fp16")


class DeviceError(RuntimeError):
    """A requested device cannot be used; the message says which setting to change."""


def select_device(requested: str, role: str, *, cuda_count: int, local_rank: int = 0,
                  task_gpus: Optional[Sequence[str]] = None,
                  visible_devices: Optional[str] = None) -> str:
    """The device string (``"cpu"`` or ``"cuda:N"``) for this process.

    ``cuda_count`` is how many CUDA devices torch sees (after ``CUDA_VISIBLE_DEVICES``);
    ``task_gpus`` the GPU addresses Spark assigned to the current task (role
    ``spark-task``); ``visible_devices`` the value of ``CUDA_VISIBLE_DEVICES``.
    """
    if requested not in REQUESTS:
        raise DeviceError(f"device must be one of {REQUESTS}, got {requested!r}")
    if role not in ROLES:
        raise DeviceError(f"unknown device role {role!r}; one of {ROLES}")
    if requested == "cpu":
        return "cpu"
    if cuda_count <= 0:
        if requested == "auto":
            return "cpu"
        raise DeviceError(f"device='cuda' but torch sees no CUDA device in this {role} process "
                          f"(CUDA_VISIBLE_DEVICES={visible_devices!r}); install a CUDA build of torch on the "
                          "workers, give the job GPUs, or set device='cpu' (or 'auto')")
    if role == "local":
        index = 0
    elif role in ("horovod", "torch-distributor"):
        index = int(local_rank)
        if index < 0 or index >= cuda_count:
            raise DeviceError(f"{role} rank with local rank {index} but only {cuda_count} CUDA device(s) are "
                              "visible on its host: run at most one rank per GPU per host (lower num_proc, or "
                              "give each executor as many GPUs as it runs ranks)")
    else:  # spark-task
        addresses = [str(a) for a in (task_gpus or [])]
        if not addresses:
            raise DeviceError("a GPU was requested but Spark assigned no GPU to this task: set "
                              "spark.executor.resource.gpu.amount, spark.task.resource.gpu.amount and "
                              "spark.executor.resource.gpu.discoveryScript=cluster/get_gpus_resources.sh on "
                              "spark-submit, or set executor.device=cpu")
        index = _visible_index(addresses[0], visible_devices)
        if index >= cuda_count:
            raise DeviceError(f"Spark assigned GPU address {addresses[0]!r} to this task but torch sees only "
                              f"{cuda_count} CUDA device(s) (CUDA_VISIBLE_DEVICES={visible_devices!r}); check the "
                              "executor's GPU discovery script")
    return f"cuda:{index}"


def _visible_index(address: str, visible_devices: Optional[str]) -> int:
    """Torch's index of the physical GPU ``address`` (Spark's addresses are physical ids)."""
    if visible_devices:
        visible = [v.strip() for v in visible_devices.split(",") if v.strip()]
        if address in visible:
            return visible.index(address)
        raise DeviceError(f"Spark assigned GPU {address!r} but CUDA_VISIBLE_DEVICES={visible_devices!r} hides it; "
                          "unset CUDA_VISIBLE_DEVICES on the executors or make the discovery script agree")
    try:
        return int(address)
    except ValueError as e:
        raise DeviceError(f"Spark GPU address {address!r} is not a CUDA index; the discovery script must "
                          "print numeric ids (nvidia-smi --query-gpu=index)") from e


def resolve_device(requested: str, role: str, *, local_rank: int = 0,
                   task_gpus: Optional[Sequence[str]] = None):
    """:func:`select_device` with torch's real device count; returns a ``torch.device`` and makes
    it the current CUDA device (so NCCL and ``.cuda()`` calls use it)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    name = select_device(requested, role, cuda_count=count, local_rank=local_rank, task_gpus=task_gpus,
                         visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"))
    device = torch.device(name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def autocast_dtype(precision: str, device_type: str):
    """The autocast dtype for ``precision`` on ``device_type``, or None for fp32.

    fp16 is CUDA-only (it needs a gradient scaler and CPUs have no fast fp16 path);
    bf16 works on both.
    """
    import torch

    if precision not in PRECISIONS:
        raise DeviceError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "fp16" and device_type != "cuda":
        raise DeviceError("precision='fp16' needs a CUDA device; use precision='bf16' on CPU or 'fp32'")
    return torch.float16 if precision == "fp16" else torch.bfloat16
