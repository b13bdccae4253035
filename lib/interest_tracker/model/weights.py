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
from .interest_model import InterestModel

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "model_config.json"


def save_model(model: InterestModel, directory: str | Path) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, d / WEIGHTS_FILE)
    (d / CONFIG_FILE).write_text(json.dumps(to_dict(model.config), indent=2, sort_keys=True) + "\n")


def model_from_bytes(config_json: str, weights: bytes) -> InterestModel:
    """Rebuild a model from a config JSON string and ``torch.save`` bytes (what scoring broadcasts)."""
    model = InterestModel(from_dict(ModelConfig, json.loads(config_json)))
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def load_model(directory: str | Path) -> InterestModel:
    d = Path(directory)
    return model_from_bytes((d / CONFIG_FILE).read_text(), (d / WEIGHTS_FILE).read_bytes())
