"""PNG plots of the report (matplotlib's headless Agg backend, on the driver only)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

METRIC_ORDER = ("recall@20", "mrr@20", "recall@10", "ndcg@10")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    _pyplot().close(fig)
    return path


def bars(labels: Sequence[str], heights: Sequence[float], path: Path, *, title: str, xlabel: str,
         ylabel: str, horizontal: bool = False, log_scale: bool = False) -> Path:
    """A bar chart; ``labels`` are shown as given (e.g. ``"30+"`` for a capped last bar)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    pos = list(range(len(labels)))
    if horizontal:
        ax.barh(pos, heights, color="#4c72b0")
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        if log_scale:
            ax.set_xscale("log")
    else:
        ax.bar(pos, heights, color="#4c72b0")
        step = max(1, len(labels) // 15)
        ticks = sorted(set(pos[::step]) | {pos[-1]}) if pos else []  # always label the capped last bar
        ax.set_xticks(ticks, [labels[i] for i in ticks])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_scale:
            ax.set_yscale("log")
    ax.set_title(title)
    return _save(fig, path)


def learning_curves(history: Sequence[dict], metric: str, path: Path) -> Path:
    """Training loss and validation metrics per epoch (from metrics.json's ``history``)."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    a1.plot(epochs, [h["train_loss"] for h in history], marker="o", color="#c44e52")
    a1.set_xlabel("epoch")
    a1.set_ylabel("train loss")
    a1.set_title("training loss")
    for key in METRIC_ORDER:
        vals = [(h.get("valid") or {}).get(key) for h in history]
        if any(v is not None for v in vals):
            a2.plot(epochs, vals, marker="o", label=key)
    a2.set_xlabel("epoch")
    a2.set_title(f"validation (early stopping on {metric})")
    a2.legend()
    return _save(fig, path)


def metric_comparison(rows: dict[str, dict], metrics: Sequence[str], path: Path) -> Path:
    """Grouped bars: one group per metric, one bar per model/baseline."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    names = list(rows)
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        vals = [rows[name].get(m) or 0.0 for m in metrics]
        ax.bar([j + i * width for j in range(len(metrics))], vals, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(metrics))], list(metrics))
    ax.set_ylabel("value")
    ax.set_title("model against baselines")
    ax.legend()
    return _save(fig, path)
