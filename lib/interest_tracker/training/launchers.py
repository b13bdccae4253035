"""Launchers: run ``loop.train`` on 1 process, through Horovod on Spark, or through TorchDistributor.

All three ship the same top-level function and the same plain-dict config, and return
rank 0's small result. The Spark-based launchers need an active SparkSession with at
least ``num_proc`` task slots (``local[2]`` for 2 ranks in local mode): Horovod starts
one Spark task per rank that hosts its worker, TorchDistributor runs its ranks as a
barrier stage.
"""
from __future__ import annotations

import logging
import os

from ..config import ConfigError, to_dict
from ..logs import silence_py4j_retry_notice
from .config import TrainConfig
from .loop import train

log = logging.getLogger(__name__)


def launch(cfg: TrainConfig, spark=None) -> dict:
    payload = to_dict(cfg)
    if cfg.launcher == "local":
        return train(payload)
    if spark is None:
        raise ConfigError(f"launcher '{cfg.launcher}' needs a SparkSession; run through jobs/train_model.py "
                          "or pass spark=, or set launcher=local")
    _check_slots(spark, cfg.num_proc)
    if cfg.launcher == "horovod":
        return run_horovod(payload, cfg.num_proc, cfg.start_timeout_s)
    if cfg.launcher == "torch-distributor":
        return run_torch_distributor(payload, cfg.num_proc, torch_distributor_gpu(spark, cfg.device))
    raise ConfigError(f"unknown launcher {cfg.launcher!r}; use local, horovod or torch-distributor")


def _check_slots(spark, num_proc: int) -> None:
    slots = spark.sparkContext.defaultParallelism
    if num_proc > slots:
        raise ConfigError(f"num_proc={num_proc} but Spark has {slots} task slots: the ranks could never all "
                          f"start; lower num_proc or give Spark more cores (e.g. --master local[{num_proc}])")


def run_horovod(payload: dict, num_proc: int, start_timeout_s: int) -> dict:
    try:
        import horovod.spark
    except ImportError as e:
        raise ConfigError("launcher 'horovod' needs horovod 0.28.1 in the environment; build it with "
                          "scripts/build_horovod.sh (make env) or use launcher=torch-distributor") from e
    env = dict(os.environ)
    # Gloo rendezvous over loopback works in local mode; a cluster sets its own interface.
    env.setdefault("HOROVOD_GLOO_IFACE", "lo" if _local_master() else env.get("HOROVOD_GLOO_IFACE", ""))
    # Console noise of a successful run, handled where it starts: horovod's verbose=1 makes its
    # runner and rendezvous server log every key-value exchange ("scope global has keys ...",
    # ~30 lines per run) on the root logger, so verbose is on only when this module logs at
    # DEBUG; and py4j's harmless "Connection reset by peer" retry notice during the run is
    # filtered by ..logs.Py4JRetryNoticeFilter (its docstring says where the reset comes from).
    silence_py4j_retry_notice()
    verbose = 1 if log.isEnabledFor(logging.DEBUG) else 0
    results = horovod.spark.run(train, args=(payload,), num_proc=num_proc, start_timeout=start_timeout_s,
                                use_gloo=True, env={k: v for k, v in env.items() if v}, verbose=verbose,
                                executable=_rank_python())
    rank0 = next(r for r in results if r.get("rank") == 0)
    rank0["rank_digests"] = [r["param_digest"] for r in sorted(results, key=lambda r: r["rank"])]
    return rank0


def _rank_python() -> str | None:
    """The interpreter Horovod starts the ranks with, on the executors' machines.

    Horovod's default is the driver's ``sys.executable``, a path that need not exist where
    the executors run (a packed env shipped with ``--archives env.tgz#environment`` lives at
    ``./environment/bin/python`` in each executor's directory, which is where the Spark task
    that starts a rank runs). So: the executors' Python (``spark.pyspark.python``) when the
    submit sets one, else Horovod's default.
    """
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    return (sc.getConf().get("spark.pyspark.python", None) or None) if sc is not None else None


def _local_master() -> bool:
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    return sc is not None and sc.master.startswith("local")


def torch_distributor_gpu(spark, device: str) -> bool:
    """``use_gpu`` for TorchDistributor: on for ``device=cuda``, and for ``auto`` when Spark gives
    tasks GPUs. With ``use_gpu=False`` TorchDistributor hides every GPU from the ranks
    (``CUDA_VISIBLE_DEVICES=""``), so this decides where they train."""
    conf = spark.sparkContext.getConf()
    local = spark.sparkContext.master.startswith("local")
    key = "spark.driver.resource.gpu.amount" if local else "spark.task.resource.gpu.amount"
    try:
        gpus = float(conf.get(key, "0"))
    except ValueError:
        gpus = 0.0
    if device == "cpu":
        return False
    if device == "cuda" and gpus <= 0:
        raise ConfigError(f"device=cuda with launcher=torch-distributor needs GPUs assigned by Spark: set {key} "
                          "(and a GPU discovery script; see cluster/train_model.gpu.properties), or set device=cpu")
    return gpus > 0


def run_torch_distributor(payload: dict, num_proc: int, use_gpu: bool = False) -> dict:
    from pyspark.ml.torch.distributor import TorchDistributor

    return TorchDistributor(num_processes=num_proc, local_mode=False, use_gpu=use_gpu).run(train, payload)
