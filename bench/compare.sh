#!/usr/bin/env bash
# Runs the same scenarios of tidings bench against Tidings and against Nchan
# (nginx's pub/sub module, in memory: Debian's nginx and libnginx-mod-nchan,
# installed here if missing) in one run on this machine, and prints one
# markdown table with both side by side, the date and the machine on top.
#
#   bench/compare.sh                1,000 / 5,000 / 9,000 held connections, 300 publishes in a row
#   bench/compare.sh --quick        1,000 only, fewer samples, shorter runs: to try it
#   bench/compare.sh --sizes 5000   other sizes (and --samples N, --duration D, --fanout N,
#                                   --idle-window D: how long 1,000 idle polls are counted)
#
# Progress goes to standard error, the table to standard output. As tidings
# bench gives each Tidings scenario a server of its own, each Nchan scenario
# gets a freshly started nginx: memory one leaves behind does not count in
# the next.
set -euo pipefail
cd "$(dirname "$0")/.."

args="$*"
sizes=1000,5000,9000
samples=300
duration=3s
fanout=2000
idle_window=1m
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) sizes=1000 samples=100 duration=1s fanout=500 idle_window=10s ;;
	--sizes) sizes=$2; shift ;;
	--samples) samples=$2; shift ;;
	--duration) duration=$2; shift ;;
	--fanout) fanout=$2; shift ;;
	--idle-window) idle_window=$2; shift ;;
	-h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
	esac
	shift
done
transports=(poll sse ws)
IFS=, read -r -a size_list <<<"$sizes"

if ! command -v nginx >/dev/null 2>&1 || [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
	echo "== installing nginx and libnginx-mod-nchan" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
fi

# The load generator holds up to the largest size in one process, nginx as
# many: both need that many open files and a few more.
max_size=$(printf '%s\n' "${size_list[@]}" | sort -n | tail -1)
need=$((max_size + 1000))
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$need" ]; then
	ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
fi
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$need" ]; then
	echo "compare.sh: $max_size held connections need $need open files, the limit here is $(ulimit -Sn)" >&2
	exit 1
fi

tmp=$(mktemp -d)
nginx_dir=$tmp/nginx
stop_nginx() {
	if [ -s "$nginx_dir/nginx.pid" ]; then
		local pid
		pid=$(cat "$nginx_dir/nginx.pid")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$nginx_dir"
}
trap 'stop_nginx; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# A loopback port nothing listens on, below the ephemeral range that the
# load generator's own connections take ports from; nginx is tried on
# another if it cannot have it after all.
ephemeral=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
user_line=
if [ "$(id -u)" = 0 ]; then
	user_line="user $(id -un) $(id -gn);" # the workers run as the current user, not nobody
fi
start_nginx() {
	for _ in 1 2 3 4 5; do
		port=$((10000 + RANDOM % (ephemeral > 12000 ? ephemeral - 10000 : 2000)))
		port_free "$port" || continue
		mkdir -p "$nginx_dir"
		sed "s#@DIR@#$nginx_dir#g; s#@PORT@#$port#g; s#@USER@#$user_line#" bench/nchan.conf.in >"$nginx_dir/nginx.conf"
		if nginx -q -c "$nginx_dir/nginx.conf" -p "$nginx_dir" -e "$nginx_dir/error.log"; then
			for _ in $(seq 50); do
				[ -s "$nginx_dir/nginx.pid" ] && ! port_free "$port" && return 0
				sleep 0.1
			done
		fi
		cat "$nginx_dir/error.log" >&2 2>/dev/null || true
		stop_nginx
	done
	echo "compare.sh: nginx did not start" >&2
	exit 1
}

echo "== building tidings" >&2
go build -o "$tmp/tidings" ./cmd/tidings
bench=("$tmp/tidings" bench --format tsv --samples "$samples" --duration "$duration" --fanout "$fanout")

echo "== Tidings: every scenario, each on a server of its own" >&2
"${bench[@]}" --sizes "$sizes" --scenarios held,answer,publish,fanout,idle --idle-window "$idle_window" >"$tmp/tidings.tsv"

nchan() {
	start_nginx
	"${bench[@]}" --target nchan --server "http://127.0.0.1:$port" --pid-file "$nginx_dir/nginx.pid" "$@" >>"$tmp/nchan.tsv"
	stop_nginx
}
for t in "${transports[@]}"; do
	for n in "${size_list[@]}"; do
		echo "== Nchan: $n held $t" >&2
		nchan --scenarios held --transports "$t" --sizes "$n"
	done
done
echo "== Nchan: publish→answered, publishes/s" >&2
nchan --scenarios answer,publish
echo "== Nchan: fan-out" >&2
nchan --scenarios fanout

# The ceiling of a Go server here: bench/empty answers each publish at once,
# without any work, so its rate is what net/http itself and the load
# generator leave of these cores.
echo "== an empty Go HTTP server: publish→answered, publishes/s" >&2
go build -o "$tmp/empty" ./bench/empty
"$tmp/empty" --addr 127.0.0.1:0 >"$tmp/empty.url" &
empty_pid=$!
for _ in $(seq 50); do [ -s "$tmp/empty.url" ] && break; sleep 0.1; done
"${bench[@]}" --target empty --server "$(cat "$tmp/empty.url")" --scenarios answer,publish >"$tmp/empty.tsv"
kill "$empty_pid" 2>/dev/null || true
wait "$empty_pid" 2>/dev/null || true

# The table: one row a figure, Tidings' and Nchan's side by side.
declare -A tid nch emp
while IFS=$'\t' read -r k v; do tid[$k]=$v; done <"$tmp/tidings.tsv"
while IFS=$'\t' read -r k v; do nch[$k]=$v; done <"$tmp/nchan.tsv"
while IFS=$'\t' read -r k v; do emp[$k]=$v; done <"$tmp/empty.tsv"
num() { echo "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'; } # 69500 → 69,500
cell() { # cell ARRAY KEY UNIT
	local -n a=$1
	if [ -n "${a[$2]:-}" ]; then echo "${a[$2]}$3"; else echo "n/a"; fi
}
cells() { # cells ARRAY KEY-PREFIX: p50 / p99 / max
	local -n a=$1
	if [ -n "${a[$2.p50]:-}" ]; then echo "${a[$2.p50]} / ${a[$2.p99]} / ${a[$2.max]} ms"; else echo "n/a"; fi
}
declare -A what=([poll]="long poll" [sse]="SSE stream" [ws]="WebSocket")

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "Tidings and Nchan, measured together on $(date -u '+%Y-%m-%d %H:%M UTC') by \`bench/compare.sh${args:+ $args}\`"
echo
echo "Machine: $(nproc) cores ($cpu), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r); the load generator runs on the same cores, over loopback."
echo "Nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo '?') in nginx $(nginx -v 2>&1 | sed 's#.*/##'), one worker, in memory; Tidings $(git describe --always --dirty 2>/dev/null || echo '?'), SQLite, durable publishes."
echo
echo "| figure | Tidings | Nchan |"
echo "|---|---|---|"
for t in "${transports[@]}"; do
	for n in "${size_list[@]}"; do
		echo "| memory per held ${what[$t]}, $(num "$n") held | $(cell tid "held.$t.$n.kb" " KB") | $(cell nch "held.$t.$n.kb" " KB") |"
	done
done
for t in "${transports[@]}"; do
	for n in "${size_list[@]}"; do
		echo "| publish → delivered p50 / p99 / max (1 long-poll subscriber, $samples publishes in a row), $(num "$n") ${what[$t]}s held | $(cells tid "held.$t.$n") | $(cells nch "held.$t.$n") |"
	done
done
echo "| publish → answered p50 / p99 / max (a publish every 2 ms, as the latency samples' publishes) | $(cells tid answer) | $(cells nch answer) |"
for p in 1 16 64; do
	r_t=${tid[publish.$p.rate]:-} r_n=${nch[publish.$p.rate]:-}
	echo "| publishes/s, $p concurrent keep-alive publisher$([ "$p" = 1 ] || echo s) | ${r_t:+$(num "$r_t") (durable)} | ${r_n:+$(num "$r_n") (in memory)} |"
done
f_t=${tid[fanout.$fanout.rate]:-} f_n=${nch[fanout.$fanout.rate]:-}
echo "| fan-out to $(num "$fanout") SSE subscribers: deliveries/s, p99 | ${f_t:+$(num "$f_t")/s, p99 ${tid[fanout.$fanout.p99]} ms} | ${f_n:+$(num "$f_n")/s, p99 ${nch[fanout.$fanout.p99]} ms} |"
i_t=${tid[idle.per_poll_minute]:-}
echo "| database queries per idle poll per minute | ${i_t:+$i_t ($(num "${tid[idle.statements]}") statements for clients while $(num "${tid[idle.polls]}") long polls waited ${tid[idle.window]}, made again $(num "${tid[idle.repolls]}") times after timing out empty)} | 0 (no database) |"
echo
echo "For scale: \`bench/empty\`, a Go \`net/http\` server that answers each publish at once and does nothing else, answered the same load generator $(num "${emp[publish.1.rate]:-0}") / $(num "${emp[publish.16.rate]:-0}") / $(num "${emp[publish.64.rate]:-0}") publishes/s at 1 / 16 / 64 publishers, and a publish every 2 ms in p50 / p99 / max $(cells emp answer): the least a latency sample costs on this machine, a round trip that wakes an idle server and load generator."
