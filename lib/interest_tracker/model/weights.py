"""Save and load the model as weights + JSON config. Never a pickled module.

``torch.load(..., weights_only=True)`` refuses arbitrary objects, so a model file from
an untrusted location cannot execute code when loaded.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from ..config import from_dict, to_dict
from .config import ModelConfig
from .interest_model import InterestEnsemble, InterestModel, build_model

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "model_config.json"


def model_to_bytes(model: InterestModel | InterestEnsemble) -> tuple[str, bytes]:
    """(config JSON, ``torch.save`` bytes of the CPU state dict): what the artifact stores."""
    buf = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buf)
    return json.dumps(to_dict(model.config), indent=2, sort_keys=True) + "\n", buf.getvalue()


def save_model(model: InterestModel | InterestEnsemble, directory: str | Path) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    config_json, weights = model_to_bytes(model)
    (d / WEIGHTS_FILE).write_bytes(weights)
    (d / CONFIG_FILE).write_text(config_json)


def model_from_bytes(config_json: str, weights: bytes) -> InterestModel | InterestEnsemble:
    """Rebuild a model from a config JSON string and ``torch.save`` bytes (what scoring broadcasts)."""
    model = build_model(from_dict(ModelConfig, json.loads(config_json)))
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def load_model(directory: str | Path) -> InterestModel | InterestEnsemble:
    """Load from a local path or any URL the layout's filesystem layer resolves (file, hdfs, s3)."""
    from ..layout import fs

    url = fs.to_url(str(directory))
    return model_from_bytes(fs.read_text(fs.join(url, CONFIG_FILE)), fs.read_bytes(fs.join(url, WEIGHTS_FILE)))
