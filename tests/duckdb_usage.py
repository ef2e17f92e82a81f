"""Sums an archive of `records` objects per owner with DuckDB, as an operator would.

Usage: python3 tests/duckdb_usage.py DIR
Prints one JSON object: {owner: [ops, successful_ops, bytes_sent, bytes_received]}, and the
distinct Hive partition values it saw under "partitions".
"""
import json
import sys

import duckdb

root = sys.argv[1]
source = f"read_json_auto('{root}/**/*.jsonl.gz', hive_partitioning = true)"
rows = duckdb.sql(
    f"""
    SELECT owner, sum(ops), sum(successful_ops), sum(bytes_sent), sum(bytes_received)
    FROM {source}
    WHERE kind = 'usage'
    GROUP BY owner
    ORDER BY owner
    """
).fetchall()
partitions = duckdb.sql(f"SELECT DISTINCT date, hour FROM {source} ORDER BY 1, 2").fetchall()
print(
    json.dumps(
        {
            "owners": {r[0]: [int(x) for x in r[1:]] for r in rows},
            "partitions": [[str(d), int(h)] for d, h in partitions],
        }
    )
)
