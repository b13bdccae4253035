"""Two training processes: through horovod.spark.run and TorchDistributor from local Spark, and
the gradient arithmetic of the distributed step itself.

- Every rank initialises its model from its own seed, so identical final parameters prove
  that rank 0's state is broadcast (and that gradients are averaged the same everywhere).
- A 2-rank step equals a 1-rank step on the two ranks' batches concatenated (plain SGD, no
  clipping): summed instead of averaged gradients would move the parameters twice as far.

Datasets are stage 1's own output (``training_dataset`` in conftest.py).
"""
from __future__ import annotations

import importlib.util
import os
import socket

import numpy as np
import pyarrow.parquet as pq
import pytest

from interest_tracker.config import from_dict, to_dict
from interest_tracker.training.config import TrainConfig
from interest_tracker.training.launchers import launch

DEVICE = os.environ.get("INTEREST_TRACKER_TEST_DEVICE", "cpu")


def _cfg(dataset, tmp_path, launcher, members: int = 1):
    return from_dict(TrainConfig, dict(
        dataset=str(dataset), artifact_root=str(tmp_path / launcher), launcher=launcher, num_proc=2,
        batch_size=16, epochs=2, steps_per_epoch=8, learning_rate=0.02, warmup_steps=4,
        model={"hidden_size": 8, "embedding_dim": 8, "members": members}, evaluate_test=False, log_every_steps=4,
        start_timeout_s=180, device="cpu", loss="full", optimizer="adam"))


def _check(out):
    assert out["world_size"] == 2
    digests = out["param_digests"]
    assert len(digests) == 2 and digests[0] == digests[1], "ranks ended with different parameters"
    # ... although each rank built its model from its own seed: the broadcast made them equal
    assert len(out["init_digests"]) == 2 and out["init_digests"][0] != out["init_digests"][1]
    losses = [h["train_loss"] for h in out["metrics"]["history"]]
    assert out["metrics"]["global_step"] == 16 and out["steps_run"] == 16
    assert losses[-1] < losses[0] and losses[-1] < out["metrics"]["first_loss"]
    split = out["metrics"]["history"][0]["time_split_s"]
    assert split["allreduce_update"] > 0 and split["forward_backward"] > 0


@pytest.mark.skipif(importlib.util.find_spec("horovod") is None,
                    reason="horovod is not installed: run scripts/build_horovod.sh (make env)")
def test_horovod_two_ranks_from_different_seeds_end_identical_and_learn(spark, training_dataset, tmp_path):
    out = launch(_cfg(training_dataset, tmp_path, "horovod"), spark)
    _check(out)
    assert out["rank_digests"] == out["param_digests"]  # what each rank returned to the driver


def test_torch_distributor_two_ranks_from_different_seeds_end_identical_and_learn(spark, training_dataset,
                                                                                  tmp_path):
    """With an ensemble of two members (``model.members=2``): DDP sees both members' parameters
    used in one forward, and every rank ends with the same members."""
    _check(launch(_cfg(training_dataset, tmp_path, "torch-distributor", members=2), spark))


# ---- one distributed step == one step on the concatenated batch ------------------------------

STEPS, ROWS = 3, 4  # optimizer steps; windows per rank per step


def _step_cfg(dataset) -> TrainConfig:
    return from_dict(TrainConfig, dict(
        dataset=str(dataset), artifact_root="unused", loss="full", optimizer="sgd", learning_rate=0.5,
        grad_clip=0.0, scale_lr=False, warmup_steps=0, model={"hidden_size": 8, "embedding_dim": 8}, device="cpu"))


def _equal_point_batches(dataset):
    """``STEPS`` x 2 batches of ``ROWS`` windows that all have the same number of trained points,
    so the mean loss of the concatenated batch is exactly the mean of the two ranks' means."""
    t = pq.read_table(str(dataset / "train")).to_pydict()
    arrays = {k: np.array(v) for k, v in t.items() if k in ("input_items", "input_event_types", "input_log_gaps",
                                                             "input_session_starts", "target_items", "target_mask",
                                                             "length")}
    points = ((arrays["target_mask"] > 0) & (arrays["target_items"] > 1)).sum(1)
    common = np.bincount(points).argmax()
    rows = np.nonzero(points == common)[0]
    need = STEPS * 2 * ROWS
    assert common > 0 and len(rows) >= need, "the fixture has too few windows with equal point counts"
    rows = np.random.default_rng(0).permutation(rows)[:need].reshape(STEPS, 2, ROWS)
    return [[{k: v[rows[s, r]] for k, v in arrays.items()} for r in range(2)] for s in range(STEPS)]


def _build(cfg_dict: dict, sizes: tuple[int, int], seed: int):
    """The production model, objective and optimizer for ``cfg_dict`` (seeded per rank)."""
    import torch

    from interest_tracker.model import InterestModel
    from interest_tracker.training.loop import _objective, _optimizer

    cfg = from_dict(TrainConfig, cfg_dict)
    torch.manual_seed(seed)
    model = InterestModel(cfg.model_config(*sizes))
    objective = _objective(model, cfg, None)
    return cfg, model, objective, _optimizer(cfg, objective.parameters())


def _train_steps(module, optimizer, model, batches) -> None:
    from interest_tracker.training.loop import _step, _to_tensors

    for batch in batches:
        *tensors, lengths = _to_tensors(batch)
        loss = module(*tensors, lengths)
        optimizer.zero_grad()
        loss.backward()
        _step(optimizer, model, 0.0, None)


def _rank_worker(rank, world, port, cfg_dict, sizes, batches, out_dir):
    """One rank: the production TorchDistComm (Gloo, DDP), seeded differently from the other rank."""
    import torch

    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      LOCAL_RANK="0")
    torch.set_num_threads(1)
    from interest_tracker.training.distributed import make_comm

    comm = make_comm("torch-distributor", "cpu")
    cfg, model, objective, optimizer = _build(cfg_dict, sizes, seed=100 + rank)
    module, optimizer = comm.wrap(objective, optimizer)
    _train_steps(module, optimizer, model, [step[rank] for step in batches])
    torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, os.path.join(out_dir, f"r{rank}.pt"))
    comm.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_equal_one_rank_on_the_concatenated_batch(training_dataset, tmp_path):
    import torch
    import torch.multiprocessing as mp

    from interest_tracker.layout import SequencesDataset

    info = SequencesDataset(str(training_dataset)).info()
    sizes = (int(info["num_items"]), int(info["num_event_types"]))
    batches = _equal_point_batches(training_dataset)
    cfg_dict = to_dict(_step_cfg(training_dataset))
    for attempt in range(3):  # the free port can be taken before rank 0 binds it on a busy machine
        try:
            mp.start_processes(_rank_worker, args=(2, _free_port(), cfg_dict, sizes, batches, str(tmp_path)),
                               nprocs=2, join=True, start_method="spawn")
            break
        except mp.ProcessRaisedException as e:
            if "EADDRINUSE" not in str(e) or attempt == 2:
                raise
    r0 = torch.load(tmp_path / "r0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "r1.pt", weights_only=True)
    assert all(torch.equal(r0[k], r1[k]) for k in r0)  # seeds 100 and 101, yet identical: the broadcast

    def one_rank(scale: float):
        """One process from rank 0's initial state, on the concatenated batches; ``scale``
        multiplies the learning rate (2.0 = what summed gradients would do)."""
        d = {**cfg_dict, "learning_rate": cfg_dict["learning_rate"] * scale}
        _, model, objective, optimizer = _build(d, sizes, seed=100)
        joined = [{k: np.concatenate([step[0][k], step[1][k]]) for k in step[0]} for step in batches]
        _train_steps(objective, optimizer, model, joined)
        return model.state_dict()

    single = one_rank(1.0)
    summed = one_rank(2.0)
    for k in r0:
        torch.testing.assert_close(r0[k], single[k], rtol=1e-5, atol=1e-6)
    # the tolerance is tight enough to tell averaged from summed gradients
    assert max(float((summed[k] - r0[k]).abs().max()) for k in r0) > 1e-3
