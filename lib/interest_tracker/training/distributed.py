"""What the training loop needs from a distributed backend, for each launcher.

The loop is written once against ``Comm``: rank/size, wrapping the model and optimizer
so gradients are averaged, and a few collectives (a scalar allreduce, broadcasting a
small object such as the early-stopping decision), and the rank's torch ``device``
(picked by :func:`interest_tracker.device.resolve_device` from the ``device`` setting,
the launcher and the rank's local rank). ``local`` is one process; ``horovod``
averages the gradients with one allreduce per step (``FlatAllreduceOptimizer``; NCCL for
GPU tensors, so horovod must be built with ``HOROVOD_GPU_OPERATIONS=NCCL`` for GPU
training) and broadcasts rank 0's initial parameters and optimizer state;
``torch-distributor`` uses DDP over Gloo (CPU) or NCCL (GPU), with the rendezvous
environment that TorchDistributor/torchrun sets.
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
        return module, FlatAllreduceOptimizer(optimizer, module.parameters(), hvd)

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


class FlatAllreduceOptimizer:
    """Horovod gradient averaging as one allreduce per step, waited for without spinning.

    ``hvd.DistributedOptimizer`` starts one allreduce per parameter from backward hooks and
    waits in ``synchronize()`` with a C++ loop that polls every ~50 microseconds. On a
    machine with as many cores as ranks (the 2-core development VM, a CPU executor with one
    core per task) that loop, horovod's background thread and Gloo's threads all compete
    with the other rank's forward/backward for the same cores: 2 ranks ran at 0.9-1.1x one
    (docs/benchmarks.md). Here the gradients are copied into one flat buffer after the
    backward, averaged by a single named allreduce (one negotiation, one fused transfer),
    and the wait sleeps between polls, so the waiting rank gives its core back.

    The same interface the loop uses on ``hvd.DistributedOptimizer``: ``synchronize()``,
    ``skip_synchronize()``, ``step()`` (synchronizes first unless skipped); everything else
    (``param_groups``, ``zero_grad``, ``state_dict`` ...) is the wrapped optimizer's. Works for
    CPU (Gloo) and CUDA (NCCL) tensors alike: the flat buffer lives on the parameters' device.
    """

    def __init__(self, optimizer, params, hvd, poll_s: float = 0.0002, name: str = "it.grads"):
        self._opt = optimizer
        self._params = [p for p in params if p.requires_grad]
        self._hvd, self._poll_s, self._name = hvd, poll_s, name
        self._skip = False

    def __getattr__(self, name):
        return getattr(self._opt, name)

    def synchronize(self) -> None:
        import time

        import torch

        hvd, params = self._hvd, self._params
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        handle = hvd.allreduce_async_(flat, op=hvd.Average, name=self._name)
        while not hvd.poll(handle):
            time.sleep(self._poll_s)
        flat = hvd.synchronize(handle)
        offset = 0
        for p, g in zip(params, grads):
            n = g.numel()
            averaged = flat[offset:offset + n].view_as(g)
            if p.grad is None:
                p.grad = averaged.clone()
            else:
                p.grad.copy_(averaged)
            offset += n

    def skip_synchronize(self):
        from contextlib import contextmanager

        @contextmanager
        def skipping():
            self._skip = True
            try:
                yield
            finally:
                self._skip = False

        return skipping()

    def step(self, closure=None):
        if not self._skip:
            self.synchronize()
        return self._opt.step(closure)


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
