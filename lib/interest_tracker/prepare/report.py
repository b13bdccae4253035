"""The run report: every input row accounted for, exactly.

input_rows = clean + sum(rejected by reason) + sum(duplicates by kind) + sum(quarantined by reason)

:func:`reconcile` raises when the equation does not hold: a row lost between two
transforms is a bug that must fail the run, not a number to log.
"""
from __future__ import annotations


class ReconciliationError(RuntimeError):
    pass


def reconcile(report: dict) -> None:
    c = report["counts"]
    accounted = (c["clean"] + sum(c["rejected"].values()) + sum(c["duplicates"].values())
                 + sum(c["quarantined"].values()))
    report["reconciled"] = accounted == c["input_rows"]
    if not report["reconciled"]:
        raise ReconciliationError(
            f"row counts do not reconcile: input {c['input_rows']} != clean {c['clean']} + rejected "
            f"{c['rejected']} + duplicates {c['duplicates']} + quarantined {c['quarantined']} = {accounted}"
        )


def fate_metrics() -> list:
    """Aggregates for ``DataFrame.observe`` on the tagged rows: every valid row's fate.

    Observed during the pass that writes the events table, so the fates cost no action of
    their own and the tagged rows need no cache (issue 10). ``tagged`` carries
    ``duplicate_kind`` and ``quarantine_reason`` (null for kept rows; a duplicate never has
    a quarantine reason).
    """
    from pyspark.sql import functions as F

    from .bots import BOT_RATE_DAY, BOT_RATE_MINUTE
    from .dedupe import EXACT, REPLAY

    kind, reason = F.col("duplicate_kind"), F.col("quarantine_reason")
    return ([F.count(F.lit(1)).alias("valid")]
            + [F.count(F.when(kind == k, 1)).alias(f"duplicates:{k}") for k in (EXACT, REPLAY)]
            + [F.count(F.when(kind.isNull() & (reason == r), 1)).alias(f"quarantined:{r}")
               for r in (BOT_RATE_DAY, BOT_RATE_MINUTE)]
            + [F.count(F.when(kind.isNull() & reason.isNotNull(), 1)).alias("quarantined_all")])


def fates(observed: dict) -> dict:
    """``{valid, duplicates: {kind: n}, quarantined: {reason: n}}`` from :func:`fate_metrics`'
    observed values (kinds and reasons with no row are left out, as in the run report)."""
    out = {"valid": int(observed["valid"]), "duplicates": {}, "quarantined": {}}
    for name, value in observed.items():
        group, _, key = name.partition(":")
        if key and int(value):
            out[group][key] = int(value)
    if sum(out["quarantined"].values()) != int(observed["quarantined_all"]):
        raise ReconciliationError(f"a quarantine reason is missing from the fate metrics: {observed}")
    return out


class PhaseClock:
    """Wall time per phase of a run, for the report (``phases_s``) and the benchmark's breakdown.

    Spark is lazy, so a phase is the time between two actions: each lap is named after
    what the action that ends it computed.
    """

    def __init__(self):
        import time

        self._time = time.monotonic
        self._last = self._time()
        self.phases: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = self._time()
        self.phases[name] = round(self.phases.get(name, 0.0) + now - self._last, 2)
        self._last = now
