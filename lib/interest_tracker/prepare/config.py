"""Configuration of the clean-and-sessionize stage (validated before Spark starts)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, Optional

from ..config import ConfigError, require


def parse_utc(text: str, key: str) -> dt.datetime:
    """ISO-8601 with a zone -> aware UTC datetime; a naive time is refused (ambiguous)."""
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise ConfigError(f"'{key}' must be ISO-8601 with a zone, e.g. 2026-11-01T00:00:00Z; got {text!r}") from e
    require(value.tzinfo is not None, f"'{key}' must carry a zone (Z or +hh:mm); got {text!r}")
    try:
        return value.astimezone(dt.timezone.utc)
    except OverflowError as e:
        raise ConfigError(f"'{key}' is outside the years 1-9999 in UTC; got {text!r}") from e


MAX_SPAN_DAYS = 36500
"""Upper bound of every span setting (a century): larger values overflow the date arithmetic."""


@dataclass(frozen=True)
class EventType:
    name: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        require(bool(self.name) and self.name == self.name.strip().lower(),
                f"event type names must be non-empty lower-case, got {self.name!r}")
        require(self.weight > 0, f"event type {self.name!r} needs a positive weight")


DEFAULT_EVENT_TYPES = (
    EventType("view", 1.0), EventType("click", 1.0), EventType("add_to_cart", 2.0), EventType("purchase", 4.0),
)


@dataclass(frozen=True)
class InputConfig:
    path: str
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"


@dataclass(frozen=True)
class CleaningConfig:
    event_types: tuple[EventType, ...] = DEFAULT_EVENT_TYPES
    max_field_length: int = 256
    """user_id, item_id, event_type, event_time and session_id longer than this are OVERSIZED_FIELD."""
    max_attributes_length: int = 4096
    min_event_time: str = "2000-01-01T00:00:00Z"
    """Events before this are TIME_OUT_OF_WINDOW (clock resets, epoch-0 defaults)."""
    max_future_days: float = 1.0
    """Events later than the end of the run date plus this many days are TIME_OUT_OF_WINDOW."""
    epoch_unit: Literal["auto", "s", "ms"] = "auto"
    """auto: numbers >= 1e11 are milliseconds (1e11 s is the year 5138), smaller are seconds."""
    bot_max_events_per_minute: int = 60
    """A user with more events than this in any 60 s window is quarantined (0 = off)."""
    bot_max_events_per_day: int = 5000
    """A user with more events than this in any 24 h window is quarantined (0 = off)."""
    min_item_support: int = 0
    """Items with fewer clean events are rejected as LOW_SUPPORT_ITEM (0 = off)."""
    min_user_events: int = 0
    """Users with fewer clean events (after the item filter) are rejected as LOW_SUPPORT_USER (0 = off)."""

    def __post_init__(self) -> None:
        require(len(self.event_types) > 0, "cleaning.event_types must list at least one event type")
        names = [e.name for e in self.event_types]
        require(len(set(names)) == len(names), f"cleaning.event_types has duplicate names: {names}")
        require(self.max_field_length > 0 and self.max_attributes_length > 0, "field length limits must be > 0")
        parse_utc(self.min_event_time, "cleaning.min_event_time")
        require(0 <= self.max_future_days <= MAX_SPAN_DAYS,
                f"cleaning.max_future_days must be in [0, {MAX_SPAN_DAYS}], got {self.max_future_days}")
        require(self.bot_max_events_per_minute >= 0 and self.bot_max_events_per_day >= 0,
                "bot thresholds must be >= 0 (0 disables)")
        require(self.min_item_support >= 0 and self.min_user_events >= 0, "support thresholds must be >= 0")


@dataclass(frozen=True)
class SessionConfig:
    gap_minutes: float = 30.0
    """A gap strictly greater than this starts a new session; exactly equal stays in the session."""
    max_events: int = 500
    """Longer sessions are cut into pieces of at most this many events."""
    max_duration_minutes: float = 24 * 60.0
    """Sessions are cut every this many minutes after their start."""
    respect_input_sessions: bool = True
    """Also start a new session where the source's session_id changes."""

    def __post_init__(self) -> None:
        require(0 < self.gap_minutes <= MAX_SPAN_DAYS * 1440,
                f"sessions.gap_minutes must be > 0 and at most {MAX_SPAN_DAYS * 1440}, got {self.gap_minutes}")
        require(self.max_events >= 1, "sessions.max_events must be >= 1")
        require(0 < self.max_duration_minutes <= MAX_SPAN_DAYS * 1440,
                f"sessions.max_duration_minutes must be > 0 and at most {MAX_SPAN_DAYS * 1440}, "
                f"got {self.max_duration_minutes}")


@dataclass(frozen=True)
class SequenceConfig:
    window_length: int = 20
    train_stride: Optional[int] = None
    """Default: window_length (no overlap)."""
    eval_stride: Optional[int] = None
    """Default: window_length // 2, so every evaluated target has >= L/2 events of context."""
    split_by: Literal["event", "session"] = "event"
    """event: each event goes to the split of its own time. session: a whole session goes to
    the split of its last event (the session-rec protocol)."""
    valid_start: Optional[str] = None
    test_start: Optional[str] = None
    valid_days: float = 1.0
    """When valid_start is not given: the validation split is the valid_days before test_start."""
    test_days: float = 1.0
    """When test_start is not given: the test split is the last test_days of the data."""
    num_row_groups: int = 32
    """Row groups per split dataset; keep >= 4 x the number of training ranks."""
    history: Literal["all", "run"] = "all"
    """all: sequences use every clean-events partition up to the run date; run: only this run's."""

    @property
    def train_stride_(self) -> int:
        return self.train_stride or self.window_length

    @property
    def eval_stride_(self) -> int:
        return self.eval_stride or max(1, self.window_length // 2)

    def __post_init__(self) -> None:
        require(self.window_length >= 2, "sequences.window_length must be >= 2")
        for k in ("train_stride", "eval_stride"):
            v = getattr(self, k)
            require(v is None or 1 <= v <= self.window_length, f"sequences.{k} must be in [1, window_length]")
        if self.valid_start:
            parse_utc(self.valid_start, "sequences.valid_start")
        if self.test_start:
            parse_utc(self.test_start, "sequences.test_start")
        if self.valid_start and self.test_start:
            require(parse_utc(self.valid_start, "v") <= parse_utc(self.test_start, "t"),
                    "sequences.valid_start must not be after sequences.test_start")
        for k in ("valid_days", "test_days"):
            v = getattr(self, k)
            require(0 <= v <= MAX_SPAN_DAYS, f"sequences.{k} must be in [0, {MAX_SPAN_DAYS}], got {v}")
        require(self.num_row_groups >= 1, "sequences.num_row_groups must be >= 1")


@dataclass(frozen=True)
class PrepareConfig:
    input: InputConfig
    output_root: str
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    sessions: SessionConfig = field(default_factory=SessionConfig)
    sequences: SequenceConfig = field(default_factory=SequenceConfig)
    write_sequences: bool = True

    def __post_init__(self) -> None:
        require(bool(self.output_root), "output_root is required (a URL or path for all stage-1 outputs)")
        require(bool(self.input.path), "input.path is required")
