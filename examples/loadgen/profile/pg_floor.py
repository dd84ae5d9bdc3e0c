#!/usr/bin/env python3
"""What storing one event costs PostgreSQL at the least, whatever the collector does.

Runs the cheapest exactly-once, durable writes of one row per event that PostgreSQL allows
against a server on this machine, with no collector in between, and prints the server's CPU
per stored event (every postgres process, from /proc) and WAL bytes per event for each:

  append        the events row alone: a heap insert into today's partition, no index, no
                dedupe (not exactly-once: the lower bound of any row-per-event store)
  copy          the same rows through binary COPY instead of UNNEST arrays
  unique        the dedupe in the events table itself: one unpartitioned table with a
                unique (project_id, message_id) B-tree, ON CONFLICT DO NOTHING (exactly-once
                with one row per event; retention would then delete rows, not drop
                partitions)
  dedupe        the collector's two statements without its rollups: the message id into
                `event_ids` (primary key + BRIN, ON CONFLICT DO NOTHING RETURNING), then the
                survivors into `events` with no index
  dedupe16      `dedupe` with the id kept as a 16-byte `uuid` (the SDKs' ids are UUIDv7s;
                another client's arbitrary string would need a hash or a text fallback)
  dedupe+btrees `dedupe` with the four B-trees the collector's reads need on `events`
  dedupe+user-days
                `dedupe`, then the cheapest per-user rollup: one upsert per distinct
                (name, user, day) of the batch into a table with only its primary key
                (fillfactor 90, so an update can be HOT), keys sorted so commits do not
                deadlock; what a funnel-style rollup costs at the least
  fold          `dedupe` with a BRIN on `events.seq`, and the same rollup written by one
                background connection every --fold-seconds from the events stored since
                its last fold (one grouped upsert per fold, keys sorted), not by the
                commits: a key's events within a fold cost one row write; the CPU is
                read once the last fold has drained the run

Each variant gets a fresh database with the collector's column types; workers send batches
of BATCH events in their own transactions (synchronous_commit on, so every batch is durable
before the next), the same events for every variant. Message ids are UUIDv7 strings like
the SDKs', bodies a Segment track message of about 400 bytes.

Usage: PG_URL=postgres://postgres@127.0.0.1:55450/postgres examples/loadgen/profile/pg_floor.py
  [--events 400000] [--batch 1000] [--workers 8] [--rounds 2] [--variants append,dedupe]
  [--users 100000] [--fold-seconds 1]

The last column counts the rollup rows written (upserts by the commits, or by the folds).

Needs `psycopg` (pip install "psycopg[binary]") and a server of its own: other clients' work
would count as this run's.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import threading
import time
import uuid

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")

EVENT_COLUMNS = """
    seq          BIGINT NOT NULL DEFAULT nextval('events_seq'),
    project_id   BIGINT NOT NULL,
    message_id   TEXT COLLATE "C" NOT NULL,
    type         TEXT   NOT NULL,
    event        TEXT COLLATE "C",
    user_id      TEXT,
    anonymous_id TEXT,
    timestamp    BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    body         TEXT COMPRESSION lz4 NOT NULL"""

# The collector's: the dedupe table, and events partitioned by receive day.
SCHEMA = f"""
CREATE TABLE event_ids (
    project_id  BIGINT NOT NULL,
    message_id  TEXT COLLATE "C" NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (project_id, message_id)
);
CREATE INDEX event_ids_by_received ON event_ids USING brin (received_at);
CREATE SEQUENCE events_seq;
CREATE TABLE events ({EVENT_COLUMNS}
) PARTITION BY RANGE (received_at);
CREATE TABLE events_default PARTITION OF events DEFAULT;
"""

# The `unique` variant's: one table whose unique key is the dedupe.
UNIQUE_SCHEMA = f"""
CREATE SEQUENCE events_seq;
CREATE TABLE events ({EVENT_COLUMNS},
    UNIQUE (project_id, message_id)
);
"""

BTREES = """
CREATE INDEX events_recent       ON events(project_id, seq);
CREATE INDEX events_by_name      ON events(project_id, event, seq);
CREATE INDEX events_by_name_time ON events(project_id, event, timestamp);
CREATE INDEX events_by_time      ON events(project_id, timestamp);
"""

COLUMNS = "project_id, message_id, type, event, user_id, anonymous_id, timestamp, received_at, body"

INSERT_EVENTS = f"""
INSERT INTO events ({COLUMNS})
SELECT * FROM UNNEST(%b::INT8[], %b::TEXT[], %b::TEXT[], %b::TEXT[], %b::TEXT[], %b::TEXT[],
                     %b::INT8[], %b::INT8[], %b::TEXT[])
"""

# The collector's dedupe statement: only the ids not seen before come back.
DEDUPE = """
INSERT INTO event_ids (project_id, message_id, received_at)
SELECT * FROM UNNEST(%b::INT8[], %b::TEXT[], %b::INT8[])
ON CONFLICT DO NOTHING RETURNING message_id
"""

VARIANTS = ("append", "copy", "unique", "dedupe", "dedupe16", "dedupe+btrees", "dedupe+user-days", "fold")

USER_DAYS = """
CREATE TABLE user_days (
    project_id BIGINT NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    user_key   TEXT COLLATE "C" NOT NULL,
    day        BIGINT NOT NULL,
    events     BIGINT NOT NULL,
    PRIMARY KEY (project_id, name, user_key, day)
) WITH (fillfactor = 90);
"""

UPSERT_USER_DAYS = """
INSERT INTO user_days (project_id, name, user_key, day, events)
SELECT * FROM UNNEST(%b::INT8[], %b::TEXT[], %b::TEXT[], %b::INT8[], %b::INT8[])
ON CONFLICT (project_id, name, user_key, day) DO UPDATE SET events = user_days.events + excluded.events
"""

FOLD_LOCK = 7_020_001

# The `fold` variant's one statement: the rollup rows of the events stored in a range of seq.
FOLD = """
INSERT INTO user_days (project_id, name, user_key, day, events)
SELECT project_id, event, user_id, timestamp / 86400000, count(*) FROM events
WHERE seq > %s AND seq <= %s
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (project_id, name, user_key, day) DO UPDATE SET events = user_days.events + excluded.events
"""


NAMES = ["page_view", "signup", "checkout", "search", "add_to_cart", "login", "share", "invite"]


def make_events(count: int, seed: int, users: int) -> list[tuple]:
    """Rows in the collector's column order, time-ordered UUIDv7 ids, `users` users."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    rows = []
    for i in range(count):
        ms = now - (count - i)
        rand = rng.getrandbits(74)
        # UUIDv7: 48-bit milliseconds, version 7, 12 random bits, variant 10, 62 random bits.
        value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
        message_id = str(uuid.UUID(int=value))
        name = NAMES[min(int(rng.paretovariate(1.2)) - 1, len(NAMES) - 1)]
        user = f"user-{rng.randrange(users)}"
        body = json.dumps(
            {
                "type": "track",
                "event": name,
                "userId": user,
                "messageId": message_id,
                "timestamp": ms,
                "properties": {
                    "plan": rng.choice(["free", "pro", "team"]),
                    "amount": rng.randrange(10_000),
                    "path": f"/p/{rng.randrange(500)}",
                },
                "context": {
                    "library": {"name": "pulseline-node", "version": "0.9.0"},
                    "ip": "203.0.113.7",
                    "locale": "en-GB",
                },
            },
            separators=(",", ":"),
        )
        rows.append((1, message_id, "track", name, user, None, ms, now, body))
    return rows


def pg_cpu_seconds(postmaster: int) -> float:
    """User + system CPU of the postmaster and every process under it, reaped ones included."""
    total = 0
    children = pathlib.Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text()
    pids = [postmaster] + [int(p) for p in children.split()]
    for pid in pids:
        try:
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += sum(int(f) for f in fields[11:15])
    return total / TICKS


def columns(batch: list[tuple]) -> list[list]:
    return [list(c) for c in zip(*batch)]


def store(conn: psycopg.Connection, variant: str, batch: list[tuple]) -> tuple[int, int]:
    """Stores one batch durably; returns how many events were new and rollup rows written."""
    with conn.transaction(), conn.cursor() as cur:
        if variant == "copy":
            with cur.copy(f"COPY events ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int8", "text", "text", "text", "text", "text", "int8", "int8", "text"])
                for row in batch:
                    copy.write_row(row)
            return len(batch), 0
        if variant == "fold":
            # Held until commit, so the fold can wait out every commit that has taken seqs.
            cur.execute("SELECT pg_advisory_xact_lock_shared(%s)", [FOLD_LOCK])
        if variant.startswith("dedupe") or variant == "fold":
            cols = columns(batch)
            if variant == "dedupe16":
                cur.execute(
                    DEDUPE.replace("TEXT[]", "UUID[]"), [cols[0], [uuid.UUID(m) for m in cols[1]], cols[7]]
                )
                fresh = {str(r[0]) for r in cur.fetchall()}
            else:
                cur.execute(DEDUPE, [cols[0], cols[1], cols[7]])
                fresh = {r[0] for r in cur.fetchall()}
            batch = [row for row in batch if row[1] in fresh]
            if not batch:
                return 0, 0
        if variant == "unique":
            cur.execute(INSERT_EVENTS + " ON CONFLICT DO NOTHING", columns(batch))
            return cur.rowcount, 0
        cur.execute(INSERT_EVENTS, columns(batch))
        if variant == "dedupe+user-days":
            days: dict[tuple, int] = {}
            for row in batch:
                key = (row[0], row[3], row[4], row[6] // 86_400_000)
                days[key] = days.get(key, 0) + 1
            keys = sorted(days)
            cur.execute(UPSERT_USER_DAYS, [*map(list, zip(*keys)), [days[k] for k in keys]])
            return len(batch), len(keys)
        return len(batch), 0


def run_variant(
    admin_url: str,
    variant: str,
    events: list[tuple],
    batch: int,
    workers: int,
    postmaster: int,
    fold_seconds: float,
):
    name = "pl_floor_" + variant.replace("+", "_").replace("-", "_")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    url = admin_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(UNIQUE_SCHEMA if variant == "unique" else SCHEMA)
        if variant == "dedupe16":
            conn.execute("ALTER TABLE event_ids ALTER COLUMN message_id TYPE uuid USING message_id::uuid")
        if variant == "dedupe+btrees":
            conn.execute(BTREES)
        if variant in ("dedupe+user-days", "fold"):
            conn.execute(USER_DAYS)
        if variant == "fold":
            conn.execute("CREATE INDEX events_by_seq ON events USING brin (seq)")
    batches = [events[i : i + batch] for i in range(0, len(events), batch)]
    conns = [psycopg.connect(url) for _ in range(workers)]
    stored = [0] * workers
    rollup_rows = [0] * workers

    def work(w: int):
        for b in batches[w::workers]:
            new, rows = store(conns[w], variant, b)
            stored[w] += new
            rollup_rows[w] += rows

    with conns[0].cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn()")
        wal_before = cur.fetchone()[0]
    conns[0].commit()
    cpu_before = pg_cpu_seconds(postmaster)
    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    folds = Folds(url) if variant == "fold" else None
    if folds:
        while any(t.is_alive() for t in threads):
            time.sleep(fold_seconds)
            folds.fold()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if folds:
        folds.fold()
        folds.close()
    cpu = pg_cpu_seconds(postmaster) - cpu_before
    with conns[0].cursor() as cur:
        cur.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [wal_before])
        wal = float(cur.fetchone()[0])
        cur.execute("SELECT count(*) FROM events")
        rows = cur.fetchone()[0]
        if variant in ("dedupe+user-days", "fold"):
            # Every stored event is counted once in the rollup: a fold skipped nothing.
            cur.execute("SELECT sum(events) FROM user_days")
            counted = cur.fetchone()[0]
            assert counted == rows, f"{variant}: the rollup counts {counted} of {rows} events"
    for c in conns:
        c.close()
    total = sum(stored)
    assert rows == total == len(events), (rows, total, len(events))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name}")
    rows = folds.rows if folds else sum(rollup_rows)
    return total, elapsed, cpu, wal, rows


class Folds:
    """The `fold` variant's background writer: folds the events stored since the last fold."""

    def __init__(self, url: str):
        self.conn = psycopg.connect(url, autocommit=True)
        self.done = 0
        self.rows = 0

    def fold(self):
        # A commit takes its seqs before it commits, so a seq below the sequence's last value
        # may still be in flight: the exclusive lock waits for every commit holding the shared
        # one, after which each seq up to the value read is committed or never will be.
        self.conn.execute("SELECT pg_advisory_lock(%s)", [FOLD_LOCK])
        upto = self.conn.execute("SELECT last_value FROM events_seq").fetchone()[0]
        self.conn.execute("SELECT pg_advisory_unlock(%s)", [FOLD_LOCK])
        if upto > self.done:
            self.rows += self.conn.execute(FOLD, [self.done, upto]).rowcount
            self.done = upto

    def close(self):
        self.conn.close()


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--fold-seconds", type=float, default=1.0)
    args = parser.parse_args()
    admin_url = os.environ["PG_URL"]
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}; one of {', '.join(VARIANTS)}")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        data_dir = admin.execute("SHOW data_directory").fetchone()[0]
    postmaster = int(pathlib.Path(data_dir, "postmaster.pid").read_text().split()[0])
    events = make_events(args.events, seed=7, users=args.users)
    print("| round | variant | events | events/s | PostgreSQL CPU µs/event | WAL bytes/event | rollup rows |")
    print("|---|---|---|---|---|---|---|")
    for r in range(args.rounds):
        for v in variants:
            total, elapsed, cpu, wal, rows = run_variant(
                admin_url, v, events, args.batch, args.workers, postmaster, args.fold_seconds
            )
            print(
                f"| {r + 1} | {v} | {total:,} | {total / elapsed:,.0f} | {cpu * 1e6 / total:.1f} "
                f"| {wal / total:,.0f} | {rows:,} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
