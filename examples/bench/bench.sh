#!/usr/bin/env bash
# Benchmark: one Caddy listening in N network namespaces (this plugin) against
# HAProxy, socat and a direct connection, for the same traffic (issue 6).
# Run as root on Linux:
#
#   examples/bench/bench.sh quick    # N = 1 and 100, 3 runs x 2 s loads
#   examples/bench/bench.sh full     # N = 1, 100 and 1000, 5 runs x 3 s
#   NS_LIST="1000 10000" CASES="ours set haproxy" RUNS=3 examples/bench/bench.sh full
#                                    # the fan-in sizes of issue 15
#
# It creates namespaces ${PREFIX}1..${PREFIX}N (default prefix cnb-), each
# with lo up, and a veth to the root namespace in the first $VETHS (fixed MACs, permanent
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
#   set      our Caddy with the same servers, each listening on one
#            namespace set (netns/<prefix>*/tcp/:8000, ...) instead of N
#            addresses: at the largest N the set is the pattern over
#            /var/run/netns, at smaller N over a directory holding bind
#            mounts of exactly N of the namespaces (a private tmpfs)
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
# persistent connection, UDP request/response rate (32 flows), UDP one-way
# throughput (one flow of 1400-byte datagrams, sent unpaced from the first
# namespace to port 8002 there and on to a sink: datagrams/s received,
# the share lost on the way, proxy CPU per datagram received; not HAProxy),
# threads again at the end
# of the loads and 1 s later; then, off the clock of the figures above: for
# our Caddy cases the goroutines (admin /debug/pprof/goroutine, taken right
# after bring-up) and a second POST /load of the same config
# (Cache-Control: must-revalidate, so Caddy really reloads) with its
# duration and the inodes of the listening sockets in a sample of the
# namespaces before and after; the system calls per connection (strace -c
# -f attached to the proxy during $STRACE_CONNS connections of the
# connection-rate load); for the set case at the largest N, the time from
# `ip netns add` of a new matching namespace until it answers (median of
# $APPEAR_RUNS); and stop the proxy. Then SCTP: the sctp app's proxy against a
# direct association, in a qemu guest (TestSCTPProxyBenchmark; this host
# has no SCTP; SCTP=0 skips it). It prints one table of medians with
# ratios to HAProxy and to direct (and the marginal RSS per listener from
# one N to the next), the system-call tables side by side, checks the
# targets of issues 6, 15 and 16, and writes
# $OUT.raw.csv (every sample) and $OUT.csv (medians and ratios).
#
# N may be up to 10000 and more (the fd limit is raised to match); veths
# (needed only by socat and direct) are made for the first min(N, 4096)
# namespaces when those cases are selected, and socat and direct are skipped
# at a larger N. lo is brought up in every namespace by the load program.
#
# Environment: NS_LIST, RUNS, DUR (seconds per load), CASES, BASELINE, SCTP, OUT, PREFIX,
# PER_NS (the listeners in every namespace: "tcp:8000 tcp:8001 udp:8000";
# the others only in the first; "tcp:8000 udp:8000" is issue 15's TCP + UDP
# in each, "tcp:8000" one listener each where descriptors are short),
# STRACE (1; 0 skips the system-call table), STRACE_CONNS (1000 connections
# under strace), UDP1 (1; 0 skips the one-way case), APPEAR_RUNS (5),
# RELOAD_SAMPLE (8 namespaces whose listeners are compared across the
# reload), VETHS (namespaces with a veth; default above), ADMIN_PORT (17003,
# Caddy's admin endpoint on 127.0.0.1), SINK_PORT (17002, the one-way sink),
# CADDY (a Caddy built with this plugin and caddy-l4; default: build it with
# xcaddy/build.sh into ~/.cache/caddy-netns/caddy-bench), BACKEND_PORT
# (17000), IPERF_PORT (17001), NET_PREFIX (10.213: the veth /30s are
# $NET_PREFIX.0.0/20), BACKEND_IP (10.214.0.1).
#
# Every load is bounded in time (and wrapped in timeout); everything the
# script creates (namespaces, veths, processes, strace, the set case's bind
# mounts and added namespaces, the cgroup, its
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
: "${CASES:=ours set l4proxy haproxy socat direct${BASELINE:+ base}}"
[[ " $CASES " != *" base "* || -x "$BASELINE" ]] || { echo "case base needs BASELINE=/path/to/caddy" >&2; exit 2; }
: "${PREFIX:=cnb-}" "${BACKEND_PORT:=17000}" "${IPERF_PORT:=17001}"
: "${NET_PREFIX:=10.213}" "${BACKEND_IP:=10.214.0.1}"
: "${STRACE:=1}" "${STRACE_CONNS:=1000}" "${UDP1:=1}" "${APPEAR_RUNS:=5}" "${RELOAD_SAMPLE:=8}"
: "${ADMIN_PORT:=17003}" "${SINK_PORT:=17002}"
# PER_NS: the listeners every namespace gets; the others of the three
# listen in the first namespace only (where iperf3 and the one-way UDP run)
: "${PER_NS:=tcp:8000 tcp:8001 udp:8000}"
nlisten=0
for w in $PER_NS; do
	case $w in tcp:8000 | tcp:8001 | udp:8000) nlisten=$((nlisten + 1)) ;; *) echo "PER_NS: unknown listener $w (tcp:8000, tcp:8001, udp:8000)" >&2; exit 2 ;; esac
done
[[ " $PER_NS " == *" tcp:8000 "* ]] || { echo "PER_NS must contain tcp:8000 (the probe and the connection-rate load use it)" >&2; exit 2; }
: "${OUT:=$PWD/netns-bench-$(date -u +%Y%m%dT%H%M%SZ)}"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(uname -s)" = Linux ] || die "network namespaces need Linux"
[ "$(id -u)" -eq 0 ] || die "run as root"
maxn=0
for n in $NS_LIST; do [ "$n" -gt "$maxn" ] && maxn=$n; done
# veths: only socat and direct use them; the /30s of $NET_PREFIX.0.0/20
# give at most 4096. At least one: the backend address lives on it.
if [ -z "${VETHS:-}" ]; then
	VETHS=1
	[[ " $CASES " != *" socat "* && " $CASES " != *" direct "* ]] || VETHS=$((maxn < 4096 ? maxn : 4096))
fi
[ "$VETHS" -ge 1 ] && [ "$VETHS" -le 4096 ] || die "VETHS=$VETHS: from 1 to 4096 (the /30s of $NET_PREFIX.0.0/20)"
[ "$VETHS" -le "$maxn" ] || VETHS=$maxn
[ "$maxn" -le "$(($(cat /proc/sys/user/max_net_namespaces) - APPEAR_RUNS - 16))" ] ||
	die "N=$maxn: more than /proc/sys/user/max_net_namespaces allows"

# --- tools ----------------------------------------------------------------------
missing=()
for t in haproxy:haproxy iperf3:iperf3 socat:socat ip:iproute2 timeout:coreutils setsid:util-linux strace:strace curl:curl ss:iproute2; do
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
# Any name with the prefix: the set case's pattern ${PREFIX}* would match it.
if ip netns list | grep -e "^${PREFIX}" >/dev/null; then
	die "namespaces named ${PREFIX}... exist already (a previous run killed with SIGKILL?); remove them or set PREFIX"
fi
ip link show cnbr1 >/dev/null 2>&1 && die "interface cnbr1 exists already"
ip -br addr | grep -F " $BACKEND_IP/" >/dev/null && die "$BACKEND_IP is in use already"
busy=$(ss -Hltnu "( sport = :$BACKEND_PORT or sport = :$IPERF_PORT or sport = :$SINK_PORT or sport = :$ADMIN_PORT )" || true)
[ -z "$busy" ] || die "ports $BACKEND_PORT/$IPERF_PORT/$SINK_PORT/$ADMIN_PORT are in use in the root namespace"

# --- cleanup ------------------------------------------------------------------------
work=$(mktemp -d /tmp/caddy-netns-bench.XXXXXX)
cg= # the cgroup that measures the proxy's CPU time (see cpu_ns)
pgids=()   # process groups we started (each with setsid)
tracer=    # the process group of the strace running now
created=0  # namespaces created so far
veths=0    # veths created so far (cnbr1..)
extra_ns=() # namespaces the set case added while running
sets_mnt=  # the tmpfs holding the set case's bind-mount directories
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
	# strace first, so the proxy it traces is detached before it is stopped
	[ -z "${tracer:-}" ] || stop_groups "$tracer"
	stop_groups "${pgids[@]}"
	local i
	if [ "$veths" -gt 0 ]; then
		{ for i in $(seq "$veths"); do echo "link del cnbr$i"; done; } | ip -force -batch - 2>/dev/null
	fi
	# the bind mounts first: they hold the namespaces too
	[ -z "$sets_mnt" ] || umount -l "$sets_mnt"
	if [ "$created" -gt 0 ]; then
		{ for i in $(seq "$created"); do echo "netns del $PREFIX$i"; done; } | ip -force -batch - 2>/dev/null
	fi
	for i in "${extra_ns[@]}"; do ip netns del "$i" 2>/dev/null; done
	rm -rf "$work"
	# the cgroup empties once the processes killed above are gone
	for i in 1 2 3 4 5 6 7 8 9 10; do [ -z "$cg" ] || [ ! -d "$cg" ] || rmdir "$cg" 2>/dev/null || sleep 0.2; done
	log "removed: processes, $created namespaces and their veths, $work${cg:+, $cg}"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every namespace costs the proxy up to 3 listening sockets and the load
# program one namespace handle: raise the hard limit where N needs it.
# (one per PER_NS entry) plus a margin for the loads' connections.
want_fds=$((maxn * (nlisten > 1 ? nlisten : 1) + 1024))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want_fds" ]; then
	[ "$want_fds" -le "$(cat /proc/sys/fs/nr_open)" ] || die "N=$maxn needs $want_fds descriptors; fs.nr_open is $(cat /proc/sys/fs/nr_open)"
	ulimit -Hn "$want_fds" 2>/dev/null ||
		die "N=$maxn with $nlisten listeners per namespace ($PER_NS) needs $want_fds descriptors in one process; the hard RLIMIT_NOFILE is $(ulimit -Hn) and cannot be raised here (raising it needs CAP_SYS_RESOURCE): at most N=$((($(ulimit -Hn) - 1024) / nlisten)), or fewer listeners per namespace (PER_NS=\"tcp:8000\")"
fi
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

log "creating $maxn namespaces, $VETHS with a veth"
t0=$(date +%s%N)
created=$maxn # set first: a failing ip -batch may have made some of them
{ for i in $(seq "$maxn"); do echo "netns add $PREFIX$i"; done; } | ip -batch -
veths=$VETHS
{
	for i in $(seq "$VETHS"); do
		echo "link add cnbr$i address $(mac_of "$i" 1) type veth peer name v0 address $(mac_of "$i" 2) netns $PREFIX$i"
		echo "addr add $(addr_of "$i" 1)/30 dev cnbr$i"
		echo "link set cnbr$i up"
		echo "neigh replace $(addr_of "$i" 2) lladdr $(mac_of "$i" 2) dev cnbr$i nud permanent"
	done
	# The backend address: a /32 on the first veth's root side (this kernel
	# may lack the dummy driver); it goes away with the veth.
	echo "addr add $BACKEND_IP/32 dev cnbr1"
} | ip -batch -
"$LOAD" loup -prefix "$PREFIX" -n "$maxn" || die "bringing lo up in the namespaces failed"
for i in $(seq "$VETHS"); do
	printf '%s\n' "addr add $(addr_of "$i" 2)/30 dev v0" "link set v0 up" \
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
"$LOAD" wait -prefix "$PREFIX" -n "$VETHS" -addr "$BACKEND_IP:$BACKEND_PORT" -timeout 20s >/dev/null ||
	die "the backend does not answer over the veths: $(cat "$work/backend.log")"

# --- configs ------------------------------------------------------------------------------
# render TEMPLATE N HANDLER [SET]: lines "@LISTEN net port@" / "@BIND port@"
# become one line per namespace (with SET, one namespace set address
# netns/SET/net/:port instead); "@LISTEN1 net port@" becomes the first
# namespace's address; @BACKEND_PORT@, @IPERF_PORT@, @SINK_PORT@,
# @ADMIN_PORT@ and "@HANDLER net addr@" are filled in.
render() {
	local tmpl=$1 n=$2 handler=$3 set=${4:-}
	sed -e "s/@BACKEND_PORT@/$BACKEND_PORT/g" -e "s/@IPERF_PORT@/$IPERF_PORT/g" \
		-e "s/@SINK_PORT@/$SINK_PORT/g" -e "s/@ADMIN_PORT@/$ADMIN_PORT/g" "$tmpl" |
		awk -v n="$n" -v p="$PREFIX" -v h="$handler" -v set="$set" -v perns=" $PER_NS " '
		/^[ \t]*@LISTEN [a-z0-9]+ [0-9]+@[ \t]*$/ {
			match($0, /^[ \t]*/); ind = substr($0, 1, RLENGTH)
			split(substr($0, RLENGTH + 1), a, /[ @]+/)
			if (index(perns, " " a[3] ":" a[4] " ") == 0) printf "%s\"netns/%s1/%s/:%s\"\n", ind, p, a[3], a[4]
			else if (set != "") printf "%s\"netns/%s/%s/:%s\"\n", ind, set, a[3], a[4]
			else for (i = 1; i <= n; i++) printf "%s\"netns/%s%d/%s/:%s\"%s\n", ind, p, i, a[3], a[4], (i < n ? "," : "")
			next
		}
		/^[ \t]*@LISTEN1 [a-z0-9]+ [0-9]+@[ \t]*$/ {
			match($0, /^[ \t]*/); ind = substr($0, 1, RLENGTH)
			split(substr($0, RLENGTH + 1), a, /[ @]+/)
			printf "%s\"netns/%s1/%s/:%s\"\n", ind, p, a[3], a[4]
			next
		}
		/^[ \t]*@BIND [0-9]+@[ \t]*$/ {
			match($0, /^[ \t]*/); ind = substr($0, 1, RLENGTH)
			split(substr($0, RLENGTH + 1), a, /[ @]+/)
			m = (index(perns, " tcp:" a[3] " ") == 0) ? 1 : n
			for (i = 1; i <= m; i++) printf "%sbind 0.0.0.0:%s namespace %s%d\n", ind, a[3], p, i
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
is_caddy() { case $1 in ours | set | l4proxy | base) return 0 ;; esac; return 1; }

# set_dir N: set_addr to the namespace part of the set case's addresses.
# At the largest N the pattern over /var/run/netns, where exactly the N
# namespaces match (and `ip netns add` adds members); at a smaller N a
# directory holding bind mounts of the first N (on a private tmpfs that the
# clean-up unmounts with everything below it).
set_addr=
set_dir() {
	local n=$1
	if [ "$n" -eq "$maxn" ]; then
		set_addr="${PREFIX}*"
		return
	fi
	if [ -z "$sets_mnt" ]; then
		mkdir -p "$work/sets"
		mount -t tmpfs -o mode=0755 cnb-sets "$work/sets"
		sets_mnt=$work/sets
		mount --make-private "$sets_mnt"
	fi
	[ -d "$sets_mnt/$n" ] || "$LOAD" binddir -prefix "$PREFIX" -n "$n" -dir "$sets_mnt/$n"
	set_addr="$sets_mnt/$n/${PREFIX}*"
}

# goroutines: the goroutine count of the Caddy running now (admin endpoint)
goroutines() {
	curl -s --max-time 30 "http://127.0.0.1:$ADMIN_PORT/debug/pprof/goroutine?debug=1" |
		awk 'NR == 1 && /^goroutine profile: total/ {print $4}' || true
}

# listener_inodes N: "namespace netid local-address inode" of the listening
# sockets in $RELOAD_SAMPLE namespaces spread over 1..N
listener_inodes() {
	local n=$1 i
	for i in $(awk -v n="$n" -v s="$RELOAD_SAMPLE" 'BEGIN {
		if (s > n) s = n
		for (k = 0; k < s; k++) { i = (s > 1) ? 1 + int(k * (n - 1) / (s - 1)) : 1; if (!(i in seen)) print i; seen[i] = 1 } }'); do
		ip netns exec "$PREFIX$i" ss -Hlntue 2>/dev/null |
			awk -v ns="$i" '{ino = ""; for (f = 1; f <= NF; f++) if ($f ~ /^ino:/) ino = $f; print ns, $1, $5, ino}'
	done
}
# socket_inodes PID: the sockets the process holds, sorted
socket_inodes() { find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | sort || true; }

# reload_case CASE N RUN: POST the same config again (Cache-Control:
# must-revalidate, else Caddy skips an unchanged config) and compare the
# sampled listening sockets before and after
reload_case() {
	local cse=$1 n=$2 run=$3 pid=${case_pgids[0]} res code t
	listener_inodes "$n" >"$work/ino0"
	socket_inodes "$pid" >"$work/fd0"
	res=$(curl -s -o "$work/reload.out" -w '%{http_code} %{time_total}' --max-time 120 \
		-H 'Content-Type: application/json' -H 'Cache-Control: must-revalidate' \
		--data-binary "@$work/caddy-$cse-$n.json" "http://127.0.0.1:$ADMIN_PORT/load") || true
	read -r code t <<<"$res"
	if [ "${code:-}" != 200 ]; then
		log "$cse N=$n: the reload failed (${code:-no answer}): $(head -c 300 "$work/reload.out" 2>/dev/null)"
		return 0
	fi
	sleep 0.5 # whatever the old config closes late
	listener_inodes "$n" >"$work/ino1"
	socket_inodes "$pid" >"$work/fd1"
	local sampled recreated fresh
	sampled=$(wc -l <"$work/ino0")
	recreated=$(awk 'NR == FNR {have[$4] = 1; next} !($4 in have)' "$work/ino1" "$work/ino0" | wc -l)
	# not the admin endpoint's listener: Caddy replaces it on every load
	local admin_ino
	admin_ino=$(ss -Hltne "sport = :$ADMIN_PORT" | grep -o 'ino:[0-9]*' | cut -d: -f2 || true)
	fresh=$(comm -13 "$work/fd0" "$work/fd1" | grep -vxF "socket:[${admin_ino:-none}]" | wc -l || true)
	record "$n" "$cse" reload_ms "$run" "$(awk -v t="$t" 'BEGIN {printf "%.1f", t * 1000}')"
	record "$n" "$cse" reload_sampled "$run" "$sampled"
	record "$n" "$cse" reload_recreated "$run" "$recreated"
	record "$n" "$cse" reload_new_sockets "$run" "$fresh"
	log "$cse N=$n run $run: reload ${t}s, $recreated of $sampled sampled listeners re-created, $fresh new sockets in the process"
}

# strace_case CASE N RUN ADDR: strace -c -f attached to the proxy during
# $STRACE_CONNS connections of the connection-rate load; records the calls
# per connection by system call ("sc:<name>") and their sum (sc_total)
strace_case() {
	local cse=$1 n=$2 run=$3 eaddr=$4 pid=${case_pgids[0]} spid done=0 el bound=$((DUR * 10 > 30 ? DUR * 10 : 30))
	start strace strace -c -f -qq -o "$work/strace-$cse.out" -p "$pid"
	spid=$last_pid tracer=$last_pid
	sleep 1 # attach to every thread
	if bounded $((bound + 20)) "$LOAD" connrate -prefix "$PREFIX" -n "$n" -addr "$eaddr" -c 32 \
		-count "$STRACE_CONNS" -d "${bound}s"; then
		read -r done el <"$work/out"
	fi
	kill -INT "$spid" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$spid" 2>/dev/null || true
	wait "$spid" 2>/dev/null || true
	tracer=
	local g keep=()
	for g in "${pgids[@]}"; do [ "$g" = "$spid" ] || keep+=("$g"); done
	pgids=("${keep[@]}")
	if [ "${done:-0}" -le 0 ] || [ ! -s "$work/strace-$cse.out" ]; then
		log "$cse N=$n: no system-call table ($done connections; $(tail -n 2 "$work/strace.log" 2>/dev/null))"
		return 0
	fi
	local name v total=
	while read -r name v; do
		record "$n" "$cse" "sc:$name" "$run" "$v"
		[ "$name" != total ] || { record "$n" "$cse" sc_total "$run" "$v"; total=$v; }
	done < <(awk -v n="$done" '$4 ~ /^[0-9]+$/ && $NF != "total" && $NF !~ /^-/ {c[$NF] += $4}
		END {for (k in c) {printf "%s %.2f\n", k, c[k] / n; t += c[k]} printf "total %.2f\n", t / n}' "$work/strace-$cse.out")
	log "$cse N=$n run $run: $total system calls per connection under strace ($done connections in ${el}s)"
}

# udp1_case CASE N RUN: one flow of 1400-byte datagrams, one way, from the
# first namespace to a sink the load program opens; pps received, loss and
# the proxy's CPU per datagram received
udp1_case() {
	local cse=$1 n=$2 run=$3 addr=127.0.0.1:8002 sink=127.0.0.1:$SINK_PORT c0 c1 r sent got
	case $cse in
	direct) addr=$BACKEND_IP:$SINK_PORT sink=$BACKEND_IP:$SINK_PORT ;;
	socat)
		sink=$BACKEND_IP:$SINK_PORT
		start socat ip netns exec "${PREFIX}1" socat -T 5 \
			"UDP-LISTEN:8002,fork,reuseaddr" "UDP:$BACKEND_IP:$SINK_PORT"
		case_pgids+=("$last_pid")
		sleep 0.3
		;;
	esac
	[ "$cse" = direct ] || c0=$(cpu_ns $(case_pids))
	if ! bounded $((DUR + 20)) "$LOAD" udp1 -prefix "$PREFIX" -addr "$addr" -sink "$sink" -size 1400 -d "${DUR}s"; then
		log "$cse N=$n: the one-way UDP load failed"
		return 0
	fi
	[ "$cse" = direct ] || c1=$(cpu_ns $(case_pids))
	read -r r sent got <"$work/out"
	record "$n" "$cse" udp1_pps "$run" "$r"
	record "$n" "$cse" udp1_loss_pct "$run" "$(awk -v r="$r" -v s="$sent" 'BEGIN {printf "%.1f", (s > 0) ? (s - r) * 100 / s : 0}')"
	if [ "$cse" != direct ] && [ "${got:-0}" -gt 0 ]; then
		record "$n" "$cse" udp1_cpu_ns "$run" \
			"$(awk -v d="$((${c1% *} - ${c0% *} + ${c1#* } - ${c0#* }))" -v g="$got" 'BEGIN {printf "%.0f", d / g}')"
	fi
}

# appear_case N RUN: with the set case running over /var/run/netns, add a
# matching namespace $APPEAR_RUNS times and time until it answers
appear_case() {
	local n=$1 run=$2 k name
	for k in $(seq "$APPEAR_RUNS"); do
		name=${PREFIX}x$run-$k
		extra_ns+=("$name")
		if bounded 40 "$LOAD" appear -name "$name" -addr 127.0.0.1:8000 -timeout 30s; then
			record "$n" set appear_ms "$run" "$(<"$work/out")"
		else
			log "set N=$n: $name did not answer"
		fi
		ip netns del "$name" 2>/dev/null || true
		sleep 0.5
	done
	log "set N=$n run $run: new members answered after $(awk -F, -v n="$n" '$1 == n && $3 == "appear_ms" {printf "%s ", $5}' "$raw")ms"
}

# start_case CASE N: start the proxy for N namespaces
start_case() {
	local cse=$1 n=$2 i
	case_pgids=()
	case $cse in
	ours | l4proxy | base | set)
		local h=netns_proxy bin=$CADDY set=
		[ "$cse" = l4proxy ] && h=proxy
		[ "$cse" = base ] && bin=$BASELINE
		if [ "$cse" = set ]; then
			set_dir "$n"
			set=$set_addr
		fi
		render "$here/caddy.json.tmpl" "$n" "$h" "$set" >"$work/caddy-$cse-$n.json"
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

# listeners per namespace: socat always makes all three; HAProxy has no UDP
listeners_of() {
	case $1 in
	socat) echo 3 ;;
	haproxy) local w c=0; for w in $PER_NS; do [[ $w != tcp:* ]] || c=$((c + 1)); done; echo "$c" ;;
	*) echo "$nlisten" ;;
	esac
}

# measure CASE N RUN
measure() {
	local cse=$1 n=$2 run=$3 eaddr=127.0.0.1:8000 baddr=127.0.0.1 bport=8001 t0 v s
	if [[ $cse == socat || $cse == direct ]] && [ "$n" -gt "$VETHS" ]; then
		log "$cse N=$n: skipped (it needs a veth in every namespace; VETHS=$VETHS)"
		return 0
	fi
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
		record "$n" "$cse" listeners_per_ns "$run" "$(listeners_of "$cse")"
		record "$n" "$cse" rss_per_listener_kib "$run" \
			"$(awk -v r="$rss" -v n="$n" -v l="$(listeners_of "$cse")" 'BEGIN {printf "%.2f", r / (n * l)}')"
		if is_caddy "$cse"; then
			v=$(goroutines)
			[ -z "$v" ] || record "$n" "$cse" goroutines "$run" "$v"
			log "$cse N=$n run $run: ${v:-?} goroutines"
		fi
		log "$cse N=$n run $run: up in $(awk -F, -v n="$n" -v c="$cse" -v r="$run" '$1 == n && $2 == c && $3 == "bringup_s" && $4 == r {v = $5} END {print v}' "$raw")s, $th threads, $pr processes, $((rss / 1024)) MiB"
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
		local un=$n
		[[ $cse == socat || $cse == direct || " $PER_NS " == *" udp:8000 "* ]] || un=1
		bounded $((DUR + 20)) "$LOAD" udp -prefix "$PREFIX" -n "$un" -addr "$eaddr" -c 32 -d "${DUR}s" &&
			record "$n" "$cse" udp_pps "$run" "$(<"$work/out")"
		[ "$UDP1" = 0 ] || udp1_case "$cse" "$n" "$run"
	fi
	if [ "$cse" != direct ]; then
		read -r th pr rss < <(stats $(case_pids))
		record "$n" "$cse" threads_load "$run" "$th"
		sleep 1 # as after bring-up: idle threads left by the loads
		read -r th pr rss < <(stats $(case_pids))
		record "$n" "$cse" threads_after "$run" "$th"
		# Off the clock of the figures above: they disturb the proxy.
		! is_caddy "$cse" || reload_case "$cse" "$n" "$run"
		[ "$cse" != set ] || [ "$n" -ne "$maxn" ] || [ "$APPEAR_RUNS" -le 0 ] || appear_case "$n" "$run"
		[ "$STRACE" = 0 ] || [ "$cse" = socat ] || strace_case "$cse" "$n" "$run" "$eaddr"
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
