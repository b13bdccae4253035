"""Recurrent interest model.

Input per position: item embedding + event-type embedding + log time gap + session-start
flag. A GRU/LSTM runs over the user's sequence; its state is projected into the item
embedding space. That projection is the user's *interest vector*: scores for all items
are its dot product with the item embeddings, so top-K scoring is one matrix product,
and the vector after the latest event is what the scoring stage writes.
"""
from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .config import ModelConfig

PAD_INDEX = 0
UNKNOWN_INDEX = 1


class InterestModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.item_embedding = nn.Embedding(c.num_items, c.embedding_dim, padding_idx=PAD_INDEX)
        self.event_type_embedding = nn.Embedding(c.num_event_types, c.event_type_dim, padding_idx=PAD_INDEX)
        extra = 2 if c.use_time_gap else 1  # log gap (optional) + session-start flag
        rnn_cls = nn.GRU if c.cell == "gru" else nn.LSTM
        self.rnn = rnn_cls(
            input_size=c.embedding_dim + c.event_type_dim + extra,
            hidden_size=c.hidden_size,
            num_layers=c.num_layers,
            batch_first=True,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
        )
        self.embedding_dropout = nn.Dropout(c.embedding_dropout)
        self.output_dropout = nn.Dropout(c.dropout)
        self.projection = nn.Linear(c.hidden_size, c.embedding_dim)
        if c.tied_embeddings:
            self.output_embedding = None
        else:
            self.output_embedding = nn.Embedding(c.num_items, c.embedding_dim, padding_idx=PAD_INDEX)
        self.output_bias = nn.Parameter(torch.zeros(c.num_items))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        std = self.config.embedding_dim ** -0.5
        nn.init.normal_(self.item_embedding.weight, 0.0, std)
        if self.output_embedding is not None:
            nn.init.normal_(self.output_embedding.weight, 0.0, std)
        with torch.no_grad():
            self.item_embedding.weight[PAD_INDEX].zero_()

    @property
    def vector_dim(self) -> int:
        """Width of the interest vector (what ``user_interest`` stores)."""
        return self.config.embedding_dim

    @property
    def towers(self) -> list["InterestModel"]:
        """The networks that are trained, each on its own loss: this one."""
        return [self]

    def item_vectors(self) -> torch.Tensor:
        """(num_items, embedding_dim) output item embeddings used for scoring."""
        table = self.item_embedding if self.output_embedding is None else self.output_embedding
        return table.weight

    def forward(
        self,
        items: torch.Tensor,
        event_types: torch.Tensor,
        log_gaps: torch.Tensor,
        session_starts: torch.Tensor,
        lengths: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Interest vectors at every position: (batch, L, embedding_dim).

        Arrays are right-padded; positions past a row's length produce values that
        callers mask out (targets) or skip (see :meth:`encode_last`). With ``lengths`` (a
        CPU int tensor) the RNN runs on packed sequences and stops at each row's length, so
        padding costs no recurrent compute; real positions get the same states either way
        (the RNN is causal) and padded positions then hold the projection of a zero state.
        """
        parts = [
            self.embedding_dropout(self.item_embedding(items)),
            self.event_type_embedding(event_types),
        ]
        if self.config.use_time_gap:
            parts.append(log_gaps.unsqueeze(-1).to(parts[0].dtype))
        parts.append(session_starts.unsqueeze(-1).to(parts[0].dtype))
        x = torch.cat(parts, dim=-1)
        if lengths is None:
            states, _ = self.rnn(x)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True,
                                                       enforce_sorted=False)
            out, _ = self.rnn(packed)
            states, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return self.projection(self.output_dropout(states))

    def encode_last(self, items, event_types, log_gaps, session_starts, lengths) -> torch.Tensor:
        """Interest vector after each row's latest event: (batch, embedding_dim)."""
        states = self.forward(items, event_types, log_gaps, session_starts)
        idx = (lengths.long().clamp(min=1) - 1).view(-1, 1, 1).expand(-1, 1, states.shape[-1])
        return states.gather(1, idx).squeeze(1)

    def score_all(self, vectors: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each vector: (n, num_items). Padding/unknown score -inf."""
        scores = vectors @ self.item_vectors().T + self.output_bias
        scores[:, PAD_INDEX] = float("-inf")
        scores[:, UNKNOWN_INDEX] = float("-inf")
        return scores


class InterestEnsemble(nn.Module):
    """``config.members`` interest models, initialised apart and trained side by side, each on
    its own loader's batches and its own loss; an item's score is the mean of the members' scores.

    Why: the members' errors differ (their initialisations and batch orders do), so the mean
    ranks better than any one of them; on yoochoose-100k four members gained +0.015 Recall@20
    and +0.007 MRR@20 on validation over one (docs/benchmarks.md). A mean of logits is the
    geometric mean of the members' softmax distributions, so the blend with rules
    (evaluation/selection.py) sees one proper model.

    Every caller sees the ``InterestModel`` interface: the interest vector is the members'
    vectors side by side, ``item_vectors()`` their item tables side by side divided by the
    number of members and ``output_bias`` the mean bias, so a score is still one dot product
    and top-K scoring stays one matrix product (scoring/topk.py).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        one = replace(config, members=1)
        self.members = nn.ModuleList(InterestModel(one) for _ in range(config.members))

    @property
    def vector_dim(self) -> int:
        return self.config.embedding_dim * self.config.members

    @property
    def towers(self) -> list[InterestModel]:
        return list(self.members)

    @property
    def output_bias(self) -> torch.Tensor:
        return torch.stack([m.output_bias for m in self.members]).mean(dim=0)

    def item_vectors(self) -> torch.Tensor:
        return torch.cat([m.item_vectors() for m in self.members], dim=1) / len(self.members)

    def forward(self, items, event_types, log_gaps, session_starts, lengths=None) -> torch.Tensor:
        return torch.cat([m(items, event_types, log_gaps, session_starts, lengths=lengths) for m in self.members],
                         dim=-1)

    def encode_last(self, items, event_types, log_gaps, session_starts, lengths) -> torch.Tensor:
        return torch.cat([m.encode_last(items, event_types, log_gaps, session_starts, lengths)
                          for m in self.members], dim=-1)

    score_all = InterestModel.score_all


def build_model(config: ModelConfig) -> InterestModel | InterestEnsemble:
    """The network a config describes: one ``InterestModel``, or an ensemble of ``members``."""
    return InterestModel(config) if config.members == 1 else InterestEnsemble(config)
