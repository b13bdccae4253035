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
