"""What the training loop needs from a distributed backend, for each launcher.

The loop is written once against ``Comm``: rank/size, wrapping the model and optimizer
so gradients are averaged, and a few collectives (a scalar allreduce, broadcasting a
small object such as the early-stopping decision), and the rank's torch ``device``
(picked by :func:`interest_tracker.device.resolve_device` from the ``device`` setting,
the launcher and the rank's local rank). ``local`` is one process; ``horovod`` uses
``hvd.DistributedOptimizer`` (NCCL for GPU tensors, so horovod must be built with
``HOROVOD_GPU_OPERATIONS=NCCL`` for GPU training) and broadcasts rank 0's initial
parameters and optimizer state; ``torch-distributor`` uses DDP over Gloo (CPU) or NCCL
(GPU), with the rendezvous environment that TorchDistributor/torchrun sets.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


class LocalComm:
    name = "local"
    rank = 0
    size = 1
    local_rank = 0

    def __init__(self, device_request: str = "cpu"):
        from ..device import resolve_device

        self.device = resolve_device(device_request, "local")

    def wrap(self, module, optimizer):
        return module, optimizer

    def allreduce_sum(self, value: float) -> float:
        return float(value)

    def broadcast_object(self, obj):
        return obj

    def barrier(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class HorovodComm:
    name = "horovod"

    def __init__(self, device_request: str = "cpu"):
        import horovod.torch as hvd

        from ..device import DeviceError, resolve_device

        hvd.init()
        self.hvd = hvd
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        self._calls = 0
        self.device = resolve_device(device_request, "horovod", local_rank=self.local_rank)
        if self.device.type == "cuda" and self.size > 1 and not hvd.nccl_built():
            raise DeviceError("horovod was built without NCCL, so it cannot average GPU gradients: rebuild it "
                              "with HOROVOD_GPU_OPERATIONS=NCCL (scripts/build_horovod.sh on a CUDA machine), "
                              "or set device=cpu, or launcher=torch-distributor")

    def wrap(self, module, optimizer):
        hvd = self.hvd
        hvd.broadcast_parameters(module.state_dict(), root_rank=0)
        hvd.broadcast_optimizer_state(optimizer, root_rank=0)
        optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=module.named_parameters(),
                                             op=hvd.Average)
        return module, optimizer

    def allreduce_sum(self, value: float) -> float:
        import torch

        self._calls += 1
        t = torch.tensor([float(value)], dtype=torch.float64)
        return float(self.hvd.allreduce(t, op=self.hvd.Sum, name=f"it.sum.{self._calls}")[0])

    def broadcast_object(self, obj):
        # An explicit name: horovod defaults it to type(obj).__name__, which differs between
        # rank 0 (the object) and the others (None) and stalls the collective forever.
        self._calls += 1
        return self.hvd.broadcast_object(obj, root_rank=0, name=f"it.bcast.{self._calls}")

    def barrier(self) -> None:
        self.hvd.barrier() if hasattr(self.hvd, "barrier") else self.hvd.allreduce(__import__("torch").zeros(1))

    def shutdown(self) -> None:
        self.hvd.shutdown()


class TorchDistComm:
    name = "torch-distributor"

    def __init__(self, device_request: str = "cpu"):
        import torch.distributed as dist

        from ..device import resolve_device

        missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
        if missing:
            raise RuntimeError(f"torch.distributed rendezvous variables {missing} are not set: run this "
                               "through launcher='torch-distributor' (TorchDistributor/torchrun)")
        self.local_rank = int(os.environ.get("LOCAL_RANK", 0))
        # The device first: NCCL binds the process group to the current CUDA device.
        self.device = resolve_device(device_request, "torch-distributor", local_rank=self.local_rank)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.dist = dist
        self.rank, self.size = dist.get_rank(), dist.get_world_size()

    def wrap(self, module, optimizer):
        from torch.nn.parallel import DistributedDataParallel as DDP

        # DDP broadcasts rank 0's parameters at construction; optimizer state is created lazily
        # (identical on all ranks) or loaded from the same checkpoint file by every rank.
        if self.device.type == "cuda":
            return DDP(module, device_ids=[self.device.index], output_device=self.device.index), optimizer
        return DDP(module), optimizer

    def allreduce_sum(self, value: float) -> float:
        import torch

        # NCCL reduces only CUDA tensors; Gloo only CPU ones: the rank's device fits its backend.
        t = torch.tensor([float(value)], dtype=torch.float64, device=self.device)
        self.dist.all_reduce(t)
        return float(t[0])

    def broadcast_object(self, obj):
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        self.dist.barrier()

    def shutdown(self) -> None:
        self.dist.destroy_process_group()


def make_comm(launcher: str, device_request: str = "cpu"):
    """The backend for ``launcher``, with this rank's device resolved from ``device_request``
    (``auto`` | ``cuda`` | ``cpu``)."""
    if launcher == "local":
        return LocalComm(device_request)
    if launcher == "horovod":
        return HorovodComm(device_request)
    if launcher == "torch-distributor":
        return TorchDistComm(device_request)
    raise ValueError(f"unknown launcher {launcher!r}; use local, horovod or torch-distributor")
