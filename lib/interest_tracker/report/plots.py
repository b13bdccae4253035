"""PNG plots of the report (matplotlib's headless Agg backend, on the driver only).

Readability rules: counts that span orders of magnitude get a log axis (or log-spaced bins),
every bar chart of few bars carries its numbers, and the model is drawn in the report's
blue (#4c72b0) next to grey baselines.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Sequence

METRIC_ORDER = ("recall@20", "mrr@20", "recall@10", "ndcg@10")
BLUE = "#4c72b0"
BASELINE_COLOURS = ("#8c8c8c", "#c7c7c7", "#b07d4c", "#6b6b6b", "#a6a6a6")


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
         ylabel: str, horizontal: bool = False, log_scale: bool = False, annotate: bool = False) -> Path:
    """A bar chart; ``labels`` are shown as given (e.g. ``"30+"`` for a capped last bar).

    ``log_scale``: a log value axis (zero bars are left empty: log 0 does not exist);
    ``annotate``: print each bar's value at its end.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, max(3.6, 0.32 * len(labels) + 1.0) if horizontal else 3.6))
    pos = list(range(len(labels)))
    if horizontal:
        drawn = ax.barh(pos, heights, color=BLUE)
        ax.set_yticks(pos, labels)
        ax.invert_yaxis()
        ax.set_xlabel(ylabel)
        if log_scale:
            ax.set_xscale("log")
            positive = [h for h in heights if h > 0]
            if positive:
                ax.set_xlim(0.5, max(positive) * 8)  # room for the labels at the bar ends
        if annotate:
            ax.bar_label(drawn, labels=[f"{h:,.0f}" if h else "" for h in heights], padding=3, fontsize=8)
    else:
        drawn = ax.bar(pos, heights, color=BLUE)
        step = max(1, len(labels) // 15)
        ticks = sorted(set(pos[::step]) | {pos[-1]}) if pos else []  # always label the capped last bar
        ax.set_xticks(ticks, [labels[i] for i in ticks])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if log_scale:
            ax.set_yscale("log")
        if annotate:
            ax.bar_label(drawn, labels=[f"{h:,.0f}" if h else "" for h in heights], padding=2, fontsize=8)
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


def metric_comparison(rows: dict[str, dict], metrics: Sequence[str], path: Path, model: str = "model") -> Path:
    """Grouped bars: one group per metric, the model (blue, first) beside each baseline (greys),
    each bar labelled with its value. A missing value is drawn as no bar, not as 0."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.8))
    names = sorted(rows, key=lambda n: (n != model, n))
    width = 0.8 / max(len(names), 1)
    top = 0.0
    for i, name in enumerate(names):
        vals = [rows[name].get(m) for m in metrics]
        colour = BLUE if name == model else BASELINE_COLOURS[(i - 1) % len(BASELINE_COLOURS)]
        xs = [j + i * width for j, v in enumerate(vals) if v is not None]
        ys = [float(v) for v in vals if v is not None]
        drawn = ax.bar(xs, ys, width, label=name, color=colour, edgecolor="#333333", linewidth=0.4)
        ax.bar_label(drawn, labels=[f"{v:.3f}" for v in ys], padding=2, fontsize=7)
        top = max([top, *ys])
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(metrics))], list(metrics))
    ax.set_ylim(0, top * 1.18 if top > 0 else 1.0)
    ax.set_ylabel("value (higher is better)")
    ax.set_title("model beside the baselines" if len(names) > 1 else "model (no baselines in metrics.json)")
    ax.legend(fontsize=8, ncol=min(len(names), 4))
    return _save(fig, path)


def interest_timeline(users: Sequence[dict], path: Path, run_dates: Sequence[dt.date]) -> Path:
    """One panel per sample user: the category of every clean event over time (dots), and the
    model's top recommended category after each scored run (a blue line with squares).

    ``users``: dicts with ``user_id``, ``events`` [(event_time, category)], ``runs``
    [(run_date, top_category, cosine_similarity)] and optional ``title``. Categories are
    text; the y axis lists the categories that occur, sorted.
    """
    plt = _pyplot()
    n = max(len(users), 1)
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.6 * n), squeeze=False)
    for ax, user in zip(axes[:, 0], users):
        cats = sorted({c for _, c in user["events"] if c is not None}
                      | {r[1] for r in user["runs"] if r[1] is not None})
        y = {c: i for i, c in enumerate(cats)}
        pts = [(t, y[c]) for t, c in user["events"] if c is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=14, color="#999999", label="event (item category)",
                       zorder=2)
        # A run's recommendations reflect every event up to the end of its run date.
        runs = [(dt.datetime.combine(d, dt.time(23, 59, 59)), y[c], cos) for d, c, cos in user["runs"] if c in y]
        if runs:
            ax.plot([r[0] for r in runs], [r[1] for r in runs], color=BLUE, marker="s", markersize=9, linewidth=2,
                    label="top recommended category after the run", zorder=3)
            for t, yy, cos in runs:
                if cos is not None:
                    ax.annotate(f"cos {cos:.2f}", (t, yy), textcoords="offset points", xytext=(6, 6), fontsize=8,
                                color=BLUE)
        for d in run_dates:
            ax.axvline(dt.datetime.combine(d, dt.time(0, 0)), color="#dddddd", linewidth=1, zorder=1)
        ax.set_yticks(range(len(cats)), cats)
        ax.set_ylim(-0.7, len(cats) - 0.3)
        ax.set_title(user.get("title") or user["user_id"], fontsize=10, loc="left")
        if pts or runs:
            ax.legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel("event time (UTC); grey lines: start of each run date")
    fig.autofmt_xdate()
    return _save(fig, path)
