"""Table contracts: the JSON files in ``schemas/`` are the source of truth.

Warehouse consumers read ``schemas/*.json``; the jobs build their Spark schemas from
the same files, and the tests assert that what a job writes equals its contract. A
contract is ``{"name", "version", "description", "partition_by", "fields": [{"name",
"type", "nullable", "description"}]}`` where ``type`` is a Spark SQL type string
(``string``, ``bigint``, ``timestamp``, ``array<float>``, ``map<string,string>``, ...).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_PRIMITIVES = {
    "string": "StringType", "bigint": "LongType", "long": "LongType", "int": "IntegerType",
    "integer": "IntegerType", "smallint": "ShortType", "tinyint": "ByteType",
    "double": "DoubleType", "float": "FloatType", "boolean": "BooleanType",
    "timestamp": "TimestampType", "date": "DateType", "binary": "BinaryType",
}


def contracts_dir() -> Path:
    """``schemas/`` of a source checkout, or the copy packaged into the wheel."""
    here = Path(__file__).resolve().parent
    for cand in (here / "schemas", here.parents[1] / "schemas"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError(f"no schemas/ directory next to {here} or in the source tree")


def parse_type(text: str):
    """Spark SQL type string -> pyspark DataType, without needing a SparkContext."""
    from pyspark.sql import types as T

    t = text.strip().lower()
    if t in _PRIMITIVES:
        return getattr(T, _PRIMITIVES[t])()
    m = re.fullmatch(r"array<(.+)>", t)
    if m:
        return T.ArrayType(parse_type(m.group(1)), containsNull=True)
    m = re.fullmatch(r"map<([^,]+),(.+)>", t)
    if m:
        return T.MapType(parse_type(m.group(1)), parse_type(m.group(2)))
    raise ValueError(f"unsupported contract type {text!r}; use a Spark SQL type string")


@dataclass(frozen=True)
class Contract:
    name: str
    version: int
    description: str
    partition_by: tuple[str, ...]
    fields: tuple[dict, ...]

    @property
    def columns(self) -> list[str]:
        return [f["name"] for f in self.fields]

    def spark_schema(self):
        from pyspark.sql import types as T

        return T.StructType(
            [T.StructField(f["name"], parse_type(f["type"]), bool(f.get("nullable", True))) for f in self.fields]
        )

    def conform(self, df, keep: tuple = ()):
        """Select and cast ``df``'s columns to this contract, in contract order (then the ``keep``
        columns, e.g. a column the writer partitions by and does not store).

        Fails loudly when a column is missing: a silent null column would break
        every consumer downstream.
        """
        from pyspark.sql import functions as F

        missing = [c for c in (*self.columns, *keep) if c not in df.columns]
        if missing:
            raise ValueError(f"{self.name}: missing columns {missing}; the contract is schemas/{self.name}.json")
        return df.select([F.col(f.name).cast(f.dataType).alias(f.name) for f in self.spark_schema().fields]
                         + [F.col(c) for c in keep])


@lru_cache(maxsize=None)
def load_contract(name: str) -> Contract:
    path = contracts_dir() / f"{name}.json"
    data = json.loads(path.read_text())
    return Contract(
        name=data["name"],
        version=int(data["version"]),
        description=data.get("description", ""),
        partition_by=tuple(data.get("partition_by", ())),
        fields=tuple(data["fields"]),
    )


def schema_matches(df_schema, contract: Contract) -> list[str]:
    """Differences between a DataFrame schema and a contract (names, types, order); [] when equal.

    Nullability is compared only where the contract says NOT NULL, because Spark
    reports most computed columns as nullable.
    """
    expected = contract.spark_schema()
    problems = []
    got = [(f.name, f.dataType.simpleString()) for f in df_schema.fields]
    want = [(f.name, f.dataType.simpleString()) for f in expected.fields]
    if got != want:
        problems.append(f"{contract.name}: columns {got} != contract {want}")
    return problems
