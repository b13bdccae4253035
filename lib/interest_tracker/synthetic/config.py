"""Configuration of the synthetic behaviour-log generator.

Every knob is a typed field with a visible default, validated in ``__post_init__``
so a bad value fails on the driver before Spark starts. The validations also keep
the generator's promises to the cleaner: an ordinary user can never look like a bot
(gaps > 1 s, at most 5000 events), a bot always does, and every injected row breaks
exactly one rule so the cleaner's counts reconcile with :attr:`SyntheticData.injected`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from ..config import ConfigError, require

TimeFormat = Literal["epoch_s", "epoch_ms", "iso", "mixed"]
RawFormat = Literal["jsonl", "csv", "parquet"]

#: Event types the cleaner accepts by default, with the generator's default mix.
DEFAULT_EVENT_TYPE_WEIGHTS = {"view": 0.70, "click": 0.20, "add_to_cart": 0.07, "purchase": 0.03}

#: Injected kinds in the order their probability ranges are laid out on [0, 1).
INJECTION_KINDS = (
    "malformed",
    "missing_field",
    "oversized_field",
    "bad_time",
    "out_of_window",
    "unknown_event_type",
    "exact_duplicate",
    "replay",
)

#: The cleaner's reject reason for each injected kind (duplicates and bots are not rejects).
REJECT_REASON_OF_KIND = {
    "malformed": "MALFORMED",
    "missing_field": "MISSING_FIELD",
    "oversized_field": "OVERSIZED_FIELD",
    "bad_time": "BAD_TIME",
    "out_of_window": "TIME_OUT_OF_WINDOW",
    "unknown_event_type": "UNKNOWN_EVENT_TYPE",
}


@dataclass(frozen=True)
class InjectionConfig:
    """Faults to inject. Each rate is the probability that a generated event gets one
    extra faulty row of that kind; rates are exclusive, so they must sum to <= 1.

    Bots are extra users (``bot0000``...) that emit ``bot_events_per_bot`` valid events
    every ``bot_interval_ms``: faster than the cleaner's 60-events-per-60-s rule.
    """

    malformed: float = 0.0
    missing_field: float = 0.0
    oversized_field: float = 0.0
    bad_time: float = 0.0
    out_of_window: float = 0.0
    unknown_event_type: float = 0.0
    exact_duplicate: float = 0.0
    replay: float = 0.0
    num_bots: int = 0
    bot_events_per_bot: int = 200
    bot_interval_ms: int = 500
    #: the cleaner's max_field_length; oversized rows exceed it by this many characters
    max_field_length: int = 256

    def __post_init__(self) -> None:
        for kind in INJECTION_KINDS:
            rate = getattr(self, kind)
            require(0.0 <= rate <= 1.0, f"'injection.{kind}' must be in [0, 1], got {rate}")
        total = sum(getattr(self, k) for k in INJECTION_KINDS)
        require(total <= 1.0, f"injection rates sum to {total:.3f}; they are exclusive, keep the sum <= 1")
        require(self.num_bots >= 0, f"'injection.num_bots' must be >= 0, got {self.num_bots}")
        require(self.bot_events_per_bot > 60,
                f"'injection.bot_events_per_bot' must be > 60 so a bot breaks the 60-events-per-minute rule, "
                f"got {self.bot_events_per_bot}")
        require(0 < self.bot_interval_ms < 1000,
                f"'injection.bot_interval_ms' must be in (0, 1000) so 61 events fit in 60 s, got {self.bot_interval_ms}")
        require(self.max_field_length >= 16,
                f"'injection.max_field_length' must be >= 16 (the cleaner's limit), got {self.max_field_length}")

    def rate_of(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass(frozen=True)
class SyntheticConfig:
    """Shape of the synthetic population. Defaults give a small, clean data set."""

    num_users: int = 1000
    num_items: int = 5000
    num_categories: int = 20
    #: mean events per user; each user draws min + Exponential(mean - min), capped at max
    events_per_user: float = 100.0
    min_events_per_user: int = 20
    max_events_per_user: int = 1000
    #: exponent s of the item popularity power law (s = 1: log-uniform ranks)
    zipf_exponent: float = 1.0
    #: probability that a fresh item comes from the user's current interest category
    #: (else from global popularity)
    p_interest: float = 0.6
    #: probability that the next item is the within-category successor of the previous one
    p_sequential: float = 0.25
    #: interest moves per user, at known event indexes (kept as ground truth)
    switches_per_user: int = 1
    #: mean events per session: a new session starts with probability 1 / this
    mean_session_events: float = 8.0
    #: within-session gaps: Exponential(mean), clipped to [min, max] seconds
    within_gap_mean_s: float = 45.0
    within_gap_min_s: float = 2.0
    within_gap_max_s: float = 600.0
    #: between-session gaps: log-uniform in [min, max] seconds
    between_gap_min_s: float = 3600.0
    between_gap_max_s: float = 259200.0
    #: every user's last event is within end_spread_s before end_time (ISO-8601 with zone);
    #: None: the job sets it from --run-date (end of that day, UTC)
    end_time: str | None = None
    end_spread_s: float = 86400.0
    event_type_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_EVENT_TYPE_WEIGHTS))
    #: fraction of events with an attributes JSON object (else null)
    p_attributes: float = 0.5
    #: fraction of catalogue items marked unavailable in items/
    p_unavailable: float = 0.02
    time_format: TimeFormat = "mixed"
    seed: int = 7
    injection: InjectionConfig = field(default_factory=InjectionConfig)
    # ---- drift (issue 13.4): every switch is off by default, so existing logs are unchanged.
    #: catalogue drift: every this many seconds each category releases a new item at the top
    #: of its popularity and every other item moves one rank down (items rise on release and
    #: fade with age); 0 = fixed popularity (no drift)
    item_release_interval_s: float = 0.0
    #: with releases on: an item more than this many releases old is never drawn fresh (its
    #: life is over; a successor run may still reach it); 0 = no limit
    item_lifetime_releases: int = 0
    #: returning users: this many long absences per user, at hashed event indexes; the
    #: event after each starts a session log-uniform in [return_gap_min_s, return_gap_max_s] later
    return_gaps_per_user: int = 0
    return_gap_min_s: float = 7 * 86400.0
    return_gap_max_s: float = 60 * 86400.0

    def __post_init__(self) -> None:
        require(self.num_users >= 1, f"'num_users' must be >= 1, got {self.num_users}")
        require(self.num_categories >= 2, f"'num_categories' must be >= 2 (interest moves between categories), "
                                          f"got {self.num_categories}")
        require(self.num_items >= 2 * self.num_categories,
                f"'num_items' ({self.num_items}) must be >= 2 * num_categories ({self.num_categories}) "
                f"so every category has a successor item")
        require(self.switches_per_user >= 1, f"'switches_per_user' must be >= 1, got {self.switches_per_user}")
        need = 4 * (self.switches_per_user + 1)
        require(self.min_events_per_user >= need,
                f"'min_events_per_user' must be >= 4 * (switches_per_user + 1) = {need} so switch points are "
                f"distinct, got {self.min_events_per_user}")
        require(self.min_events_per_user <= self.events_per_user <= self.max_events_per_user,
                f"need min_events_per_user <= events_per_user <= max_events_per_user, got "
                f"{self.min_events_per_user} <= {self.events_per_user} <= {self.max_events_per_user}")
        require(self.max_events_per_user <= 5000,
                f"'max_events_per_user' must be <= 5000 or ordinary users trip the cleaner's 5000-per-day bot rule, "
                f"got {self.max_events_per_user}")
        require(self.zipf_exponent > 0, f"'zipf_exponent' must be > 0, got {self.zipf_exponent}")
        for name in ("p_interest", "p_sequential", "p_attributes", "p_unavailable"):
            v = getattr(self, name)
            require(0.0 <= v <= 1.0, f"'{name}' must be in [0, 1], got {v}")
        require(self.p_sequential < 1.0, "'p_sequential' must be < 1 (a run of successors needs a fresh start)")
        require(self.mean_session_events >= 1.0, f"'mean_session_events' must be >= 1, got {self.mean_session_events}")
        require(1.0 < self.within_gap_min_s <= self.within_gap_mean_s <= self.within_gap_max_s,
                f"need 1 < within_gap_min_s <= within_gap_mean_s <= within_gap_max_s (gaps of 1 s or less make "
                f"ordinary users look like bots), got {self.within_gap_min_s}, {self.within_gap_mean_s}, "
                f"{self.within_gap_max_s}")
        require(self.within_gap_max_s < self.between_gap_min_s <= self.between_gap_max_s,
                f"need within_gap_max_s < between_gap_min_s <= between_gap_max_s so sessions are separable, got "
                f"{self.within_gap_max_s}, {self.between_gap_min_s}, {self.between_gap_max_s}")
        require(self.end_spread_s >= 0, f"'end_spread_s' must be >= 0, got {self.end_spread_s}")
        require(len(self.event_type_weights) >= 1 and all(w >= 0 for w in self.event_type_weights.values())
                and sum(self.event_type_weights.values()) > 0,
                f"'event_type_weights' must map event types to non-negative weights with a positive sum, "
                f"got {self.event_type_weights}")
        require(self.item_release_interval_s >= 0,
                f"'item_release_interval_s' must be >= 0 (0 = no catalogue drift), got {self.item_release_interval_s}")
        require(self.item_lifetime_releases >= 0,
                f"'item_lifetime_releases' must be >= 0 (0 = no limit), got {self.item_lifetime_releases}")
        require(self.item_lifetime_releases == 0 or self.item_release_interval_s > 0,
                "'item_lifetime_releases' needs 'item_release_interval_s' > 0 (lifetimes count releases)")
        require(self.return_gaps_per_user >= 0,
                f"'return_gaps_per_user' must be >= 0, got {self.return_gaps_per_user}")
        require(self.return_gaps_per_user < self.min_events_per_user,
                f"'return_gaps_per_user' ({self.return_gaps_per_user}) must be < min_events_per_user "
                f"({self.min_events_per_user})")
        require(self.between_gap_max_s <= self.return_gap_min_s <= self.return_gap_max_s,
                f"need between_gap_max_s <= return_gap_min_s <= return_gap_max_s so an absence is longer than "
                f"an ordinary break, got {self.between_gap_max_s}, {self.return_gap_min_s}, {self.return_gap_max_s}")
        if self.end_time is not None:
            self.end_datetime()  # validates the format

    @property
    def drifts(self) -> bool:
        """True when any drift switch is on."""
        return self.item_release_interval_s > 0 or self.return_gaps_per_user > 0

    def end_datetime(self) -> dt.datetime:
        """``end_time`` as an aware UTC datetime; ConfigError when unset or without a zone."""
        require(self.end_time is not None,
                "'end_time' is not set; set it (ISO-8601 with zone, e.g. 2026-11-28T23:59:59Z) or pass --run-date")
        try:
            value = dt.datetime.fromisoformat(self.end_time.replace("Z", "+00:00"))
        except ValueError as e:
            raise ConfigError(f"'end_time' must be ISO-8601 with a zone, e.g. 2026-11-28T23:59:59Z, "
                                f"got {self.end_time!r}") from e
        require(value.tzinfo is not None, f"'end_time' needs a zone (Z or +hh:mm), got {self.end_time!r}")
        return value.astimezone(dt.timezone.utc)

    def with_run_date(self, run_date: dt.date) -> "SyntheticConfig":
        """This config with ``end_time`` at the end of ``run_date`` (UTC) unless already set."""
        if self.end_time is not None:
            return self
        return dataclasses.replace(self, end_time=f"{run_date.isoformat()}T23:59:59Z")


@dataclass(frozen=True)
class SyntheticJobConfig(SyntheticConfig):
    """``jobs/generate_synthetic.py``: the generator's config plus where and how to write."""

    #: output root URL: raw/, items/, ground_truth/ (and event_truth/) go under it
    output: str = ""
    format: RawFormat = "jsonl"
    #: also write the labelled clean events (one more pass over the data)
    write_event_truth: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.output), "'output' is not set; pass --out URL (or --set output=URL)")

