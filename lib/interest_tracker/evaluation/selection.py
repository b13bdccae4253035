"""Baselines in every run, and the choice of what scoring publishes (model, blend or rule).

Why: a user who trains on their own log needs something to compare the model with, and
the tables must never be worse than a simple rule. After training, rank 0 calls
:func:`baselines_and_selection`, which

1. fits the popularity and item-transition baselines on the train split's counted
   (previous item, next item) pairs and scores them on valid and test with the same
   harness as the model (``metrics["baselines"][split][name]``, the model's metric names);
2. fits the rule priors (``scoring.blend``) on the same train pairs and chooses on
   validation the recent-popularity prior (plain popularity or one of stage 1's
   ``train_decay_{h}d`` columns), the blend weights ``(model, transitions, recent)`` from
   a small grid, and the half-life after which trust in the model fades with the time
   since the user's last event (issue 13);
3. scores the model, the best blend and the best rule on valid (and test) through the
   harness, picks the scorer ``auto`` will publish (the model unless another candidate
   beats it on the early-stopping metric by more than ``MIN_GAIN``), and
4. refits the priors on every split's pairs (and the decayed popularity as of the last
   event) for the artifact: scoring runs after the test period, so it gets the freshest
   rule the data allows; the weights chosen on validation carry over.

Nothing here imports pyspark. Validation-time priors use train events only, so the
selection never sees a validation target.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np

from ..scoring.blend import (MODEL_ONLY, PRODUCT_FLOOR, BlendTerms, BlendWeights, PriorTensors, Priors,
                             blend_block, fit_priors, normalised, tie_break)
from .baselines import PopularityBaseline, TransitionBaseline, training_pairs
from .harness import encode_windows, evaluate, prediction_points
from .metrics import DEFAULT_KS, MISS, RankingMetrics, point_values, ranks_of_targets

log = logging.getLogger(__name__)

MODEL_WEIGHTS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9)
RECENT_SHARES = (0.0, 0.5, 1.0)
MODEL_POWERS = (0.25, 0.5, 1.0, 2.0)
"""Candidate powers of softmax(model) in the product form (``BlendWeights.model_power``)."""
MIN_RETURN_POINTS = 30
"""Fewer validation points than this after ``min_gap_s``: choose on every point, without a
test (the paired test below needs a few dozen points for its normal approximation)."""
ENOUGH_RETURN_POINTS = 100
"""From this many return points on, the return-point choice is kept: the tables serve
returns, and at 100 points one point moves the metric by 0.01. Dozens of candidates chosen
on a handful of points pick noise: on a drifting synthetic log 14 return points chose a
blend (recall@20 0.357 vs the model's 0.286 there) whose next-day HR@20 was 0.141 against
the model's 0.240."""
RETURN_GATE_Z = 2.0
"""Between ``MIN_RETURN_POINTS`` and ``ENOUGH_RETURN_POINTS`` the return-point choice
replaces the every-point one only when, on the return points, it beats it by at least this
many paired standard errors (per-point metric differences; for recall, McNemar's z).
Such a choice is scored on the points that chose it, so it is favoured; 2 standard errors
rather than the one-sided 1.64 pays for that. (Seventh session: applied at every count, the
test kept the every-point choice on a drifting log's 293 and 215 return points, 2 and 0
validation hits apart, and the tables lost 3% and 1% of next-day HR@20 to the return-point
choice; docs/benchmarks.md.)"""
MIN_GAIN = 0.01
"""``auto`` leaves the model only for a candidate at least 1% better (relative) on
validation, so noise between near-equal scorers does not flip the published tables."""
SELECTION_MAX_POINTS = 20000
DECAY_PREFIX, TRAIN_DECAY_PREFIX = "decay_", "train_decay_"
TIE_EPS = 1e-13
GAP_HALF_LIVES_DAYS = (0.0, 1.0 / 24, 1.0, 7.0, 30.0)
"""Candidate half-lives of trust in the recurrent state (0 = trust does not fade)."""
GAP_MAX_POINTS = 5000
GAP_MIN_GAIN = 0.001
"""A half-life must beat 'off' (the best weights without one, same points) by 0.1%
(relative): below that the difference is a handful of points, not a trend (yoochoose:
5e-7 of MRR@20 between 'off' and 7 days)."""


def weight_grid() -> list[BlendWeights]:
    """Every (model, transitions, recent) of the mixture grid (model-only excluded), then
    the product form: each recent share of the rules times ``softmax(model) ** power``."""
    out = []
    for wm in MODEL_WEIGHTS:
        for share in RECENT_SHARES:
            rest = 1.0 - wm
            wr = round(rest * share, 6)
            out.append(BlendWeights(wm, round(rest - wr, 6), wr))
    for power in MODEL_POWERS:
        for share in RECENT_SHARES:
            out.append(BlendWeights(0.0, round(1.0 - share, 6), share, model_power=power))
    return out


def grid_key(w: BlendWeights) -> str:
    """``"model/transitions/recent"``, with ``"^power"`` appended for the product form."""
    key = f"{w.model:g}/{w.transitions:g}/{w.recent:g}"
    return f"{key}^{w.model_power:g}" if w.product else key


class BlendScorer:
    """Harness scorer of a blend (``weights.model == 0``: the rule alone, no model run)."""

    def __init__(self, model, priors: Priors, weights: BlendWeights, device: str = "cpu"):
        import torch

        self.model, self.priors, self.weights, self.device = model, priors, weights, device
        self.pt = PriorTensors(priors, device, torch.float64)
        self.tb = torch.as_tensor(TIE_EPS * tie_break(priors.popularity), device=device)
        self.states = None

    def prepare(self, batch) -> None:
        if self.weights.uses_model:
            self.states = encode_windows(self.model, batch, self.device)

    def __call__(self, batch, rows, positions):
        import torch

        last = np.asarray(batch["input_items"])[rows, positions]
        terms = BlendTerms(self.priors, self.weights, last, self.device, torch.float64,
                           point_gaps(batch, rows, positions))
        n = self.priors.num_items
        with torch.no_grad():
            if self.weights.uses_model:
                logits = self.model.score_all(self.states[torch.as_tensor(rows), torch.as_tensor(positions)]).double()
            else:
                logits = torch.zeros((len(rows), n), dtype=torch.float64, device=self.device)
                logits[:, :2] = float("-inf")
            lse = torch.logsumexp(logits, dim=1, keepdim=True)
            return blend_block(logits, lse, terms, self.pt, 0, n) + self.tb


def _priors_inputs(root: Path, num_items: int, prefix: str) -> dict[str, np.ndarray]:
    """Decayed-popularity columns of item_stats (``{prefix}{h}d``), by column name."""
    import pyarrow.parquet as pq

    path = root / "item_stats"
    if not path.exists():
        return {}
    names = pq.read_schema(next(p for p in sorted(path.rglob("*.parquet")))).names
    cols = [c for c in names if c.startswith(prefix) and not (prefix == DECAY_PREFIX and c.startswith(TRAIN_DECAY_PREFIX))]
    if not cols:
        return {}
    t = pq.read_table(path, columns=["item_index", *cols])
    idx = t.column("item_index").to_numpy()
    out = {}
    for c in cols:
        v = np.zeros(num_items, dtype=np.float64)
        v[idx] = t.column(c).to_numpy()
        out[c[len(prefix):]] = v
    return out


def recent_prior_choices(dataset_url: str) -> list[str]:
    """The values ``recent_prior`` may pin for this dataset: ``popularity`` and one
    ``decay_{h}d`` per ``train_decay_{h}d`` column of its item_stats (the column selection
    reads). Only the schema is read, through the layout, so any filesystem works."""
    import pyarrow.dataset as pads

    from ..layout import SequencesDataset, fs

    url = SequencesDataset(dataset_url).item_stats
    if not fs.exists(url):
        return ["popularity"]  # as selection without item_stats: no decayed column to pin
    filesystem, path = fs.resolve(url)
    names = pads.dataset(path, filesystem=filesystem, format="parquet").schema.names
    half_lives = sorted((c[len(TRAIN_DECAY_PREFIX):] for c in names if c.startswith(TRAIN_DECAY_PREFIX)),
                        key=lambda h: float(h[:-1]) if h[:-1].replace(".", "", 1).isdigit() else float("inf"))
    return ["popularity", *(DECAY_PREFIX + h for h in half_lives)]


def check_recent_prior(cfg, dataset_url: str, info: dict) -> None:
    """Fail before the first epoch when a pinned ``recent_prior`` names a half-life the
    dataset's item_stats lacks: selection would otherwise find out after every epoch ran.
    A refit without validation targets never uses the pin (no selection), so it is not checked."""
    pinned = getattr(cfg, "recent_prior", "auto")
    if pinned == "auto" or int((info.get("targets") or {}).get("valid", 1)) <= 0:
        return
    choices = recent_prior_choices(dataset_url)
    if pinned not in choices:
        from ..config import ConfigError

        raise ConfigError(f"recent_prior={pinned!r} is not in this dataset ({dataset_url}); its item_stats has "
                          f"{choices}; set 'recent_prior' to one of them or 'auto'")


def _points(batches: Iterable[dict], max_points: int):
    """(batch, rows, positions) of the first ``max_points`` counted targets."""
    seen = 0
    for batch in batches:
        rows, positions = prediction_points(batch)
        if len(rows) == 0:
            continue
        rows, positions = rows[:max_points - seen], positions[:max_points - seen]
        yield batch, rows, positions
        seen += len(rows)
        if seen >= max_points:
            return


def _fixed_ranks(scores: np.ndarray, targets: np.ndarray, tb: np.ndarray) -> np.ndarray:
    """Ranks of ``targets`` under one score vector shared by every point (a popularity rule)."""
    s = scores + tb
    s[:2] = -np.inf
    order = np.sort(s)
    t = s[targets]
    ranks = (len(s) - np.searchsorted(order, t, side="right")).astype(np.int64) + 1
    ranks[~np.isfinite(t)] = MISS
    return ranks


def point_gaps(batch: dict, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Seconds from each point's last input event to its target event (NaN when the target
    lies past the window: the last slot of a full window).

    This is the validation stand-in for scoring's "time since the user's last event": at a
    point, the user comes back after this gap; scoring knows the gap up to the run date.
    """
    items = np.asarray(batch["input_items"])
    gaps = np.asarray(batch["input_log_gaps"], dtype=np.float64)
    nxt = np.asarray(positions) + 1
    inside = nxt < items.shape[1]
    out = np.full(len(rows), np.nan)
    r, q = np.asarray(rows)[inside], nxt[inside]
    present = items[r, q] != 0
    vals = np.expm1(gaps[r, q])
    out[np.flatnonzero(inside)[present]] = vals[present]
    return out


def _chunks(model, priors: Priors, batches: list, pt, exclude_inputs: bool = False):
    """Per chunk of at most 512 points: targets, gaps, excluded items, P_model, P(.|last) and
    log P_model. ``exclude_inputs``: the items of the window up to each point are excluded
    too, as ``ScoringConfig.exclude_consumed`` excludes what the user had (return points)."""
    import torch

    unit = BlendWeights(0.0, 1.0, 0.0, 1.0)
    with torch.no_grad():
        for batch, rows, positions in batches:
            t = {k: torch.as_tensor(np.array(batch[k])) for k in
                 ("input_items", "input_event_types", "input_log_gaps", "input_session_starts")}
            states = model(t["input_items"].long(), t["input_event_types"].long(),
                           t["input_log_gaps"].float(), t["input_session_starts"].float())
            for s in range(0, len(rows), 512):
                r, p = rows[s:s + 512], positions[s:s + 512]
                last = np.asarray(batch["input_items"])[r, p]
                targets = torch.as_tensor(np.asarray(batch["target_items"])[r, p].astype(np.int64))
                logits = model.score_all(states[torch.as_tensor(r), torch.as_tensor(p)]).double()
                if exclude_inputs:
                    seen = np.asarray(batch["input_items"])[r]
                    upto = np.arange(seen.shape[1])[None, :] <= np.asarray(p)[:, None]
                    rr, cc = np.nonzero(upto & (seen > 1))
                    logits[torch.as_tensor(rr), torch.as_tensor(seen[rr, cc].astype(np.int64))] = float("-inf")
                zero = torch.zeros_like(logits)
                p_trans = blend_block(zero, zero[:, :1], BlendTerms(priors, unit, last, "cpu", torch.float64),
                                      pt, 0, priors.num_items)
                yield (targets, point_gaps(batch, r, p), torch.isneginf(logits), torch.softmax(logits, dim=1), p_trans,
                       torch.log_softmax(logits, dim=1))


def _ranks(w: BlendWeights, gaps, targets, excluded, p_model, p_trans, recent, tb, logp_model=None):
    """The targets' ranks under blend ``w``: the scores of ``scoring.blend`` for one chunk,
    built in place in one buffer. The grid scores every chunk some 150 times, and
    building each score from fresh temporaries took most of the training job's selection
    (34 of 54 s in the demo's); the sums are the same up to the order of floating-point
    additions."""
    import torch

    trust = w.trust(gaps)  # 1.0, or one value per point when a half-life is set
    if np.ndim(trust):
        trust = torch.as_tensor(np.asarray(trust, dtype=np.float64)).view(-1, 1)
    if w.product:
        sc = torch.mul(p_trans, w.transitions).add_(w.recent * recent + PRODUCT_FLOOR).log_()
        if isinstance(trust, float):
            sc.add_(logp_model, alpha=w.model_power * trust)
        else:
            sc.addcmul_(logp_model, w.model_power * trust)
    else:
        sc = torch.mul(p_model, w.model * trust)
        sc.add_(p_trans, alpha=w.transitions)
        if isinstance(trust, float):
            sc.add_((w.recent + w.model * (1 - trust)) * recent)
        else:
            sc.addcmul_(w.recent + w.model * (1 - trust), recent.view(1, -1))
    sc.add_(tb).masked_fill_(excluded, float("-inf"))
    return ranks_of_targets(sc, targets)


def _return_points(batches: list, min_gap_s: float) -> list:
    """The points whose gap since the previous event is at least ``min_gap_s`` (a user who
    comes back: what a published table serves), as (batch, rows, positions)."""
    out = []
    for batch, rows, positions in batches:
        g = point_gaps(batch, rows, positions)
        keep = np.flatnonzero(np.nan_to_num(g, nan=-1.0) >= min_gap_s)
        if len(keep):
            out.append((batch, rows[keep], positions[keep]))
    return out


def choose_weights(model, priors: Priors, batches: Iterable[dict], metric: str, recent_options: dict,
                   max_points: int = SELECTION_MAX_POINTS, ks=DEFAULT_KS,
                   min_gap_s: float = 0.0) -> tuple[BlendWeights, str, dict]:
    """Grid search on (at most ``max_points`` points of) validation.

    First the recent-popularity source (each alone, a fixed ranking), then every grid
    point with it (mixtures and products, ``weight_grid``), then the gap half-life of the
    best blend (``GAP_HALF_LIVES_DAYS``, 0 = off). Returns the best blend that uses the
    model, the chosen source, and the record: the metric of every grid point
    (``grid_key``), every gap option, and on which points it was chosen.

    ``min_gap_s`` > 0 may choose on *return points* only: targets that come at least that
    long after the previous event, judged as the tables are (the window's items excluded,
    like ``exclude_consumed``). A daily table serves users who come back, and on logs such
    as ml-latest-small what predicts a return (what is popular now, reranked by the user's
    taste) differs from what predicts the next click of a burst. But return points can be
    few, and the best of many candidates on few points is partly noise (``record["gate"]``):
    from ``ENOUGH_RETURN_POINTS`` return points on, they decide; between
    ``MIN_RETURN_POINTS`` and that, both choices are made and the return-point one is kept
    only if on the return points it beats the every-point one by ``RETURN_GATE_Z`` paired
    standard errors; below ``MIN_RETURN_POINTS``, every point decides.
    ``recent_options``: name -> P_recent over the vocabulary ("popularity" always included).
    Memory is one chunk of 512 points x the catalogue at a time.
    """
    batches = list(_points(batches, max_points))
    if not batches:
        raise ValueError("no validation points to choose the blend on; the valid split has no counted targets")
    returns = _return_points(batches, min_gap_s) if min_gap_s > 0 else []
    found = sum(len(r) for _, r, _ in returns)
    if found >= ENOUGH_RETURN_POINTS:  # the return points decide; no every-point choice needed
        best, src, record = _choose_on(model, priors, returns, metric, recent_options, ks, True)
        record.update(min_gap_s=min_gap_s, gate={"return_points": found, "kept": "returns",
                                                 "reason": f">= {ENOUGH_RETURN_POINTS} return points"})
        return best, src, record
    best, src, record = _choose_on(model, priors, batches, metric, recent_options, ks, False)
    record["min_gap_s"] = min_gap_s
    if min_gap_s <= 0:
        return best, src, record
    if found < MIN_RETURN_POINTS:
        log.warning("only %d validation points come %.1f h or more after the previous event (< %d): choosing "
                    "the blend on every validation point", found, min_gap_s / 3600, MIN_RETURN_POINTS)
        record["gate"] = {"return_points": found, "kept": "all", "reason": f"fewer than {MIN_RETURN_POINTS}"}
        return best, src, record
    r_best, r_src, r_record = _choose_on(model, priors, returns, metric, recent_options, ks, True)
    gate = return_gate(model, priors, returns, metric, (best, recent_options[src]),
                       (r_best, recent_options[r_src]))
    log.info("return-point gate (%s on %d return points, under %d): every-point choice %.4f, return-point "
             "choice %.4f, paired z %.2f (>= %.1f keeps the return-point choice) -> %s", metric, found,
             ENOUGH_RETURN_POINTS, gate["all"], gate["returns"], gate["z"], RETURN_GATE_Z, gate["kept"])
    if gate["kept"] == "returns":
        r_record.update(min_gap_s=min_gap_s, gate=gate, every_point_choice={
            "blend": best.to_dict(), "recent_prior": src})
        return r_best, r_src, r_record
    record["gate"] = {**gate, "return_point_choice": {"blend": r_best.to_dict(), "recent_prior": r_src}}
    return best, src, record


def paired_z(a: np.ndarray, b: np.ndarray) -> float:
    """z of mean(b - a) over its standard error (inf when b is never worse and sometimes
    better, 0 when they never differ)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if len(d) < 2 or not np.any(d):
        return 0.0
    sd = d.std(ddof=1)
    if sd == 0:
        return float(np.sign(d.mean()) * np.inf)
    return float(d.mean() / (sd / np.sqrt(len(d))))


def return_gate(model, priors: Priors, returns: list, metric: str, every: tuple, on_returns: tuple) -> dict:
    """Score both choices (weights, recent prior) on the return points, window items
    excluded; keep the return-point one at ``RETURN_GATE_Z`` paired standard errors."""
    import torch

    tb = torch.as_tensor(TIE_EPS * tie_break(priors.popularity))
    pt = PriorTensors(priors, "cpu", torch.float64)
    cands = [(w, torch.as_tensor(np.asarray(r, dtype=np.float64))) for w, r in (every, on_returns)]
    ranks = [[], []]
    for targets, gaps, excluded, p_model, p_trans, logp in _chunks(model, priors, returns, pt, True):
        for i, (w, recent) in enumerate(cands):
            ranks[i].append(_ranks(w, gaps, targets, excluded, p_model, p_trans, recent, tb, logp))
    a, b = (point_values(np.concatenate(r), metric) for r in ranks)
    z = paired_z(a, b)
    return {"return_points": int(len(a)), "all": float(a.mean()), "returns": float(b.mean()), "z": z,
            "threshold": RETURN_GATE_Z, "kept": "returns" if z >= RETURN_GATE_Z else "all",
            "reason": f"paired z vs {RETURN_GATE_Z}"}


def _choose_on(model, priors: Priors, batches: list, metric: str, recent_options: dict, ks,
               exclude: bool) -> tuple[BlendWeights, str, dict]:
    """The grid search of :func:`choose_weights` on ``batches`` (``exclude``: the window's
    items excluded per point, as on return points)."""
    import torch

    objective = "returns" if exclude else "all"
    tb_np = TIE_EPS * tie_break(priors.popularity)
    tb = torch.as_tensor(tb_np)
    pt = PriorTensors(priors, "cpu", torch.float64)
    model.eval()
    sources = sorted(recent_options)
    src_acc = {k: RankingMetrics(ks=tuple(ks)) for k in sources}
    if exclude:  # the window's items excluded per point: dense ranks (few points)
        dense = {k: torch.as_tensor(np.asarray(recent_options[k], dtype=np.float64)) + tb for k in sources}
        for targets, _, excluded, _, _, _ in _chunks(model, priors, batches, pt, exclude):
            for k in sources:
                sc = torch.where(excluded, torch.full_like(excluded, float("-inf"), dtype=torch.float64),
                                 dense[k].expand(len(targets), -1))
                src_acc[k].add(ranks_of_targets(sc, targets))
    else:
        for batch, rows, positions in batches:
            targets = np.asarray(batch["target_items"])[rows, positions].astype(np.int64)
            for k in sources:
                src_acc[k].add(_fixed_ranks(np.array(recent_options[k], dtype=np.float64), targets, tb_np))
    src_scores = {k: src_acc[k].result()[metric] for k in sources}
    best_src = max(sources, key=lambda k: (src_scores[k], k == "popularity", k))
    recent = torch.as_tensor(np.asarray(recent_options[best_src], dtype=np.float64))
    grid = [MODEL_ONLY] + weight_grid()
    acc = [RankingMetrics(ks=tuple(ks)) for _ in grid]
    seen = 0
    for targets, gaps, excluded, p_model, p_trans, logp in _chunks(model, priors, batches, pt, exclude):
        for i, w in enumerate(grid):
            acc[i].add(_ranks(w, None, targets, excluded, p_model, p_trans, recent, tb, logp))
        seen += len(targets)
    table = {}
    best, best_score = None, None
    model_score = acc[0].result()[metric]
    for w, a in zip(grid[1:], acc[1:]):
        score = a.result()[metric]
        table[grid_key(w)] = score
        if w.uses_model and (best_score is None or score > best_score):
            best, best_score = w, score
    # Gap half-lives, jointly with the blend weights (trust that fades moves the model's
    # share to recent popularity, or fades its power, so the best weights with a half-life
    # differ from those without), on the first GAP_MAX_POINTS points; h = 0 is scored on the
    # same points.
    options = [BlendWeights(w.model, w.transitions, w.recent, w.smoothing, h, w.model_power)
               for h in GAP_HALF_LIVES_DAYS for w in grid[1:] if w.uses_model]
    gap_acc = [RankingMetrics(ks=tuple(ks)) for _ in options]
    gap_batches = list(_points((b for b, _, _ in batches), GAP_MAX_POINTS)) if not exclude else batches
    for targets, gaps, excluded, p_model, p_trans, logp in _chunks(model, priors, gap_batches, pt, exclude):
        for i, w in enumerate(options):
            gap_acc[i].add(_ranks(w, gaps, targets, excluded, p_model, p_trans, recent, tb, logp))
    scored = [(a.result()[metric], w) for w, a in zip(options, gap_acc)]
    gap_table: dict = {}
    for score, w in scored:
        key = f"{w.gap_half_life_days:g}"
        gap_table[key] = max(gap_table.get(key, float("-inf")), score)
    off = gap_table["0"]
    top_score, top = max(((sc, w) for sc, w in scored if w.gap_half_life_days > 0),
                         key=lambda x: (x[0], -x[1].gap_half_life_days))
    if top_score > off * (1.0 + GAP_MIN_GAIN) and top_score > off + 1e-12:
        best, best_score = top, top_score  # (scored on the gap subset; the harness rescores it in full)
    rule_key = _best_rule_key(table)
    log.info("blend selection on %d validation points (%s): recent prior %s (%s %.4f alone), model %.4f, best rule "
             "%s %.4f, best blend %s (%s %.4f); by gap half-life (days): %s", seen, objective, best_src, metric,
             src_scores[best_src], model_score, rule_key, table[rule_key], best.to_dict(), metric, best_score,
             {k: round(v, 4) for k, v in gap_table.items()})
    return best, best_src, {"points": seen, "objective": objective,
                            "recent_sources": src_scores, "grid": table, "gap_half_life_days": gap_table,
                            "on_these_points": {"model": model_score, "blend": best_score, "rule": table[rule_key]}}


def _best_rule_key(table: dict) -> str:
    cands = [(v, k) for k, v in table.items() if "^" not in k and float(k.split("/")[0]) == 0.0]
    return max(cands, key=lambda x: (x[0], x[1]))[1]


def best_rule(table: dict) -> BlendWeights:
    """The best grid point without the model (the rule: transitions and/or recent popularity)."""
    wm, wt, wr = (float(x) for x in _best_rule_key(table).split("/"))
    return BlendWeights(wm, wt, wr)


def pick(valid: dict, metric: str, min_gain: float = MIN_GAIN) -> str:
    """``model`` unless blend or rule beats it by more than ``min_gain`` (relative)."""
    model = valid["model"][metric]
    best = max(("blend", "rule"), key=lambda k: valid[k][metric])
    if valid[best][metric] > model * (1.0 + min_gain) and valid[best][metric] > model + 1e-12:
        return best
    return "model"


def baselines_and_selection(model, root: str | Path, cfg, info: dict, metrics: dict) -> tuple[bytes, dict, tuple]:
    """Add ``baselines`` and ``selection`` to ``metrics``; return (priors.npz bytes, the
    artifact's ``scorer`` record, the pairs it read: (train targets, every split's previous
    items, every split's next items), which the cold-item fill reuses instead of reading
    the windows again). ``cfg``: the TrainConfig (eval batch size, metric)."""
    from ..training.loaders import read_split, to_url

    import copy

    model = copy.deepcopy(model).cpu().eval()  # selection runs on CPU, whatever device trained
    from ..layout import fs

    root = Path(fs.local_path(str(root)) or root)  # the pyarrow loader reads local windows
    n = int(info["num_items"])
    metric = cfg.early_stopping_metric
    bs = cfg.eval_batch_size

    def split(name: str):
        return read_split(to_url(str(root / name)), bs)

    src, dst = training_pairs(split("train"))
    has_valid = int((info.get("targets") or {}).get("valid", 1)) > 0
    has_test = int((info.get("targets") or {}).get("test", 1)) > 0  # an empty test split is not scored
    splits = (["valid"] if has_valid else []) + (["test"] if cfg.evaluate_test and has_test else [])
    base = {"popularity": PopularityBaseline(n, dst), "transitions": TransitionBaseline(n, src, dst)}
    baselines: dict = {}
    for s in splits:
        baselines[s] = {name: evaluate(b, split(s))[0] for name, b in base.items()}
        for name, m in baselines[s].items():
            log.info("baseline %s on %s: %s", name, s, ", ".join(f"{k} {v:.4f}" for k, v in sorted(m.items())
                                                              if isinstance(v, float)))
    metrics["baselines"] = baselines
    if not has_valid:
        # A refit without a validation split (stage 1 with valid_start == test_start): nothing
        # to choose a blend on, so 'auto' keeps the model; the priors still ship for 'blend'/'rule'.
        log.warning("no validation split: no blend or rule selection; scorer='auto' publishes the model")
        scorer = {"choice": "model", "metric": metric, "min_gain": MIN_GAIN, "blend": MODEL_ONLY.to_dict(),
                  "rule": BlendWeights(0.0, 1.0, 0.0).to_dict(), "recent_prior": "popularity",
                  "priors": "priors.npz", "valid": {}, "reason": "no validation split"}
        metrics["selection"] = dict(scorer)
        return fit_priors(n, src, dst).to_bytes(), scorer, (dst, *every_split_pairs(root, src, dst, split))
    model_valid, trans_valid = (metrics.get("valid") or {}).get(metric), baselines["valid"]["transitions"][metric]
    if model_valid is not None and model_valid <= trans_valid:
        log.warning("the model does not beat the item-transition baseline on validation: %s %.4f <= %.4f; "
                    "scorer='auto' will publish the rule or a blend if it is better (see metrics.json 'selection')",
                    metric, model_valid, trans_valid)

    train_decay = _priors_inputs(root, n, TRAIN_DECAY_PREFIX)
    fitted = fit_priors(n, src, dst)
    recent_options = {"popularity": fitted.popularity,
                      **{f"decay_{k}": normalised(v) for k, v in train_decay.items()}}
    pinned = getattr(cfg, "recent_prior", "auto")
    if pinned != "auto":
        if pinned not in recent_options:
            from ..config import ConfigError

            raise ConfigError(f"recent_prior={pinned!r} is not in this dataset; it has {sorted(recent_options)} "
                              f"(stage 1's item_stats); set 'recent_prior' to one of them or 'auto'")
        recent_options = {pinned: recent_options[pinned]}
    min_gap_s = float(getattr(cfg, "selection_min_gap_hours", 0.0)) * 3600.0
    weights, recent_src, record = choose_weights(model, fitted, split("valid"), metric, recent_options,
                                                 min_gap_s=min_gap_s)
    rule = best_rule(record["grid"])
    valid_priors = _with_recent(fitted, recent_options[recent_src], recent_src)
    scored: dict = {}
    for s in splits:
        scored[s] = {"model": metrics["valid"] if s == "valid" else metrics.get("test"),
                     "blend": evaluate(BlendScorer(model, valid_priors, weights), split(s))[0],
                     "rule": evaluate(BlendScorer(model, valid_priors, rule), split(s))[0]}
    if scored["valid"]["model"] is None:
        scored["valid"]["model"] = evaluate(BlendScorer(model, valid_priors, MODEL_ONLY), split("valid"))[0]
    if record["objective"] == "returns":
        # Chosen where the tables are judged: the return points, window items excluded.
        on = record["on_these_points"]
        choice = pick({k: {metric: v} for k, v in on.items()}, metric)
        log.info("scorer selection on %d validation return points (%s, window items excluded): model %.4f, "
                 "blend %.4f, rule %.4f -> auto publishes %s", record["points"], metric, on["model"], on["blend"],
                 on["rule"], choice)
    else:
        choice = pick(scored["valid"], metric)
        log.info("scorer selection on validation (%s): model %.4f, blend %.4f, rule %.4f -> auto publishes %s",
                 metric, scored["valid"]["model"][metric], scored["valid"]["blend"][metric],
                 scored["valid"]["rule"][metric], choice)

    # The shipped priors: every split's pairs, decayed popularity as of the last event.
    all_src, all_dst = every_split_pairs(root, src, dst, split)
    decay = _priors_inputs(root, n, DECAY_PREFIX)
    recent_counts = decay.get(recent_src[len("decay_"):]) if recent_src.startswith("decay_") else None
    shipped = fit_priors(n, all_src, all_dst, recent_counts, recent_src)
    scorer = {"choice": choice, "metric": metric, "min_gain": MIN_GAIN,
              "blend": weights.to_dict(), "rule": rule.to_dict(), "recent_prior": recent_src,
              "priors": "priors.npz", "valid": {k: v[metric] for k, v in scored["valid"].items()},
              "objective": record["objective"]}
    metrics["selection"] = {**scorer, "scorers": scored, "grid": record}
    return shipped.to_bytes(), scorer, (dst, all_src, all_dst)


def every_split_pairs(root: Path, src: np.ndarray, dst: np.ndarray, split) -> tuple[np.ndarray, np.ndarray]:
    """The train pairs (``src``, ``dst``) followed by the valid and test splits' (a split
    that is missing or has no counted target adds nothing)."""
    all_src, all_dst = [src], [dst]
    for s in ("valid", "test"):
        if (root / s).exists():
            try:
                a, b = training_pairs(split(s))
            except ValueError:
                continue
            all_src.append(a)
            all_dst.append(b)
    return np.concatenate(all_src), np.concatenate(all_dst)


def _with_recent(p: Priors, recent: np.ndarray, source: str) -> Priors:
    return Priors(p.indptr, p.successors, p.counts, p.popularity, recent, source)
