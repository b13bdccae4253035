"""Full-ranking metrics and baselines, shared by training, the job and the benchmarks."""
from .metrics import RankingMetrics, ranks_of_targets, ranks_from_lists

__all__ = ["RankingMetrics", "ranks_of_targets", "ranks_from_lists"]
