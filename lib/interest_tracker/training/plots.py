"""Learning curves as a PNG beside the artifact (matplotlib, headless Agg backend)."""
from __future__ import annotations

from pathlib import Path


def plot_learning_curves(history: list[dict], path: str | Path, metric: str = "mrr@20") -> Path:
    """Train loss and validation metrics per epoch; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(epochs, [h["train_loss"] for h in history], marker="o")
    a1.set_xlabel("epoch")
    a1.set_ylabel("train loss")
    a1.set_title("training loss")
    for key in ("recall@20", "mrr@20", "recall@10", "ndcg@10"):
        vals = [h.get("valid", {}).get(key) for h in history]
        if any(v is not None for v in vals):
            a2.plot(epochs, vals, marker="o", label=key)
    a2.set_xlabel("epoch")
    if a2.lines:
        a2.set_title(f"validation (early stopping on {metric})")
        a2.legend()
    else:  # a refit without a validation split: say so instead of an empty legend
        a2.set_title("no validation split (refit on everything before the test cutoff)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
