"""Next-day evaluation of the published tables against rules from the same history.

    .venv/bin/python bench/eval_next_day.py --run-date 2018-02-28 \
        --recommendations bench_output/ml_drift/c2018-03-01/warehouse/user_recommendations \
        --events bench_output/ml_drift/raw --events-format parquet [--recent-days 30,90] [--json out.json]

Why: a warehouse consumer reads ``user_recommendations`` for run date D and shows it
until the next run. What matters is whether the user's NEXT items are in it, judged
against what cheap rules built from the same history would have shown. The history is
the raw-contract log before the cutoff (the end of D, UTC); the future is the log from
the cutoff on (optionally only ``--horizon-days``).

For every returning user (events before AND after the cutoff):
- HR@K and MRR@K of the first later item (events ordered as stage 1 orders them:
  time, item_id, event_type);
- Recall@K over the distinct items of the next ``--next-n`` (10) events.
A returning user without a row in the table counts as a miss for the table
(coverage is printed). Rules, all excluding nothing but what their name says:
- ``popularity``: the K most frequent items of the whole history;
- ``popularity_unconsumed``: the same, minus the user's consumed items;
- ``recent_popularity_Nd``: the most frequent items of the last N days before the
  cutoff, minus consumed items, backfilled with ``popularity_unconsumed``;
- ``cooccurrence``: the items that most often occur within ``--cooc-window`` events of
  the user's last item in any user's history (both directions), minus consumed items,
  backfilled with the first recent-popularity rule.

The metric functions are plain Python over dicts so tests can check them by hand
(tests/test_eval_next_day.py); nothing here imports Spark or torch.
Prints one table; ``--json`` also writes the figures.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

log = logging.getLogger("eval_next_day")

ROOT = Path(__file__).resolve().parents[1]
RAW_COLUMNS = ("user_id", "item_id", "event_type", "event_time", "session_id", "attributes")
#: The cleaner's rule: ISO-8601 text must carry a zone (stage 1 rejects naive times).
ISO_WITH_ZONE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}(:?\d{2})?)$")


# ---------------------------------------------------------------- metrics (hand-checkable)

def hit_rate(recs: Mapping[str, Sequence[str]], first_item: Mapping[str, str], k: int) -> float:
    """Share of users whose first later item is in their top-k (users = keys of first_item;
    a user missing from ``recs`` is a miss)."""
    if not first_item:
        return float("nan")
    hits = sum(1 for u, item in first_item.items() if item in list(recs.get(u, ()))[:k])
    return hits / len(first_item)


def mrr(recs: Mapping[str, Sequence[str]], first_item: Mapping[str, str], k: int) -> float:
    """Mean reciprocal rank of the first later item within the top-k (0 when absent)."""
    if not first_item:
        return float("nan")
    total = 0.0
    for u, item in first_item.items():
        top = list(recs.get(u, ()))[:k]
        if item in top:
            total += 1.0 / (top.index(item) + 1)
    return total / len(first_item)


def recall(recs: Mapping[str, Sequence[str]], next_items: Mapping[str, Sequence[str]], k: int) -> float:
    """Mean over users of |top-k & next items| / |next items| (next items are distinct)."""
    if not next_items:
        return float("nan")
    total = 0.0
    for u, items in next_items.items():
        wanted = set(items)
        total += len(wanted & set(list(recs.get(u, ()))[:k])) / len(wanted)
    return total / len(next_items)


def targets(future: pd.DataFrame, n: int) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(first later item per user, distinct items of the next n events per user), in the
    canonical order (time, item_id, event_type); ``future`` has user_id, item_id,
    event_type, ts."""
    f = future.sort_values(["user_id", "ts", "item_id", "event_type"], kind="mergesort")
    first, nxt = {}, {}
    for u, g in f.groupby("user_id", sort=False):
        items = g.item_id.tolist()[:n]
        first[u] = items[0]
        nxt[u] = list(dict.fromkeys(items))
    return first, nxt


# ---------------------------------------------------------------- rules

def _top_unconsumed(ranked: Sequence[str], consumed: set, k: int, out: list | None = None) -> list[str]:
    out = [] if out is None else out
    have = set(out)
    for item in ranked:
        if len(out) >= k:
            break
        if item not in consumed and item not in have:
            out.append(item)
            have.add(item)
    return out


def ranked_by_count(items: Iterable[str]) -> list[str]:
    """Items by descending count, ties by item id (deterministic)."""
    c = Counter(items)
    return sorted(c, key=lambda i: (-c[i], i))


def popularity(history: pd.DataFrame, users: Iterable[str], k: int) -> dict[str, list[str]]:
    top = ranked_by_count(history.item_id)[:k]
    return {u: list(top) for u in users}


def popularity_unconsumed(history: pd.DataFrame, consumed: Mapping[str, set], users: Iterable[str],
                          k: int) -> dict[str, list[str]]:
    ranked = ranked_by_count(history.item_id)
    return {u: _top_unconsumed(ranked, consumed.get(u, set()), k) for u in users}


def recent_popularity(history: pd.DataFrame, consumed: Mapping[str, set], users: Iterable[str], k: int,
                      cutoff: pd.Timestamp, days: float) -> dict[str, list[str]]:
    """Most frequent items of [cutoff - days, cutoff), unconsumed; backfilled by all-time
    popularity (unconsumed) when the window holds too few."""
    recent = ranked_by_count(history.loc[history.ts >= cutoff - pd.Timedelta(days=days), "item_id"])
    overall = ranked_by_count(history.item_id)
    out = {}
    for u in users:
        c = consumed.get(u, set())
        out[u] = _top_unconsumed(overall, c, k, _top_unconsumed(recent, c, k))
    return out


def cooccurrence(history: pd.DataFrame, consumed: Mapping[str, set], users: Iterable[str], k: int,
                 window: int, fallback: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Items that occur within ``window`` events of the user's last item (either side) in
    any user's history, by count; unconsumed; backfilled from ``fallback``."""
    users = list(users)
    h = history.sort_values(["user_id", "ts", "item_id", "event_type"], kind="mergesort")
    last_item = h.groupby("user_id", sort=False).item_id.last()
    last = {u: last_item[u] for u in users if u in last_item.index}
    sources = set(last.values())
    item = h.item_id.to_numpy()
    user = h.user_id.to_numpy()
    pairs = []
    for d in range(1, window + 1):
        a, b, same = item[:-d], item[d:], user[:-d] == user[d:]
        for src, dst in ((a, b), (b, a)):
            keep = same & np.isin(src, list(sources))
            pairs.append(pd.DataFrame({"src": src[keep], "dst": dst[keep]}))
    p = pd.concat(pairs, ignore_index=True) if pairs else pd.DataFrame({"src": [], "dst": []})
    counts = p.groupby(["src", "dst"]).size().rename("n").reset_index()
    counts = counts.sort_values(["src", "n", "dst"], ascending=[True, False, True], kind="mergesort")
    neighbours = {s: g.dst.tolist() for s, g in counts.groupby("src", sort=False)}
    out = {}
    for u in users:
        c = consumed.get(u, set())
        mine = _top_unconsumed(neighbours.get(last.get(u), ()), c, k)
        out[u] = _top_unconsumed(fallback.get(u, ()), c, k, mine)
    return out


# ---------------------------------------------------------------- reading

def parse_times(raw: pd.Series) -> pd.Series:
    """Raw-contract time text -> UTC timestamps (NaT when stage 1 would reject it as BAD_TIME):
    epoch seconds or milliseconds (>= 1e11), or ISO-8601 with a zone."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return pd.to_datetime(raw, utc=True)
    if pd.api.types.is_numeric_dtype(raw):
        num = raw.astype("float64")
    else:
        num = pd.to_numeric(raw, errors="coerce")
    num = num.where(np.isfinite(num))
    secs = num.where(num.abs() < 1e11, num / 1000.0)
    out = pd.to_datetime((secs * 1e6).round(), unit="us", utc=True, errors="coerce")
    text = raw.astype("string").str.strip()
    iso = num.isna() & text.fillna("").str.match(ISO_WITH_ZONE)
    if iso.any():
        out = out.copy()
        out[iso] = pd.to_datetime(text[iso], utc=True, format="ISO8601", errors="coerce")
    return out


def read_raw_events(path: str, fmt: str = "auto") -> pd.DataFrame:
    """Raw-contract events (parquet file/dir, JSON lines or CSV with header) with an explicit
    all-string schema; adds ``ts`` (UTC). Rows stage 1 would reject for a missing field or a
    bad time are dropped (counted in the log); exact duplicates are dropped too."""
    p = Path(path)
    if fmt == "auto":
        probe = next((f for f in sorted(p.rglob("*")) if f.is_file() and not f.name.startswith(("_", "."))), p) \
            if p.is_dir() else p
        fmt = {".parquet": "parquet", ".json": "jsonl", ".jsonl": "jsonl", ".csv": "csv"}.get(probe.suffix, "parquet")
    if fmt == "parquet":
        import pyarrow.dataset as ds
        table = ds.dataset(str(p), format="parquet", partitioning="hive").to_table()
        df = table.to_pandas()
    elif fmt == "jsonl":
        files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(("_", "."))) if p.is_dir() else [p]
        df = pd.concat([pd.read_json(f, lines=True, dtype=False) for f in files], ignore_index=True)
    elif fmt == "csv":
        files = sorted(f for f in p.rglob("*.csv")) if p.is_dir() else [p]
        df = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""]) for f in files],
                       ignore_index=True)
    else:
        raise ValueError(f"--events-format must be auto, parquet, jsonl or csv, got {fmt!r}")
    missing = [c for c in ("user_id", "item_id", "event_type", "event_time") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not the raw event contract (schemas/raw_event.json); missing columns {missing}")
    out = pd.DataFrame({c: df[c].astype("string") for c in ("user_id", "item_id", "event_type")})
    out["ts"] = parse_times(df["event_time"])
    ok = out.user_id.fillna("").str.strip().ne("") & out.item_id.fillna("").str.strip().ne("") \
        & out.event_type.fillna("").str.strip().ne("") & out.ts.notna()
    dropped = int((~ok).sum())
    out = out[ok].drop_duplicates(["user_id", "item_id", "event_type", "ts"])
    out["event_type"] = out.event_type.str.strip().str.lower()
    log.info("read %d raw events from %s (%s); dropped %d with a missing field or bad time, %d exact duplicates",
             len(df), path, fmt, dropped, int(ok.sum()) - len(out))
    return out.reset_index(drop=True).astype({"user_id": object, "item_id": object, "event_type": object})


def read_recommendations(path: str, run_date: dt.date) -> dict[str, list[str]]:
    """user -> item ids by rank from the user_recommendations table (the table root with
    run_date=D partitions, or the partition directory itself), checked against the contract."""
    import pyarrow.parquet as pq

    from interest_tracker.layout.partition import partition_url

    p = Path(path)
    part = Path(partition_url(str(p), run_date))
    src = part if part.exists() else p
    if not src.exists():
        raise FileNotFoundError(f"{src}: no user_recommendations partition for run date {run_date}; "
                                f"pass the table root or the run_date=... directory with --recommendations")
    table = pq.read_table(str(src), columns=["user_id", "rank", "item_id"])
    contract = json.loads((ROOT / "schemas" / "user_recommendations.json").read_text())
    want = {f["name"]: f["type"] for f in contract["fields"]}
    arrow_of = {"string": ("string", "large_string"), "int": ("int32",)}
    for name in ("user_id", "rank", "item_id"):
        got = str(table.schema.field(name).type)
        if got not in arrow_of[want[name]]:
            raise ValueError(f"{src}: column {name} is {got}, the contract says {want[name]}")
    df = table.to_pandas().sort_values(["user_id", "rank"], kind="mergesort")
    return {u: g.item_id.tolist() for u, g in df.groupby("user_id", sort=False)}


# ---------------------------------------------------------------- evaluation

def evaluate(history: pd.DataFrame, future: pd.DataFrame, tables: Mapping[str, Mapping[str, Sequence[str]]],
             cutoff: pd.Timestamp, k: int = 20, next_n: int = 10, recent_days: Sequence[float] = (30.0,),
             cooc_window: int = 5) -> dict:
    """Figures for every table in ``tables`` (label -> recs) and every rule, over the
    users with events both in ``history`` (before cutoff) and ``future``."""
    returning = sorted(set(history.user_id) & set(future.user_id))
    if not returning:
        raise ValueError(f"no user has events both before and after the cutoff {cutoff.isoformat()} "
                         f"({len(history)} events before, {len(future)} after); check --run-date, --events "
                         f"and --horizon-days")
    fut = future[future.user_id.isin(returning)]
    first, nxt = targets(fut, next_n)
    hist = history
    consumed = {u: set(g) for u, g in hist[hist.user_id.isin(returning)].groupby("user_id").item_id}
    rules: dict[str, dict[str, list[str]]] = {
        "popularity": popularity(hist, returning, k),
        "popularity_unconsumed": popularity_unconsumed(hist, consumed, returning, k),
    }
    for d in recent_days:
        rules[f"recent_popularity_{d:g}d"] = recent_popularity(hist, consumed, returning, k, cutoff, d)
    rules["cooccurrence"] = cooccurrence(hist, consumed, returning, k, cooc_window,
                                         rules[f"recent_popularity_{recent_days[0]:g}d"])
    first_consumed = sum(1 for u, i in first.items() if i in consumed.get(u, ()))
    # Items no one had before the cutoff (a film released later): no table or rule built from
    # the history can hold them, so they cap every HR@K below 1.
    known = set(hist.item_id)
    first_unseen = sum(1 for i in first.values() if i not in known)
    rows = {}
    for label, recs in list(tables.items()) + list(rules.items()):
        rows[label] = {
            "kind": "table" if label in tables else "rule",
            "covered": sum(1 for u in returning if recs.get(u)),
            f"hr@{k}": hit_rate(recs, first, k),
            f"mrr@{k}": mrr(recs, first, k),
            f"recall@{k}": recall(recs, nxt, k),
        }
    best_rule = max((r for r in rows if rows[r]["kind"] == "rule"), key=lambda r: rows[r][f"hr@{k}"])
    return {"cutoff": cutoff.isoformat(), "k": k, "next_n": next_n, "returning_users": len(returning),
            "history_events": int(len(history)), "future_events": int(len(fut)),
            "first_item_already_consumed": first_consumed, "first_item_unseen_before_cutoff": first_unseen,
            "rows": rows, "best_rule": best_rule}


def format_table(res: dict) -> str:
    k = res["k"]
    lines = [f"# next-day evaluation: cutoff {res['cutoff']}, {res['returning_users']} returning users, "
             f"{res['history_events']} history events, K={k}, recall over the next {res['next_n']} events; "
             f"{res['first_item_already_consumed']} first later items were already consumed, "
             f"{res.get('first_item_unseen_before_cutoff', 0)} were items no one had before the cutoff "
             f"(out of reach of any table or rule)",
             f"{'source':<28} {'kind':<6} {'covered':>8} {f'HR@{k}':>8} {f'MRR@{k}':>8} {f'Recall@{k}':>10}"]
    for label, r in res["rows"].items():
        lines.append(f"{label:<28} {r['kind']:<6} {r['covered']:>8} {r[f'hr@{k}']:>8.4f} {r[f'mrr@{k}']:>8.4f} "
                     f"{r[f'recall@{k}']:>10.4f}")
    best = res["rows"][res["best_rule"]][f"hr@{k}"]
    for label, r in res["rows"].items():
        if r["kind"] == "table":
            if best <= 0:  # no rule hit anything: a ratio would say nothing
                lines.append(f"# {label} vs best rule: HR@{k} {r[f'hr@{k}']:.4f} vs 0 (no rule hit any user): "
                             f"undecided")
                continue
            ratio = r[f"hr@{k}"] / best
            lines.append(f"# {label} vs best rule ({res['best_rule']}): HR@{k} {r[f'hr@{k}']:.4f} / {best:.4f} "
                         f"= {ratio:.3f} ({'+' if ratio >= 1 else ''}{(ratio - 1) * 100:.1f}%; goal >= +10%: "
                         f"{'met' if ratio >= 1.1 else 'NOT met'})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run-date", required=True, type=dt.date.fromisoformat,
                   help="D: the tables' run date; the cutoff is the end of D (UTC)")
    p.add_argument("--events", required=True, help="raw-contract log (parquet dir/file, jsonl or csv)")
    p.add_argument("--events-format", default="auto", choices=("auto", "parquet", "jsonl", "csv"))
    p.add_argument("--recommendations", action="append", default=[],
                   help="user_recommendations table root or partition; repeat as LABEL=PATH to compare several")
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--next-n", type=int, default=10)
    p.add_argument("--recent-days", default="30", help="comma-separated windows N for recent popularity")
    p.add_argument("--cooc-window", type=int, default=5)
    p.add_argument("--horizon-days", type=float, default=None, help="only future events within this many days")
    p.add_argument("--history-days", type=float, default=None,
                   help="only history within this many days before the cutoff (default: all)")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    cutoff = pd.Timestamp(args.run_date + dt.timedelta(days=1), tz="UTC")
    events = read_raw_events(args.events, args.events_format)
    history = events[events.ts < cutoff]
    if args.history_days:
        history = history[history.ts >= cutoff - pd.Timedelta(days=args.history_days)]
    future = events[events.ts >= cutoff]
    if args.horizon_days:
        future = future[future.ts < cutoff + pd.Timedelta(days=args.horizon_days)]
    tables = {}
    for spec in args.recommendations:
        label, sep, path = spec.partition("=")
        if not sep or "/" in label or not label:  # a plain path (paths may hold '=', e.g. run_date=...)
            label, path = "tables", spec
        tables[label] = read_recommendations(path, args.run_date)
    res = evaluate(history, future, tables, cutoff, args.k, args.next_n,
                   [float(x) for x in args.recent_days.split(",")], args.cooc_window)
    print(format_table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
