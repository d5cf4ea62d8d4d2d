#!/usr/bin/env bash
# Runs tidings bench against Tidings and against Nchan (nginx's pub/sub
# module, Debian's nginx and libnginx-mod-nchan, installed here if missing)
# in one run, on this machine, and prints one table with both side by side.
#
#   bench/compare.sh           1,000 / 5,000 / 9,000 held connections
#   bench/compare.sh --quick   1,000 only, fewer samples
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=1000,5000,9000
samples=300
if [ "${1:-}" = "--quick" ]; then
	sizes=1000
	samples=100
fi
port=${NCHAN_PORT:-18090}

if ! command -v nginx >/dev/null 2>&1 || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
	echo "== installing nginx and libnginx-mod-nchan" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
fi
ulimit -n 20000 2>/dev/null || true

tmp=$(mktemp -d)
stop_nginx() {
	if [ -s "$tmp/nginx/nginx.pid" ]; then
		pid=$(cat "$tmp/nginx/nginx.pid")
		kill -QUIT "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "$tmp/nginx"
}
trap 'stop_nginx; rm -rf "$tmp"' EXIT

# Each transport on a fresh nginx, as tidings bench gives each scenario a
# server of its own: memory one scenario leaves behind does not count in
# the next.
start_nginx() {
	mkdir -p "$tmp/nginx"
	sed "s#@DIR@#$tmp/nginx#g; s#@PORT@#$port#g" bench/nchan.conf.in >"$tmp/nginx/nginx.conf"
	nginx -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" -e "$tmp/nginx/error.log"
	for _ in $(seq 50); do [ -s "$tmp/nginx/nginx.pid" ] && break; sleep 0.1; done
}

echo "== building tidings" >&2
go build -o "$tmp/tidings" ./cmd/tidings

echo "== Tidings" >&2
"$tmp/tidings" bench --sizes "$sizes" --samples "$samples" >"$tmp/tidings.txt"
for t in poll sse ws; do
	echo "== Nchan, $t" >&2
	start_nginx
	"$tmp/tidings" bench --nchan "http://127.0.0.1:$port" --nchan-pid-file "$tmp/nginx/nginx.pid" \
		--transports "$t" --sizes "$sizes" --samples "$samples" >"$tmp/nchan-$t.txt"
	stop_nginx
done

# Held connections from each transport's run, the rest from the last one.
{
	grep -h '^held' "$tmp"/nchan-poll.txt "$tmp"/nchan-sse.txt "$tmp"/nchan-ws.txt
	grep -hv '^held' "$tmp/nchan-ws.txt" | grep -E '^(publishes|fan-out)'
} >"$tmp/nchan.txt"

echo "Tidings and Nchan, measured together on $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r); the load generator shares the cores"
echo "nginx $(nginx -v 2>&1 | sed 's#.*/##'), Nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo '?'), one worker; Tidings $(git describe --always --dirty 2>/dev/null || echo '?'), SQLite"
echo
echo "| scenario | size | Tidings | Nchan (in memory) |"
echo "|---|---|---|---|"
awk -F'  +' '
	FNR == NR { if ($1 ~ /^(held|publishes|fan-out)/) nchan[$1 "|" $2] = $3; next }
	$1 ~ /^(held|publishes|fan-out)/ { k = $1 "|" $2; printf "| %s | %s | %s | %s |\n", $1, $2, $3, (k in nchan ? nchan[k] : "n/a") }
' "$tmp/nchan.txt" "$tmp/tidings.txt"
