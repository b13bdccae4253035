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


def fate_counts(tagged) -> dict:
    """Counts of every valid row's fate in one pass: ``valid``, ``duplicates`` by kind, ``quarantined`` by reason.

    ``tagged`` carries ``duplicate_kind`` and ``quarantine_reason`` (null for kept rows;
    a duplicate never has a quarantine reason).
    """
    out = {"valid": 0, "duplicates": {}, "quarantined": {}}
    for kind, reason, n in tagged.groupBy("duplicate_kind", "quarantine_reason").count().collect():
        out["valid"] += int(n)
        if kind is not None:
            out["duplicates"][kind] = out["duplicates"].get(kind, 0) + int(n)
        elif reason is not None:
            out["quarantined"][reason] = int(n)
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
