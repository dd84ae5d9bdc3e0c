#!/usr/bin/env bash
# Fills a stopped collector's SQLite database with page views for the Web page's benchmark
# (docs/dashboard-web.md, "Measured latency"), straight into `events`, as web-seed.mjs sends
# them: visits of one to five page views a few minutes apart, from VISITORS visitors, at
# random times over the last DAYS days, with source, referrer, campaign,
# country, browser, OS and device; stored in random order, or (ORDER=time) in the order of
# their timestamps, as live traffic arrives. The database's own triggers derive `web_pageviews` and queue
# each page view for the fold, as at ingest; the collector's next start folds them, so the
# time that takes is the fold's alone. Much faster than ingest over HTTP (ten million in
# minutes, not an hour), but it fills only what the Web page reads: the other rollups
# (overview, active users) do not see these events.
#   dashboard/bench/web-seed-sqlite.sh /path/to/pulseline.db [VIEWS] [DAYS] [VISITORS] [PROJECT] [FIRST] [ORDER]
# Defaults: 10,000,000 page views, 90 days, 1,000,000 visitors, project 1. Needs sqlite3. One
# transaction per call: to fill in parts, call it again with FIRST, the number of the first
# visit, past the previous call's last (FIRST + VIEWS / 2 + 1000, which it prints: the LIMIT
# may take page views of every visit drawn, so a smaller step collides on message ids and the
# whole call is rolled back), e.g. 1,000,000 page views at a time with FIRST = 0, 510000,
# 1020000, …
set -euo pipefail
db=${1:?usage: web-seed-sqlite.sh DB [VIEWS] [DAYS] [VISITORS] [PROJECT]}
views=${2:-10000000}
days=${3:-90}
visitors=${4:-1000000}
project=${5:-1}
first=${6:-0}
order=${7:-random}
case $order in
    random) order_by='' ;;
    time) order_by='ORDER BY ts' ;;
    *) echo "ORDER is random or time, not $order" >&2; exit 2 ;;
esac
now=$(($(date +%s) * 1000))
# Visits average 2.05 page views (below); a few more are drawn than needed and cut by LIMIT.
visits=$((views * 100 / 200 + 1000))
last=$((first + visits))

# Attributes come from multiplicative hashes of the visit number (deterministic, unlike
# random(), and the same for every page view of a visit).
sqlite3 "$db" <<SQL
-- A rollback journal while seeding: in WAL mode one transaction this size would first grow
-- the WAL to the whole database's size.
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = NORMAL;
PRAGMA cache_size = -262144;
BEGIN;
WITH RECURSIVE
  v(n) AS (SELECT $first UNION ALL SELECT n + 1 FROM v WHERE n < $last),
  visit AS (
    SELECT n,
           'bench-' || ((n * 2654435761) % 4294967296 % $visitors) AS visitor,
           $now - ((n * 2246822519) % 4294967296) * ($days * 86400000 / 4294967296.0) AS start,
           (n * 3266489917) % 4294967296 % 100 AS pages_draw,
           (n * 668265263) % 4294967296 % 6 AS src,
           (n * 374761393) % 4294967296 % 5 AS agent,
           (n * 2869860233) % 4294967296 % 10 AS country,
           (n * 1597334677) % 4294967296 % 30 AS campaign
    FROM v),
  page(k) AS (VALUES (0), (1), (2), (3), (4)),
  pv AS (
    SELECT visit.*, k,
           CAST(min(start + k * ((n * 7 + k * 13) % 240) * 1000, $now) AS INTEGER) AS ts,
           CASE WHEN (n * 31 + k * 17) % 200 < 10
                THEN json_extract('["/","/pricing","/docs","/blog","/signup","/login","/about","/features","/changelog","/contact"]',
                                  '\$[' || ((n * 31 + k * 17) % 200) || ']')
                ELSE '/blog/post-' || ((n * 31 + k * 17) % 200) END AS path
    FROM visit JOIN page
      ON k < CASE WHEN pages_draw < 45 THEN 1 WHEN pages_draw < 70 THEN 2 WHEN pages_draw < 85 THEN 3
                  WHEN pages_draw < 95 THEN 4 ELSE 5 END),
  -- Materialized: otherwise SQLite applies ORDER=time's ORDER BY before the LIMIT, and keeps
  -- the earliest page views instead of every drawn visit's.
  chosen AS MATERIALIZED (SELECT * FROM pv LIMIT $views)
INSERT INTO events (project_id, message_id, type, anonymous_id, timestamp, received_at, body)
SELECT $project, printf('web-seed-sql-%09d-%d', n, k), 'page', visitor, ts, $now,
       json_object(
         'type', 'page', 'messageId', printf('web-seed-sql-%09d-%d', n, k), 'anonymousId', visitor,
         'name', path, 'timestamp', strftime('%Y-%m-%dT%H:%M:%fZ', ts / 1000.0, 'unixepoch'),
         'context', json_patch(json_object(
           'source', json_object('name', json_extract('["Google","Direct / None","Hacker News","Bing","GitHub","Reddit"]', '\$[' || src || ']'),
                                 'medium', json_extract('["search","none","social","search","referral","social"]', '\$[' || src || ']')),
           'browser', json_object('name', json_extract('["Chrome","Firefox","Safari","Chrome","Safari"]', '\$[' || agent || ']')),
           'os', json_object('name', json_extract('["Windows","Linux","iOS","Android","macOS"]', '\$[' || agent || ']')),
           'device', json_object('type', json_extract('["desktop","desktop","mobile","mobile","desktop"]', '\$[' || agent || ']')),
           'location', json_object('country', json_extract('["US","DE","FR","GB","IN","BR","JP","CA","NL","ES"]', '\$[' || country || ']')),
           'page', json_object('path', path, 'url', 'https://site.example' || path,
                               'referrer', CASE WHEN k > 0 THEN 'https://site.example/'
                                 ELSE json_extract('["https://www.google.com/","","https://news.ycombinator.com/","https://www.bing.com/","https://github.com/","https://www.reddit.com/"]', '\$[' || src || ']') END)),
           CASE WHEN campaign < 3 THEN json_object('campaign', json_object('source', 'newsletter', 'medium', 'email',
                  'name', json_extract('["spring","launch","weekly"]', '\$[' || campaign || ']')))
                ELSE '{}' END))
FROM chosen
$order_by;
COMMIT;
SELECT 'page views queued for the fold: ' || COUNT(*) FROM web_visit_pending;
SELECT 'FIRST for the next call: ' || ($last + 1);
PRAGMA journal_mode = WAL;
SQL
