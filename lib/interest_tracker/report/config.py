"""Typed configuration of the pipeline report (validated before Spark starts)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..config import require


@dataclass(frozen=True)
class ReportConfig:
    events_root: str
    """Stage-1 output root (reports/, sessions/, events/ under it); a URL or a local path."""
    artifact_root: str
    """Model artifacts; ``{artifact_root}/_LATEST`` names the version unless model_version is set."""
    warehouse_root: str
    """Scoring tables; the drift table is ``{warehouse_root}/user_interest_drift``."""
    report_dir: str
    """Where the HTML lands (``{report_dir}/run_date=D/index.html``). Written by the driver,
    so a local path or ``file://`` URL; copy it to object storage afterwards if needed."""
    model_version: Optional[str] = None
    max_bucket: int = 30
    """Histograms of counts group values >= this into one last bar ("30+")."""
    drift_bins: int = 20
    """Bars of the cosine-similarity histogram over [-1, 1]."""
    item_categories_path: Optional[str] = None
    """Optional parquet with item_id and category (the file scoring's item_categories_path
    reads): the interest timeline plots each event's category. Without it the timeline
    section lists the sample users' cosine similarities instead."""
    timeline_users: int = 3
    """Sample users in the interest timeline (those whose interest moved most)."""
    allow_missing: bool = True
    """True: a stage whose output is absent gets a section that says so (and why), and the
    report is still written. False: any missing input fails the job (use after a full run)."""

    def __post_init__(self) -> None:
        for name in ("events_root", "artifact_root", "warehouse_root", "report_dir"):
            require(bool(getattr(self, name)), f"'{name}' is required; set it in the config or --set {name}=...")
        require(not ("://" in self.report_dir and not self.report_dir.startswith("file://")),
                f"'report_dir' must be a local path or file:// URL (the driver writes it), got {self.report_dir!r}")
        require(2 <= self.max_bucket <= 1000, f"'max_bucket' must be in 2..1000, got {self.max_bucket}")
        require(2 <= self.drift_bins <= 200, f"'drift_bins' must be in 2..200, got {self.drift_bins}")
        require(1 <= self.timeline_users <= 20, f"'timeline_users' must be in 1..20, got {self.timeline_users}")
