#!/usr/bin/env python3
"""SQLite engine cost per stored event for the collector's events schema, without the collector.

Inserts rows shaped like pulseline-loadgen's events (a ~330-byte body, 5,000 distinct users,
time-ordered messageIds) in transactions of 1,500 rows (what the group-commit writer folds at
32 connections), with INSERT ... SELECT so no per-statement or binding overhead is counted:
a lower bound on what the collector's writer thread pays per event. Compares the migrated
index set with variants. WAL, synchronous=NORMAL, the collector's cache_size.

Usage: python3 examples/loadgen/profile/sqlite_index_cost.py [TRANSACTIONS]   (default 200)
"""
import os
import sqlite3
import sys
import tempfile

TABLE = """CREATE TABLE events (seq INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,
    message_id TEXT NOT NULL, type TEXT NOT NULL, event TEXT, user_id TEXT, anonymous_id TEXT,
    timestamp INTEGER NOT NULL, received_at INTEGER NOT NULL, body TEXT NOT NULL)"""
INDEXES = {
    "events_dedupe": "CREATE UNIQUE INDEX events_dedupe ON events(project_id, message_id)",
    "events_recent": "CREATE INDEX events_recent ON events(project_id, seq)",
    "events_by_name": "CREATE INDEX events_by_name ON events(project_id, event, seq)",
    "events_by_user": "CREATE INDEX events_by_user ON events(project_id, user_id, seq)",
}
VARIANTS = {
    "as migrated (4 indexes)": list(INDEXES),
    "without events_by_user": ["events_dedupe", "events_recent", "events_by_name"],
    "events_dedupe only": ["events_dedupe"],
}
ROWS = 1500
USERS = 5000
INSERT = """INSERT INTO events (project_id, message_id, type, event, user_id, anonymous_id,
    timestamp, received_at, body)
  WITH RECURSIVE c(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM c WHERE i < {hi})
  SELECT 1, printf('0190a1b2-%04x-7abc-8def-%012x', i / 65536, i), 'track', 'Order Completed',
    'user-' || (i % {users}), NULL, 1763800000000 + i, 1763800000000 + i,
    printf('{{"type":"track","messageId":"0190a1b2-%04x-7abc-8def-%012x","userId":"user-%d",'
      || '"event":"Order Completed","timestamp":"2026-11-22T03:20:00.000Z","properties":'
      || '{{"bench_seq":%d,"plan":"pro","amount":42.5,"flag":true,"tag":"abc"}},"context":'
      || '{{"library":{{"name":"pulseline-loadgen","version":"0.1.0"}}}}}}',
      i / 65536, i, i % {users}, i)
  FROM c WHERE 1 ON CONFLICT (project_id, message_id) DO NOTHING"""


def written_bytes():
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("wchar"):
                return int(line.split()[1])
    return 0


def main():
    transactions = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        for name, indexes in VARIANTS.items():
            path = os.path.join(tmp, name.replace(" ", "_") + ".db")
            db = sqlite3.connect(path, isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536",
                           "temp_store=memory"):
                db.execute("PRAGMA " + pragma)
            db.execute(TABLE)
            for index in indexes:
                db.execute(INDEXES[index])
            t0, w0 = os.times(), written_bytes()
            for t in range(transactions):
                lo = t * ROWS
                db.execute("BEGIN")
                db.execute(INSERT.format(lo=lo, hi=lo + ROWS - 1, users=USERS))
                db.execute("COMMIT")
            t1, w1 = os.times(), written_bytes()
            n = transactions * ROWS
            assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == n
            db.close()
            cpu = (t1.user - t0.user) + (t1.system - t0.system)
            print(f"{name:26s} {cpu / n * 1e6:5.2f} µs CPU/row  {(w1 - w0) / n:6.0f} B written/row"
                  f"  -> {n / cpu:8.0f} rows/s per core")


if __name__ == "__main__":
    main()
