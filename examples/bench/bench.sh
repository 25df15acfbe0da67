#!/usr/bin/env bash
# Benchmark: one Caddy listening in N network namespaces (this plugin) against
# HAProxy, socat and a direct connection, for the same traffic (issue 6).
# Run as root on Linux:
#
#   examples/bench/bench.sh quick    # N = 1 and 100, 3 runs x 2 s loads (~7 min)
#   examples/bench/bench.sh full     # N = 1, 100 and 1000, 5 runs x 3 s (~25 min)
#
# It creates namespaces ${PREFIX}1..${PREFIX}N (default prefix cnb-), each
# with lo up and a veth to the root namespace (fixed MACs, permanent
# neighbour entries, so 1000 veths do not overflow the neighbour table), the
# backend address $BACKEND_IP on the root side of the first veth, and the
# backends on 127.0.0.1 and $BACKEND_IP: a Go echo
# server (TCP and UDP, port $BACKEND_PORT) and iperf3 (port $IPERF_PORT).
# The cases, each proxying port 8000 (64-byte echo, TCP and UDP) and 8001
# (iperf3) inside every namespace:
#
#   ours     our Caddy, netns/<ns>/tcp/:8000 ... in all N namespaces, one
#            server per port, netns_proxy to 127.0.0.1 (root namespace)
#   l4proxy  the same listeners with caddy-l4's stock proxy handler
#   haproxy  HAProxy, one process, mode tcp, "bind 0.0.0.0:8000 namespace
#            <ns>" per namespace, server 127.0.0.1 (no UDP: it has none)
#   socat    one socat per namespace and port (ip netns exec), fork mode;
#            it runs inside the namespace, so it reaches the backend over
#            the veth at $BACKEND_IP, not over loopback
#   direct   no proxy: the clients in the namespaces connect to
#            $BACKEND_IP over their veth (the physical reference)
#   base     with BASELINE=/path/to/caddy: that build with ours's config,
#            to compare a change with the build before it in one run
#
# and for each, N in $NS_LIST and run 1..$RUNS (cases interleaved in each
# run, the order rotated from run to run, so that the noise of a shared
# machine falls on all of them alike):
# start the proxy, time until every namespace's port 8000 answers an echo,
# OS threads, processes and RSS (/proc/<pid>/status; summed over socat's
# processes), the same probe again against the running proxy, then iperf3 (one stream from the first namespace, through
# port 8001), the connection rate of short transactions (32 clients, one
# connection each, rotating over the namespaces) and the proxy's CPU time
# (user, system, both) per connection during it, echo p50/p99 on one
# persistent connection, UDP request/response rate (32 flows), threads
# again at the end of the loads and 1 s later, and stop the proxy. Then SCTP: the sctp app's proxy against a
# direct association, in a qemu guest (TestSCTPProxyBenchmark; this host
# has no SCTP; SCTP=0 skips it). It prints one table of medians with
# ratios to HAProxy and to direct, checks the targets of issue 6, and writes
# $OUT.raw.csv (every sample) and $OUT.csv (medians and ratios).
#
# Environment: NS_LIST, RUNS, DUR (seconds per load), CASES, BASELINE, SCTP, OUT, PREFIX,
# CADDY (a Caddy built with this plugin and caddy-l4; default: build it with
# xcaddy/build.sh into ~/.cache/caddy-netns/caddy-bench), BACKEND_PORT
# (17000), IPERF_PORT (17001), NET_PREFIX (10.213: the veth /30s are
# $NET_PREFIX.0.0/20), BACKEND_IP (10.214.0.1).
#
# Every load is bounded in time (and wrapped in timeout); everything the
# script creates (namespaces, veths, processes, its
# temporary directory) is removed by a trap on exit.
set -euo pipefail

MODE=${1:-quick}
# BASELINE: another Caddy build (say, of the previous commit) measured as
# case "base" with the same config as ours, interleaved in the same runs.
: "${BASELINE:=}"
case $MODE in
quick) : "${NS_LIST:=1 100}" "${RUNS:=3}" "${DUR:=2}" ;;
full) : "${NS_LIST:=1 100 1000}" "${RUNS:=5}" "${DUR:=3}" ;;
*) echo "usage: $0 quick|full" >&2; exit 2 ;;
esac
: "${CASES:=ours l4proxy haproxy socat direct${BASELINE:+ base}}"
[[ " $CASES " != *" base "* || -x "$BASELINE" ]] || { echo "case base needs BASELINE=/path/to/caddy" >&2; exit 2; }
: "${PREFIX:=cnb-}" "${BACKEND_PORT:=17000}" "${IPERF_PORT:=17001}"
: "${NET_PREFIX:=10.213}" "${BACKEND_IP:=10.214.0.1}"
: "${OUT:=$PWD/netns-bench-$(date -u +%Y%m%dT%H%M%SZ)}"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(uname -s)" = Linux ] || die "network namespaces need Linux"
[ "$(id -u)" -eq 0 ] || die "run as root"
maxn=0
for n in $NS_LIST; do [ "$n" -gt "$maxn" ] && maxn=$n; done
[ "$maxn" -le 4096 ] || die "at most 4096 namespaces (the /30s of $NET_PREFIX.0.0/20)"

# --- tools ----------------------------------------------------------------------
missing=()
for t in haproxy:haproxy iperf3:iperf3 socat:socat ip:iproute2 timeout:coreutils setsid:util-linux; do
	command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || die "missing: ${missing[*]}"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get update -qq
	timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || die "Go is needed for the load generator"

# --- refuse to collide ------------------------------------------------------------
if ip netns list | grep -e "^${PREFIX}[0-9]" >/dev/null; then
	die "namespaces named ${PREFIX}<n> exist already (a previous run killed with SIGKILL?); remove them or set PREFIX"
fi
ip link show cnbr1 >/dev/null 2>&1 && die "interface cnbr1 exists already"
ip -br addr | grep -F " $BACKEND_IP/" >/dev/null && die "$BACKEND_IP is in use already"
busy=$(ss -Hltnu "( sport = :$BACKEND_PORT or sport = :$IPERF_PORT )" || true)
[ -z "$busy" ] || die "ports $BACKEND_PORT/$IPERF_PORT are in use in the root namespace"

# --- cleanup ------------------------------------------------------------------------
work=$(mktemp -d /tmp/caddy-netns-bench.XXXXXX)
cg= # the cgroup that measures the proxy's CPU time (see cpu_ns)
pgids=()   # process groups we started (each with setsid)
created=0  # namespaces created so far
stop_groups() { # stop_groups PGID...: TERM, then KILL what is left
	local g
	[ $# -gt 0 ] || return 0
	for g in "$@"; do kill -TERM -- "-$g" 2>/dev/null || true; done
	for _ in $(seq 50); do
		local alive=0
		for g in "$@"; do kill -0 -- "-$g" 2>/dev/null && alive=1 && break; done
		[ $alive -eq 0 ] && return 0
		sleep 0.1
	done
	for g in "$@"; do kill -KILL -- "-$g" 2>/dev/null || true; done
}
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	log "cleaning up"
	# a running load: timeout leads a process group of its own
	[ -z "${cur:-}" ] || stop_groups "$cur"
	stop_groups "${pgids[@]}"
	local i
	if [ "$created" -gt 0 ]; then
		{ for i in $(seq "$created"); do echo "link del cnbr$i"; done; } | ip -force -batch - 2>/dev/null
		{ for i in $(seq "$created"); do echo "netns del $PREFIX$i"; done; } | ip -force -batch - 2>/dev/null
	fi
	rm -rf "$work"
	# the cgroup empties once the processes killed above are gone
	for i in 1 2 3 4 5 6 7 8 9 10; do [ -z "$cg" ] || [ ! -d "$cg" ] || rmdir "$cg" 2>/dev/null || sleep 0.2; done
	log "removed: processes, $created namespaces and their veths, $work${cg:+, $cg}"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ulimit -n "$(ulimit -Hn)"
export XDG_CONFIG_HOME=$work/xdg XDG_DATA_HOME=$work/xdg # Caddy keeps its autosave there

# --- binaries ------------------------------------------------------------------------
log "building the load generator"
(cd "$repo" && go build -o "$work/load" ./examples/bench/load/)
LOAD=$work/load
if [ -z "${CADDY:-}" ] && [[ " $CASES " == *" ours "* || " $CASES " == *" l4proxy "* ]]; then
	CADDY=${XDG_CACHE_HOME:-$HOME/.cache}/caddy-netns/caddy-bench
	log "building Caddy with xcaddy/build.sh into $CADDY"
	mkdir -p "$(dirname "$CADDY")"
	timeout 1800 "$repo/xcaddy/build.sh" "$CADDY" >"$work/build.log" 2>&1 ||
		{ tail -n 30 "$work/build.log" >&2; die "build failed"; }
fi

# --- namespaces, veths, backends --------------------------------------------------------
# Namespace i: veth cnbr<i> (root) <-> v0 (in the namespace), a /30 each:
# root side $NET_PREFIX.<hi>.<lo+1>, namespace side +2, default route via the
# root side; fixed MACs and permanent neighbour entries on both sides.
addr_of() { # addr_of I OFFSET
	local b=$(((($1 - 1) * 4) + $2))
	echo "$NET_PREFIX.$((b / 256)).$((b % 256))"
}
mac_of() { printf '02:cb:%02x:%02x:%02x:%02x' "$2" 0 $(($1 / 256)) $(($1 % 256)); }

log "creating $maxn namespaces with veths"
t0=$(date +%s%N)
{ for i in $(seq "$maxn"); do echo "netns add $PREFIX$i"; done; } | ip -batch -
created=$maxn
{
	for i in $(seq "$maxn"); do
		echo "link add cnbr$i address $(mac_of "$i" 1) type veth peer name v0 address $(mac_of "$i" 2) netns $PREFIX$i"
		echo "addr add $(addr_of "$i" 1)/30 dev cnbr$i"
		echo "link set cnbr$i up"
		echo "neigh replace $(addr_of "$i" 2) lladdr $(mac_of "$i" 2) dev cnbr$i nud permanent"
	done
	# The backend address: a /32 on the first veth's root side (this kernel
	# may lack the dummy driver); it goes away with the veth.
	echo "addr add $BACKEND_IP/32 dev cnbr1"
} | ip -batch -
for i in $(seq "$maxn"); do
	printf '%s\n' "link set lo up" "addr add $(addr_of "$i" 2)/30 dev v0" "link set v0 up" \
		"route add default via $(addr_of "$i" 1) dev v0" \
		"neigh replace $(addr_of "$i" 1) lladdr $(mac_of "$i" 1) dev v0 nud permanent" |
		ip -n "$PREFIX$i" -batch -
done
log "namespaces ready in $(( ($(date +%s%N) - t0) / 1000000 )) ms"

# start NAME CMD...: run CMD in a process group of its own, log in $work/NAME.log
start() {
	local name=$1
	shift
	setsid "$@" >>"$work/$name.log" 2>&1 &
	pgids+=($!)
	last_pid=$!
}
start backend "$LOAD" backend -tcp "127.0.0.1:$BACKEND_PORT,$BACKEND_IP:$BACKEND_PORT" \
	-udp "127.0.0.1:$BACKEND_PORT,$BACKEND_IP:$BACKEND_PORT"
start iperf-lo iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT"
start iperf-veth iperf3 -s -B "$BACKEND_IP" -p "$IPERF_PORT"
sleep 0.5
# The direct path must work from a namespace before anything is measured.
"$LOAD" wait -prefix "$PREFIX" -n "$maxn" -addr "$BACKEND_IP:$BACKEND_PORT" -timeout 20s >/dev/null ||
	die "the backend does not answer over the veths: $(cat "$work/backend.log")"

# --- configs ------------------------------------------------------------------------------
# render TEMPLATE N HANDLER: lines "@LISTEN net port@" / "@BIND port@" become
# one line per namespace; @BACKEND_PORT@, @IPERF_PORT@ and
# "@HANDLER net addr@" are filled in.
render() {
	local tmpl=$1 n=$2 handler=$3
	sed -e "s/@BACKEND_PORT@/$BACKEND_PORT/g" -e "s/@IPERF_PORT@/$IPERF_PORT/g" "$tmpl" |
		awk -v n="$n" -v p="$PREFIX" -v h="$handler" '
		/^[ \t]*@LISTEN [a-z0-9]+ [0-9]+@[ \t]*$/ {
			match($0, /^[ \t]*/); ind = substr($0, 1, RLENGTH)
			split(substr($0, RLENGTH + 1), a, /[ @]+/)
			for (i = 1; i <= n; i++) printf "%s\"netns/%s%d/%s/:%s\"%s\n", ind, p, i, a[3], a[4], (i < n ? "," : "")
			next
		}
		/^[ \t]*@BIND [0-9]+@[ \t]*$/ {
			match($0, /^[ \t]*/); ind = substr($0, 1, RLENGTH)
			split(substr($0, RLENGTH + 1), a, /[ @]+/)
			for (i = 1; i <= n; i++) printf "%sbind 0.0.0.0:%s namespace %s%d\n", ind, a[3], p, i
			next
		}
		{
			while (match($0, /@HANDLER [a-z]+ [0-9.:]+@/)) {
				split(substr($0, RSTART + 1, RLENGTH - 2), a, " ")
				if (h == "netns_proxy") r = "{\"handler\": \"netns_proxy\", \"upstreams\": [{\"dial\": \"" a[2] "/" a[3] "\"}]}"
				else r = "{\"handler\": \"proxy\", \"upstreams\": [{\"dial\": [\"" a[2] "/" a[3] "\"]}]}"
				$0 = substr($0, 1, RSTART - 1) r substr($0, RSTART + RLENGTH)
			}
			print
		}'
}

# --- measuring ------------------------------------------------------------------------------
raw=$OUT.raw.csv
echo "n,case,metric,run,value" >"$raw"
record() { echo "$1,$2,$3,$4,$5" >>"$raw"; }

# bounded SECONDS CMD...: run CMD under timeout, its stdout in $work/out.
# It runs in the background and is waited for with the wait builtin, which a
# trapped INT or TERM interrupts at once. (A foreground `timeout` sits in a
# process group of its own, so Ctrl-C would not reach it and bash, seeing
# it exit normally, would not run the INT trap.)
cur=''
bounded() {
	local secs=$1 rc=0
	shift
	timeout "$secs" "$@" >"$work/out" &
	cur=$!
	wait "$cur" || rc=$?
	cur=''
	return "$rc"
}

# pids_of PGID...: every process in these groups (socat forks children)
pids_of() {
	local want=" $* "
	ps -eo pid=,pgid= | while read -r pid pg; do [[ $want == *" $pg "* ]] && echo "$pid"; done
}
# stats PID...: "threads processes rss_kib"
stats() {
	local pid t=0 p=0 r=0 th rs
	for pid in "$@"; do
		th=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
		rs=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || continue
		[ -n "$th" ] || continue
		t=$((t + th)) p=$((p + 1)) r=$((r + ${rs:-0}))
	done
	echo "$t $p $r"
}

# The proxy's CPU time is read from a cgroup of its own, which counts every
# process in it, socat's forks included after they exit, and rounds once
# for the whole cgroup. Summing /proc/<pid>/stat instead rounds each
# process down to 10 ms ticks, which loses nearly everything when 3000
# socat processes use a few ms each. Without a writable cgroup the script
# falls back to /proc.
for d in /sys/fs/cgroup/cpuacct /sys/fs/cgroup/unified /sys/fs/cgroup; do
	if { [ -f "$d/cpuacct.stat" ] || [ -f "$d/cpu.stat" ]; } && mkdir "$d/caddy-netns-bench.$$" 2>/dev/null; then
		cg=$d/caddy-netns-bench.$$
		break
	fi
done
[ -n "$cg" ] || log "no writable cgroup: proxy CPU time from /proc/<pid>/stat, in 10 ms ticks per process"

# cpu_ns PID...: "user system" CPU nanoseconds of these processes, their
# children, and everything else that has been in the cgroup since it was
# made (only the processes of one case at a time are moved there)
cpu_ns() {
	local pid u=0 s=0 vu vs
	if [ -n "$cg" ]; then
		for pid in "$@"; do echo "$pid" >"$cg/cgroup.procs" 2>/dev/null; done
		if [ -f "$cg/cpuacct.stat" ]; then
			# ticks, but for the whole cgroup at once; cpuacct.usage_user
			# and _sys would charge most user time to system
			awk -v hz="$(getconf CLK_TCK)" '$1 == "user" {u = $2} $1 == "system" {s = $2}
				END {printf "%.0f %.0f\n", u * 1e9 / hz, s * 1e9 / hz}' "$cg/cpuacct.stat"
		else
			awk '$1 == "user_usec" {u = $2} $1 == "system_usec" {s = $2} END {print u * 1000, s * 1000}' "$cg/cpu.stat"
		fi
		return
	fi
	for pid in "$@"; do
		read -r vu vs < <(awk '{print $14 + $16, $15 + $17}' "/proc/$pid/stat" 2>/dev/null) || continue
		u=$((u + ${vu:-0})) s=$((s + ${vs:-0}))
	done
	echo "$((u * 1000000000 / $(getconf CLK_TCK))) $((s * 1000000000 / $(getconf CLK_TCK)))"
}

case_pgids=()
case_pids() { pids_of "${case_pgids[@]}"; }

# start_case CASE N: start the proxy for N namespaces
start_case() {
	local cse=$1 n=$2 i
	case_pgids=()
	case $cse in
	ours | l4proxy | base)
		local h=netns_proxy bin=$CADDY
		[ "$cse" = l4proxy ] && h=proxy
		[ "$cse" = base ] && bin=$BASELINE
		render "$here/caddy.json.tmpl" "$n" "$h" >"$work/caddy-$cse-$n.json"
		start "caddy-$cse" "$bin" run --config "$work/caddy-$cse-$n.json"
		case_pgids=("$last_pid")
		;;
	haproxy)
		render "$here/haproxy.cfg.tmpl" "$n" - >"$work/haproxy-$n.cfg"
		start haproxy haproxy -db -f "$work/haproxy-$n.cfg"
		case_pgids=("$last_pid")
		;;
	socat)
		for i in $(seq "$n"); do
			start socat ip netns exec "$PREFIX$i" socat \
				"TCP-LISTEN:8000,fork,reuseaddr,backlog=1024" "TCP:$BACKEND_IP:$BACKEND_PORT"
			case_pgids+=("$last_pid")
			start socat ip netns exec "$PREFIX$i" socat \
				"TCP-LISTEN:8001,fork,reuseaddr,backlog=1024" "TCP:$BACKEND_IP:$IPERF_PORT"
			case_pgids+=("$last_pid")
			start socat ip netns exec "$PREFIX$i" socat -T 5 \
				"UDP-LISTEN:8000,fork,reuseaddr" "UDP:$BACKEND_IP:$BACKEND_PORT"
			case_pgids+=("$last_pid")
		done
		;;
	esac
}
stop_case() {
	stop_groups "${case_pgids[@]}"
	local g keep=()
	for g in "${pgids[@]}"; do [[ " ${case_pgids[*]} " == *" $g "* ]] || keep+=("$g"); done
	pgids=("${keep[@]}")
	case_pgids=()
}

listeners_of() { case $1 in haproxy) echo 2 ;; *) echo 3 ;; esac; }

# measure CASE N RUN
measure() {
	local cse=$1 n=$2 run=$3 eaddr=127.0.0.1:8000 baddr=127.0.0.1 bport=8001 t0 v s
	if [ "$cse" = direct ]; then
		eaddr=$BACKEND_IP:$BACKEND_PORT baddr=$BACKEND_IP bport=$IPERF_PORT
	else
		t0=$(date +%s%N)
		start_case "$cse" "$n"
		if bounded 200 "$LOAD" wait -prefix "$PREFIX" -n "$n" -addr "$eaddr" -since "$t0" -timeout 180s; then
			v=$(<"$work/out")
		else
			log "$cse N=$n: not every namespace answered; skipping this run"
			tail -n 5 "$work"/*.log >&2 || true
			stop_case
			return 0
		fi
		record "$n" "$cse" bringup_s "$run" "$v"
		sleep 1 # let start-up garbage settle before reading RSS
		read -r th pr rss < <(stats $(case_pids))
		record "$n" "$cse" threads "$run" "$th"
		record "$n" "$cse" procs "$run" "$pr"
		record "$n" "$cse" rss_mib "$run" "$(awk -v r="$rss" 'BEGIN {printf "%.1f", r / 1024}')"
		record "$n" "$cse" rss_per_listener_kib "$run" \
			"$(awk -v r="$rss" -v n="$n" -v l="$(listeners_of "$cse")" 'BEGIN {printf "%.2f", r / (n * l)}')"
		log "$cse N=$n run $run: up in ${v}s, $th threads, $pr processes, $((rss / 1024)) MiB"
		# The same probe against the running proxy: how much of the
		# bring-up time is the probe's own round of first connections.
		bounded 200 "$LOAD" wait -prefix "$PREFIX" -n "$n" -addr "$eaddr" -timeout 180s &&
			record "$n" "$cse" reprobe_s "$run" "$(<"$work/out")"
	fi
	# TCP bulk, one stream, from the first namespace
	if bounded $((DUR + 20)) ip netns exec "${PREFIX}1" iperf3 -c "$baddr" -p "$bport" -t "$DUR" -J 2>>"$work/iperf-client.log" &&
		v=$("$LOAD" iperf <"$work/out" 2>>"$work/iperf-client.log"); then
		record "$n" "$cse" tcp_gbps "$run" "$v"
	else
		log "$cse N=$n: iperf3 failed: $(tail -n 2 "$work/iperf-client.log")"
	fi
	local c0 c1 rate
	[ "$cse" = direct ] || c0=$(cpu_ns $(case_pids))
	if bounded $((DUR + 20)) "$LOAD" connrate -prefix "$PREFIX" -n "$n" -addr "$eaddr" -c 32 -d "${DUR}s"; then
		rate=$(<"$work/out")
		record "$n" "$cse" conn_per_s "$run" "$rate"
		if [ "$cse" != direct ]; then
			c1=$(cpu_ns $(case_pids))
			local du=$((${c1% *} - ${c0% *})) ds=$((${c1#* } - ${c0#* })) m
			for m in "cpu_per_conn_us $((du + ds))" "cpu_user_per_conn_us $du" "cpu_sys_per_conn_us $ds"; do
				record "$n" "$cse" "${m% *}" "$run" \
					"$(awk -v d="${m#* }" -v r="$rate" -v s="$DUR" 'BEGIN {printf "%.1f", d / 1e3 / (r * s)}')"
			done
		fi
	fi
	if bounded $((DUR + 20)) "$LOAD" echo -prefix "$PREFIX" -addr "$eaddr" -d "${DUR}s"; then
		s=$(<"$work/out")
		record "$n" "$cse" echo_p50_us "$run" "${s% *}"
		record "$n" "$cse" echo_p99_us "$run" "${s#* }"
	fi
	if [ "$cse" != haproxy ]; then
		bounded $((DUR + 20)) "$LOAD" udp -prefix "$PREFIX" -n "$n" -addr "$eaddr" -c 32 -d "${DUR}s" &&
			record "$n" "$cse" udp_pps "$run" "$(<"$work/out")"
	fi
	if [ "$cse" != direct ]; then
		read -r th pr rss < <(stats $(case_pids))
		record "$n" "$cse" threads_load "$run" "$th"
		sleep 1 # as after bring-up: idle threads left by the loads
		read -r th pr rss < <(stats $(case_pids))
		record "$n" "$cse" threads_after "$run" "$th"
		stop_case
	fi
	log "$cse N=$n run $run: done"
}

log "mode $MODE: N in {$NS_LIST}, $RUNS runs, ${DUR}s per load, cases: $CASES"
read -r -a case_list <<<"$CASES"
for n in $NS_LIST; do
	for run in $(seq "$RUNS"); do
		# Each run starts with the next case, so no case always comes first
		# (right after another case's clean-up) or last.
		for k in $(seq 0 $((${#case_list[@]} - 1))); do
			measure "${case_list[$(((k + run - 1) % ${#case_list[@]}))]}" "$n" "$run"
		done
	done
done

# SCTP: this host's kernel has no SCTP, so the sctp proxy and a direct
# association are measured inside a qemu guest by TestSCTPProxyBenchmark
# (internal/testenv/sctpvm). It installs what it needs with
# .ci/install-sctp-vm.sh; SCTP=0 skips it.
if [ "${SCTP:-1}" != 0 ]; then
	log "SCTP: TestSCTPProxyBenchmark in the qemu guest"
	if timeout 900 sh "$repo/.ci/install-sctp-vm.sh" >"$work/sctp-install.log" 2>&1 &&
		(cd "$repo" && export SCTPVM_RUN=TestSCTPProxyBenchmark &&
			bounded 900 go test -count=1 -v -run TestSCTPGuest ./modules/sctpapp/); then
		grep -o 'sctp-bench:.*' "$work/out" >&2 || true
		grep -o 'sctp-bench-csv: .*' "$work/out" | sed 's/^sctp-bench-csv: //' |
			while IFS=, read -r metric cse value; do record 1 "$cse" "$metric" 1 "$value"; done
	else
		log "SCTP: the guest benchmark failed: $(tail -n 3 "$work/sctp-install.log" "$work/out" 2>/dev/null)"
	fi
fi

echo
echo "caddy-netns benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), mode $MODE, $(nproc) CPUs, $(uname -r), $RUNS runs x ${DUR}s"
"$LOAD" report -raw "$raw" -out "$OUT.csv" -gomaxprocs "$(nproc)"
echo
echo "CSV: $OUT.csv (medians and ratios), $raw (every sample)"
