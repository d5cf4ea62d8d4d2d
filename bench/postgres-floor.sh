#!/usr/bin/env bash
# Measures what PostgreSQL alone takes for Tidings' durable publishes, with
# no Tidings, no HTTP and no load generator on the cores: pgbench (C,
# prepared statements, one connection, as a node's writer is) runs the
# statement a batch of publishes to one user sends, with 1 and with 16
# messages in it, against a scratch database made here with Tidings' own
# schema. The latency of the first is the least a durable publish can wait
# for its commit on this machine; the rate of the second, times 16, is the
# most messages a second one writer connection can commit.
#
#   bench/postgres-floor.sh [URL]   URL: a PostgreSQL server and a database to
#                                   connect to first (default: TIDINGS_TEST_POSTGRES,
#                                   else postgres://root@127.0.0.1:5432/test?sslmode=disable)
#   --duration S                    seconds per pgbench run (default 5)
#
# The scratch database, tidings_floor_<pid>, is dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${TIDINGS_TEST_POSTGRES:-postgres://root@127.0.0.1:5432/test?sslmode=disable}
duration=5
while [ $# -gt 0 ]; do
	case "$1" in
	--duration) duration=$2; shift ;;
	-h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "postgres-floor.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
	*) url=$1 ;;
	esac
	shift
done
for tool in psql pgbench; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "postgres-floor.sh: $tool is missing (Debian: apt-get install postgresql-client postgresql-contrib)" >&2
		exit 1
	fi
done

db=tidings_floor_$$
# The scratch database's URL: the given one with its database replaced.
scratch=$(printf '%s' "$url" | sed -E "s#^(postgres(ql)?://[^/]*)/[^?]*#\1/$db#")
tmp=$(mktemp -d)
cleanup() {
	psql -q "$url" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
psql -q "$url" -c "CREATE DATABASE $db" >/dev/null
go build -o "$tmp/tidings" ./cmd/tidings
# Migrates the scratch database and makes user 1, with their inbox.
echo floor-password-1 | "$tmp/tidings" user add --db "$scratch" --login floor --name Floor --email floor@example.org >/dev/null

# As storeBatchOnPostgres: the events in, the inbox locked and raised, the
# messages numbered from it, the other nodes notified; committed by itself.
batch() {
	cat <<EOF
WITH ev AS (
	INSERT INTO events (id, process, module, actor_id, actor_login, actor_name, text, urgent, created_at, expires_at) OVERRIDING SYSTEM VALUE
	SELECT nextval(pg_get_serial_sequence('events', 'id')), 'floor', 'messages', 1, 'floor', 'Floor', 'a message', false, 0, 9000000000000
	FROM generate_series(1, $1) RETURNING id),
locked AS MATERIALIZED (SELECT user_id FROM inboxes WHERE user_id = ANY ('{1}'::bigint[]) ORDER BY user_id FOR UPDATE),
raised AS (
	UPDATE inboxes SET head = inboxes.head + $1
	WHERE inboxes.user_id = ANY ((SELECT array_agg(user_id) FROM locked)::bigint[])
	RETURNING inboxes.user_id, inboxes.head),
stored AS (
	INSERT INTO messages (user_id, seq, event_id, valid_from, valid_until, text)
	SELECT raised.user_id, raised.head - $1 + row_number() OVER (ORDER BY ev.id), ev.id, 0, 9000000000000, NULL FROM raised, ev),
notified AS (SELECT pg_notify('tidings_floor', 'n-|m1'))
SELECT raised.user_id, raised.head FROM (SELECT count(*) FROM notified) AS n LEFT JOIN raised ON true;
EOF
}
batch 1 >"$tmp/one.sql"
batch 16 >"$tmp/sixteen.sql"
echo "select 1;" >"$tmp/select.sql"

run() { # script → "tps latency_ms"
	pgbench -n -M prepared -c 1 -T "$duration" -f "$1" "$scratch" 2>/dev/null |
		awk '/^latency average/ {l=$4} /^tps/ {t=$3} END {printf "%.0f %.3f", t, l}'
}
read -r select_tps select_ms <<<"$(run "$tmp/select.sql")"
read -r one_tps one_ms <<<"$(run "$tmp/one.sql")"
read -r sixteen_tps sixteen_ms <<<"$(run "$tmp/sixteen.sql")"

echo "PostgreSQL alone, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(psql -Atq "$url" -c 'SHOW server_version'), synchronous_commit $(psql -Atq "$url" -c 'SHOW synchronous_commit'); pgbench, 1 connection, ${duration}s each"
echo
echo "| statement | commits/s | latency |"
echo "|---|---|---|"
echo "| SELECT 1 (a round trip) | $select_tps | $select_ms ms |"
echo "| a batch of 1 publish | $one_tps | $one_ms ms |"
echo "| a batch of 16 publishes | $sixteen_tps ($((sixteen_tps * 16)) messages/s) | $sixteen_ms ms |"
