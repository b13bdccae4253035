"""Rule priors shipped with the model artifact, and the blend of the model with them.

Why: on small or sparse logs a first-order rule (which item followed the last one) can
beat the recurrent model, and catalogues drift (items rise and fade). The published
tables should never be worse than such a rule, and the score should follow time, while
the GRU stays the interest model. So every artifact ships *priors* next to the weights,
and scoring can publish (``ScoringConfig.scorer``):

* ``model``: the model's scores (the dot products) as before;
* ``rule``: the transition prior alone (what followed the user's last item in the
  training log, smoothed with popularity), mixed with the recent-popularity prior when
  validation preferred that;
* ``blend``: either a mixture in probability space of the three,
  ``w_model * softmax(model) + w_trans * P(next | last item) + w_recent * P_recent``,
  or (``model_power`` > 0) a product of experts in log space,
  ``log(w_trans * P(next | last item) + w_recent * P_recent) + model_power * log softmax(model)``:
  the rules' candidates reranked by the user's interest. The mixture adds the model's
  favourites to what is popular; the product personalises what is popular, which is what
  wins when returning users follow the catalogue's new releases (ml-latest-small, issue 13).
  The form and the weights are chosen on the validation split at training time
  (``evaluation.selection``) and stored in the artifact.

``P(j | a) = (c(a, j) + smoothing * P_pop(j)) / (n(a) + smoothing)``: ``c`` are the
transition counts (the top ``top_n`` successors of each item are kept, a sparse CSR
table), ``n(a)`` their sum; an item never seen as a predecessor falls back to
popularity. ``P_recent`` is a time-decayed popularity (stage 1's ``item_stats``) when
the dataset has it, else plain popularity.

The priors travel as one ``.npz`` of plain arrays (read with ``allow_pickle=False``),
broadcast as bytes like the weights: no pickle, no Python object crosses the wire.
This module needs numpy and torch only (training imports it; it never imports pyspark).
"""
from __future__ import annotations

import functools
import io
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np

PRIORS_FILE = "priors.npz"
PAD_INDEX, UNKNOWN_INDEX = 0, 1
SCORERS = ("model", "blend", "rule")
PRIORS_FORMAT = 1
PRODUCT_FLOOR = 1e-12
"""Added to the rule mixture before its log in the product form: an item no rule has seen
(decayed popularity underflows to 0 for items last seen years ago) stays rankable, below
every item a rule knows, ordered by the model."""


@dataclass(frozen=True)
class BlendWeights:
    """Mixture weights (they sum to 1), the popularity smoothing of the transition prior, and
    how fast trust in the recurrent state fades with the time since the user's last event.

    With ``gap_half_life_days`` h > 0, a user whose last event is ``g`` days old gets
    ``model * 2 ** (-g / h)`` for the model and the rest of the model's share moves to the
    recent-popularity prior: after a long absence, what is popular now says more than the
    state left by the last session (issue 13)."""

    model: float
    transitions: float
    recent: float
    smoothing: float = 1.0
    gap_half_life_days: float = 0.0
    """0 = the model's share does not depend on the gap."""
    model_power: float = 0.0
    """0 = the mixture. > 0 = the product form: the model enters only as
    ``softmax(model) ** model_power`` times the rule mixture (``model`` must then be 0),
    and after a gap of ``g`` days the power fades to ``model_power * 2 ** (-g / h)``."""

    def __post_init__(self) -> None:
        for name in ("model", "transitions", "recent"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"blend weight {name}={v} must be in [0, 1]")
        if abs(self.model + self.transitions + self.recent - 1.0) > 1e-6:
            raise ValueError(f"blend weights must sum to 1, got {self.model}+{self.transitions}+{self.recent}")
        if self.smoothing <= 0:
            raise ValueError(f"blend smoothing must be > 0, got {self.smoothing}")
        if self.gap_half_life_days < 0:
            raise ValueError(f"blend gap_half_life_days must be >= 0, got {self.gap_half_life_days}")
        if self.model_power < 0:
            raise ValueError(f"blend model_power must be >= 0, got {self.model_power}")
        if self.model_power > 0 and self.model > 0:
            raise ValueError(f"blend model_power={self.model_power} (the product form) needs model=0: the model "
                             f"enters as a power of softmax(model), not as a mixture weight (got model={self.model})")

    @property
    def product(self) -> bool:
        """True for the product form (``log rules + model_power * log softmax(model)``)."""
        return self.model_power > 0

    @property
    def uses_model(self) -> bool:
        return self.model > 0 or self.model_power > 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BlendWeights":
        return cls(float(d["model"]), float(d["transitions"]), float(d["recent"]), float(d.get("smoothing", 1.0)),
                   float(d.get("gap_half_life_days", 0.0)), float(d.get("model_power", 0.0)))

    def as_tuple(self) -> tuple:
        """The fields in order, for the broadcast payload and the settings fingerprint. A
        mixture leaves ``model_power`` out, so its fingerprint is what it was before the
        product form existed (no needless recompute of incremental tables)."""
        t = tuple(self.to_dict().values())
        return t if self.product else t[:-1]

    def trust(self, gaps_s) -> np.ndarray | float:
        """The share of ``model`` kept after ``gaps_s`` seconds without events (NaN: unknown, 1)."""
        if self.gap_half_life_days <= 0 or gaps_s is None:
            return 1.0
        g = np.clip(np.asarray(gaps_s, dtype=np.float64), 0.0, None)
        t = np.exp2(-g / (self.gap_half_life_days * 86400.0))
        return np.where(np.isnan(t), 1.0, t)


MODEL_ONLY = BlendWeights(1.0, 0.0, 0.0)


@dataclass(frozen=True)
class Priors:
    """Rule priors over the model's vocabulary indexes (0 = pad and 1 = unknown get 0)."""

    indptr: np.ndarray       # int64 (N + 1,): successors of item a are [indptr[a], indptr[a+1])
    successors: np.ndarray   # int32: successor item indexes, best first
    counts: np.ndarray       # float32: how often each successor followed a
    popularity: np.ndarray   # float64 (N,): P_pop, sums to 1 over real items
    recent: np.ndarray       # float64 (N,): P_recent, sums to 1 over real items
    recent_source: str       # what P_recent is, e.g. "decay_7d" or "popularity"

    @property
    def num_items(self) -> int:
        return len(self.popularity)

    @functools.cached_property
    def totals(self) -> np.ndarray:
        """n(a): the kept successor counts of each item, summed (computed once per worker)."""
        csum = np.r_[0.0, np.cumsum(self.counts, dtype=np.float64)]
        return csum[self.indptr[1:]] - csum[self.indptr[:-1]]

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, format=np.array([PRIORS_FORMAT], dtype=np.int64), indptr=self.indptr,
                 successors=self.successors, counts=self.counts, popularity=self.popularity,
                 recent=self.recent, recent_source=np.array([self.recent_source]))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Priors":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            fmt = int(z["format"][0])
            if fmt != PRIORS_FORMAT:
                raise ValueError(f"{PRIORS_FILE} has format {fmt}, this code reads {PRIORS_FORMAT}; retrain the model")
            return cls(z["indptr"].astype(np.int64), z["successors"].astype(np.int32),
                       z["counts"].astype(np.float32), z["popularity"].astype(np.float64),
                       z["recent"].astype(np.float64), str(z["recent_source"][0]))

    def transition_terms(self, last_items: np.ndarray, smoothing: float):
        """Per point: the popularity coefficient ``s / (n(a) + s)`` and the sparse part
        ``(row, item, c(a, item) / (n(a) + s))`` of ``P(. | a)``."""
        a = np.asarray(last_items, dtype=np.int64)
        a = np.where((a >= 0) & (a < self.num_items), a, PAD_INDEX)
        starts, ends = self.indptr[a], self.indptr[a + 1]
        lens = ends - starts
        denom = self.totals[a] + smoothing
        pop_coef = smoothing / denom
        rows = np.repeat(np.arange(len(a)), lens)
        offs = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
        pos = np.repeat(starts, lens) + offs
        vals = self.counts[pos].astype(np.float64) / denom[rows]
        return pop_coef, rows, self.successors[pos].astype(np.int64), vals


def normalised(counts: np.ndarray) -> np.ndarray:
    p = np.asarray(counts, dtype=np.float64).copy()
    p[[PAD_INDEX, UNKNOWN_INDEX]] = 0.0
    p = np.clip(p, 0.0, None)
    s = p.sum()
    if s <= 0:  # nothing seen: uniform over real items
        p[:] = 1.0
        p[[PAD_INDEX, UNKNOWN_INDEX]] = 0.0
        s = p.sum()
    return p / s


def fit_priors(num_items: int, src: np.ndarray, dst: np.ndarray, recent_counts: Optional[np.ndarray] = None,
               recent_source: str = "popularity", top_n: int = 100) -> Priors:
    """Priors from (previous item, next item) pairs; ``recent_counts`` (per index) is the
    time-decayed popularity, or None to use plain popularity."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    ok = (src > UNKNOWN_INDEX) & (dst > UNKNOWN_INDEX) & (src < num_items) & (dst < num_items)
    src, dst = src[ok], dst[ok]
    pop = normalised(np.bincount(dst, minlength=num_items)[:num_items])
    key = src * num_items + dst
    uniq, cnt = np.unique(key, return_counts=True)
    s, d = uniq // num_items, uniq % num_items
    # best first per source: count descending, then popularity descending, then index
    order = np.lexsort((d, -pop[d], -cnt, s))
    s, d, cnt = s[order], d[order], cnt[order]
    first = np.searchsorted(s, s, side="left")
    keep = (np.arange(len(s)) - first) < top_n
    s, d, cnt = s[keep], d[keep], cnt[keep]
    indptr = np.searchsorted(s, np.arange(num_items + 1)).astype(np.int64)
    recent = pop if recent_counts is None else normalised(np.asarray(recent_counts)[:num_items])
    return Priors(indptr, d.astype(np.int32), cnt.astype(np.float32), pop, recent,
                  "popularity" if recent_counts is None else recent_source)


def tie_break(popularity: np.ndarray) -> np.ndarray:
    """A value in [0, 0.5) that orders items by popularity, then by index (deterministic)."""
    n = len(popularity)
    order = np.lexsort((np.arange(n), popularity))
    tb = np.empty(n, dtype=np.float64)
    tb[order] = np.arange(n) / (2.0 * n)
    return tb


class BlendTerms:
    """The per-user parts of the blend for one batch of users, as torch tensors on ``device``.

    ``score = model_coef * softmax(logits) + pop_coef * P_pop + recent_coef * P_recent
    + sparse(rows, cols, vals)``, or for the product form
    ``log(pop_coef * P_pop + recent_coef * P_recent + sparse + PRODUCT_FLOOR) + power * log softmax(logits)``;
    ``gaps_s``: seconds since each user's last event (for ``weights.gap_half_life_days``),
    None when unknown.
    """

    def __init__(self, priors: Priors, weights: BlendWeights, last_items: np.ndarray, device, dtype, gaps_s=None):
        import torch

        n = len(last_items)
        pop_coef, rows, cols, vals = priors.transition_terms(last_items, weights.smoothing)
        trust = np.broadcast_to(np.asarray(weights.trust(gaps_s), dtype=np.float64), (n,))
        self.model_coef = torch.as_tensor(weights.model * trust, dtype=dtype, device=device).view(n, 1)
        self.pop_coef = torch.as_tensor(weights.transitions * pop_coef, dtype=dtype, device=device).view(n, 1)
        self.recent_coef = torch.as_tensor(weights.recent + weights.model * (1.0 - trust), dtype=dtype,
                                           device=device).view(n, 1)
        self.rows = torch.as_tensor(rows, device=device)
        self.cols = torch.as_tensor(cols, device=device)
        self.vals = torch.as_tensor(weights.transitions * vals, dtype=dtype, device=device)
        self.use_model = weights.uses_model
        self.product = weights.product
        self.power = torch.as_tensor(weights.model_power * trust, dtype=dtype, device=device).view(n, 1)


class PriorTensors:
    """The dense priors as tensors on one device (built once per worker / evaluation)."""

    def __init__(self, priors: Priors, device, dtype, width: Optional[int] = None):
        import torch

        width = width or priors.num_items
        pop = np.zeros(width)
        rec = np.zeros(width)
        pop[:priors.num_items] = priors.popularity
        rec[:priors.num_items] = priors.recent
        self.priors = priors
        self.popularity = torch.as_tensor(pop, dtype=dtype, device=device)
        self.recent = torch.as_tensor(rec, dtype=dtype, device=device)


def blend_block(logits, lse, terms: BlendTerms, pt: PriorTensors, b0: int, b1: int):
    """Blended scores of items ``[b0, b1)`` for every user of ``terms``: ``(n, b1 - b0)``.

    ``logits``: the model's scores of those items (-inf for excluded ones); ``lse``: the
    users' log-sum-exp of the logits over the whole catalogue (n, 1). Items whose logit is
    -inf (padding, unknown, unavailable) stay -inf: a prior never brings them back.
    """
    import torch

    dense = terms.pop_coef * pt.popularity[b0:b1] + terms.recent_coef * pt.recent[b0:b1]
    if terms.product:
        out = dense
    else:
        out = terms.model_coef * torch.exp(logits - lse) + dense if terms.use_model else dense
    if len(terms.cols):
        sel = (terms.cols >= b0) & (terms.cols < b1)
        if bool(sel.any()):
            out.index_put_((terms.rows[sel], terms.cols[sel] - b0), terms.vals[sel], accumulate=True)
    if terms.product:
        out = torch.log(out + PRODUCT_FLOOR) + terms.power * (logits - lse)
    return torch.where(torch.isneginf(logits), logits, out)


def weights_for(scorer_record: Optional[dict], choice: str) -> BlendWeights:
    """The weights scoring uses for ``choice`` ('model', 'blend' or 'rule') from the
    artifact's ``scorer`` record."""
    if choice == "model" or scorer_record is None:
        return MODEL_ONLY
    return BlendWeights.from_dict(scorer_record[choice])


def resolve_scorer(requested: str, artifact_url: str, manifest: dict) -> tuple[str, BlendWeights, Optional[bytes]]:
    """(published scorer, its weights, priors.npz bytes or None) for ``ScoringConfig.scorer``.

    ``auto`` follows the artifact's ``scorer.choice`` (chosen on validation at training
    time); an artifact without one (trained before selection existed) publishes the model.
    ``blend``/``rule`` need the artifact's priors and fail with the fix otherwise.
    """
    from ..config import ConfigError
    from ..layout import fs

    record = manifest.get("scorer") if isinstance(manifest.get("scorer"), dict) else None
    if requested == "model":
        return "model", MODEL_ONLY, None
    if record is None:
        if requested == "auto":
            return "model", MODEL_ONLY, None
        raise ConfigError(f"scorer={requested!r} needs the rule priors, but {artifact_url}/artifact.json has no "
                          "'scorer' record (the model was trained before baselines/selection existed); retrain it "
                          "or set scorer=model")
    choice = record.get("choice", "model") if requested == "auto" else requested
    if choice not in SCORERS:
        raise ConfigError(f"{artifact_url}/artifact.json scorer.choice={choice!r} is not one of {SCORERS}; retrain")
    if choice == "model":
        return "model", MODEL_ONLY, None
    url = fs.join(artifact_url, record.get("priors", PRIORS_FILE))
    if not fs.is_file(url):
        raise ConfigError(f"scorer={requested!r} ({choice}) needs {url}, which is missing; retrain or set scorer=model")
    return choice, weights_for(record, choice), fs.read_bytes(url)


def blended_topk(vectors, items_aug, pt: PriorTensors, weights: BlendWeights, last_items: np.ndarray, k: int,
                 consumed=None, batch_size: int = 256, item_block_size: int = 16384, gaps_s=None):
    """Top-``k`` of the blend per row of ``vectors``: the same contract and determinism as
    ``topk.blocked_topk`` (fixed ``batch_size`` rows per product, score descending then
    index ascending, -1/-inf past the eligible items), in two passes over the item
    blocks: the softmax normaliser first, then the blended scores."""
    import torch

    from .topk import item_blocks, select_topk

    n = vectors.shape[0]
    num_items, item_block_size = item_blocks(items_aug, item_block_size)
    device = items_aug.device
    dtype = items_aug.dtype
    out_idx = np.full((n, k), -1, dtype=np.int32)
    out_score = np.full((n, k), -np.inf, dtype=np.float32)
    ones = torch.ones((batch_size, 1), dtype=dtype, device=device)
    last_items = np.asarray(last_items, dtype=np.int64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        rows = stop - start
        v = torch.zeros((batch_size, vectors.shape[1]), dtype=dtype, device=device)
        v[:rows] = vectors[start:stop].to(device=device, dtype=dtype)
        v = torch.cat([v, ones], dim=1)
        last = np.zeros(batch_size, dtype=np.int64)
        last[:rows] = last_items[start:stop]
        gaps = None
        if gaps_s is not None:
            gaps = np.zeros(batch_size, dtype=np.float64)
            gaps[:rows] = np.asarray(gaps_s, dtype=np.float64)[start:stop]
        terms = BlendTerms(pt.priors, weights, last, device, dtype, gaps)
        lse = torch.full((batch_size, 1), float("-inf"), dtype=dtype, device=device)
        for b0 in range(0, num_items, item_block_size):
            s = v @ items_aug[b0:min(b0 + item_block_size, num_items)].T
            lse = torch.logaddexp(lse, torch.logsumexp(s, dim=1, keepdim=True))
        i_np, s_np = select_topk(lambda b0, b1: blend_block(v @ items_aug[b0:b1].T, lse, terms, pt, b0, b1),
                                 num_items, item_block_size, k, consumed, start, stop, batch_size, dtype, device)
        w = s_np.shape[1]
        out_idx[start:stop, :w] = i_np
        out_score[start:stop, :w] = s_np
    return out_idx, out_score
