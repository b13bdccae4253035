"""Builders for scoring tests: a tiny model artifact and tiny clean-event partitions.

Not a test module itself (no tests); the scoring test files import it.
"""
from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

EVENT_TYPES = ("view", "cart", "buy")
WINDOW_LENGTH = 5
NUM_CATALOG = 60  # item ids i00..i59; vocabulary indexes 2..61


def item_id(i: int) -> str:
    return f"i{i:02d}"


def build_artifact(root, version: str = "v1", seed: int = 0, embedding_dim: int = 8, members: int = 1) -> str:
    """A model artifact written through the layout (docs/architecture.md, "Model artifact").

    ``root`` is a local path or any URL the layout resolves (the S3 tests pass ``s3://``).
    """
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from interest_tracker.layout import ArtifactStore
    from interest_tracker.layout.artifact import CONFIG_FILE, VOCABULARY_FILE, WEIGHTS_FILE
    from interest_tracker.model import ModelConfig, build_model
    from interest_tracker.model.weights import model_to_bytes

    torch.manual_seed(seed)
    num_items = NUM_CATALOG + 2
    model = build_model(ModelConfig(num_items=num_items, num_event_types=len(EVENT_TYPES) + 1, hidden_size=16,
                                    embedding_dim=embedding_dim, event_type_dim=4, members=members))
    with torch.no_grad():  # a non-zero bias so the test covers it
        for tower in model.towers:
            tower.output_bias.copy_(torch.randn(num_items) * 0.3)
    config_json, weights = model_to_bytes(model)
    vocab = io.BytesIO()
    pq.write_table(pa.table({
        "item_id": pa.array([item_id(i) for i in range(NUM_CATALOG)], pa.string()),
        "item_index": pa.array(list(range(2, NUM_CATALOG + 2)), pa.int32()),
    }), vocab)
    manifest = {"model_version": version, "vocab_version": 1, "window_length": WINDOW_LENGTH,
                "event_types": list(EVENT_TYPES)}
    files = {WEIGHTS_FILE: weights, CONFIG_FILE: config_json.encode(), VOCABULARY_FILE: vocab.getvalue()}
    return ArtifactStore(str(root)).write(version, files, manifest, metrics={})


def make_events(users: range, run_date: dt.date, seed: int, per_user=(1, 9), category_of_user=None,
                unknown_items: bool = False) -> list[dict]:
    """Clean-event dicts (clean_events contract) for ``users`` on ``run_date``."""
    rng = random.Random(seed)
    rows = []
    base = dt.datetime.combine(run_date, dt.time(0, 0))
    for u in users:
        t = base + dt.timedelta(minutes=rng.randrange(60))
        session = 0
        for k in range(rng.randint(*per_user)):
            gap = rng.choice([5, 30, 90, 4000])
            if gap > 1800:
                session += 1
            t = t + dt.timedelta(seconds=gap)
            if category_of_user is not None:
                c = category_of_user(u)
                item = item_id(c * 10 + rng.randrange(10))
            else:
                item = item_id(rng.randrange(NUM_CATALOG))
            if unknown_items and k == 0:
                item = f"new-{u}"
            rows.append({
                "event_id": f"{run_date}:{u}:{k}", "user_id": f"u{u:03d}", "item_id": item,
                "event_type": rng.choice(EVENT_TYPES), "event_weight": 1.0, "event_time": t,
                "session_id": f"u{u:03d}:{run_date}:{session}", "input_session_id": None, "attributes": None,
            })
    return rows


def write_events(spark, events_root: Path, run_date: dt.date, rows: list[dict]) -> None:
    """Write one stage-1 ``events/run_date=D/`` partition."""
    from pyspark.sql import types as T

    from interest_tracker.contracts import load_contract
    from interest_tracker.layout import Stage1Layout

    schema = T.StructType([f for f in load_contract("clean_events").spark_schema().fields if f.name != "run_date"])
    df = spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)
    url = Stage1Layout(str(events_root)).partition_url("events", run_date)
    df.coalesce(1).write.mode("overwrite").parquet(url)


def write_items(spark, path: Path, rows: list[tuple], schema_ddl: str) -> str:
    spark.createDataFrame(rows, schema_ddl).coalesce(1).write.mode("overwrite").parquet(str(path))
    return str(path)


def scoring_config(tmp: Path, warehouse: Path, **overrides):
    from interest_tracker.config import from_dict
    from interest_tracker.scoring.config import ScoringConfig

    data = {"events_root": str(tmp / "stage1"), "artifact_root": str(tmp / "artifacts"),
            "warehouse_root": str(warehouse), "top_k": 5,
            "executor": {"arrow_batch_size": 16, "encode_batch_size": 8, "score_batch_size": 8,
                         "item_block_size": 16}}
    data.update(overrides)
    return from_dict(ScoringConfig, data)
