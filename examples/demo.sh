#!/usr/bin/env bash
# caddy-netns end-to-end demo. Run as root on Linux:
#
#   examples/demo.sh
#
# 1. builds Caddy with this checkout and caddy-l4 (xcaddy/build.sh), unless
#    CADDY=/path/to/caddy names a binary already built that way;
# 2. installs socat/curl/iproute2 with apt-get if one is missing;
# 3. creates the namespaces ns1 and ns2 (netns-setup.sh) and starts the
#    backends on 127.0.0.1 (canonical/backend.sh);
# 4. runs Caddy with canonical/Caddyfile and, from the default namespace,
#    from inside ns1 and from inside ns2, sends one TCP and one UDP request
#    to 127.0.0.1:8000, printing who asked and who answered;
# 5. reloads Caddy with canonical/Caddyfile + http-in-netns/Caddyfile and
#    asks the http app inside ns1 (and the layer4 listeners again);
# 6. loads canonical/caddy.json, then http-in-netns/caddy.json, through the
#    admin API, checking the answers and that unloaded listeners are closed.
#
# Set DEMO_LOG=/path to keep Caddy's log. Everything the demo started or
# created is removed on exit. Each step is bounded
# in time; the exit status is non-zero if any answer is missing or wrong.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
NS1=ns1 NS2=ns2 # the names the example configs use
ADMIN=localhost:2019
BUILD_TIMEOUT=${BUILD_TIMEOUT:-1800} # seconds; a first build downloads modules

say() { printf '\n== %s\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

[ "$(uname -s)" = Linux ] || die "network namespaces need Linux"
[ "$(id -u)" -eq 0 ] || die "run as root (creating namespaces and entering them needs CAP_SYS_ADMIN)"

# --- tools ----------------------------------------------------------------------
say "checking tools"
missing=()
for tool in socat:socat curl:curl ip:iproute2 ss:iproute2 timeout:coreutils setsid:util-linux; do
	command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	command -v apt-get >/dev/null || die "missing packages: ${missing[*]} (no apt-get here: install them by hand)"
	echo "installing with apt-get: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	timeout 600 apt-get update -qq
	timeout 600 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "socat, curl, ip, ss: present"

# --- caddy ------------------------------------------------------------------------
if [ -n "${CADDY:-}" ]; then
	say "using CADDY=$CADDY"
	[ -x "$CADDY" ] || die "CADDY=$CADDY is not an executable"
else
	say "building Caddy (xcaddy/build.sh)"
	command -v go >/dev/null || die "Go is needed to build Caddy (https://go.dev/dl/); or set CADDY=/path/to/caddy"
	# Outside the repository, so the binary is never committed by accident.
	CADDY=${XDG_CACHE_HOME:-$HOME/.cache}/caddy-netns/caddy
	mkdir -p "$(dirname "$CADDY")"
	buildlog=$(mktemp /tmp/caddy-netns-build.XXXXXX)
	trap 'rm -f "$buildlog"' EXIT
	echo "  (the first build downloads and compiles Caddy: several minutes; log in $buildlog)"
	if ! timeout "$BUILD_TIMEOUT" "$repo/xcaddy/build.sh" "$CADDY" >"$buildlog" 2>&1; then
		tail -n 40 "$buildlog" | sed 's/^/  /'
		die "build failed"
	fi
	grep -E '^(build\.sh|caddy binary):' "$buildlog" | sed 's/^/  /'
	rm -f "$buildlog"
	trap - EXIT
fi
"$CADDY" version

# --- free ports ------------------------------------------------------------------
busy=$(ss -Hltnu '( sport = :8000 or sport = :2019 or sport = :9000 or sport = :9001 or sport = :9010 or sport = :9011 or sport = :9020 or sport = :9021 )' || true)
[ -z "$busy" ] || die "ports the demo needs are in use in the root namespace:
$busy"

# --- cleanup on any exit ------------------------------------------------------------
work=$(mktemp -d /tmp/caddy-netns-demo.XXXXXX)
caddy_pid='' backend_pid='' setup_done=''
cleanup() {
	local rc=$?
	set +e
	say "cleaning up"
	if [ -n "$caddy_pid" ] && kill -0 "$caddy_pid" 2>/dev/null; then
		kill -TERM "$caddy_pid"
		for _ in $(seq 50); do kill -0 "$caddy_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$caddy_pid" 2>/dev/null
		echo "caddy stopped"
	fi
	if [ -n "$backend_pid" ]; then
		kill -TERM -- "-$backend_pid" 2>/dev/null || kill -TERM "$backend_pid" 2>/dev/null
		for _ in $(seq 30); do kill -0 "$backend_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL -- "-$backend_pid" 2>/dev/null
		echo "backends stopped"
	fi
	[ -z "$setup_done" ] || "$here/netns-teardown.sh" "$NS1" "$NS2"
	if [ -n "${DEMO_LOG:-}" ] && [ -f "$work/caddy.log" ]; then
		cp "$work/caddy.log" "$DEMO_LOG" && echo "Caddy's log copied to $DEMO_LOG"
	fi
	if [ "$rc" -eq 1 ] && [ -s "$work/caddy.log" ]; then
		echo "--- last lines of the Caddy log:"
		tail -n 20 "$work/caddy.log"
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- namespaces and backends -----------------------------------------------------------
say "creating namespaces $NS1 and $NS2 (netns-setup.sh)"
setup_done=1
"$here/netns-setup.sh" "$NS1" "$NS2"

say "starting the backends on 127.0.0.1 (canonical/backend.sh)"
setsid "$here/canonical/backend.sh" >"$work/backend.log" 2>&1 &
backend_pid=$!
# wait_for NAMESPACE SS-ARGS PORT...: until each port listens (at most 10 s)
wait_for() {
	local ns=$1 opts=$2 port
	shift 2
	for port in "$@"; do
		for _ in $(seq 100); do
			if [ "$ns" = default ]; then
				ss -Hln"$opts" "sport = :$port" | grep -e . >/dev/null && continue 2
			else
				ip netns exec "$ns" ss -Hln"$opts" "sport = :$port" | grep -e . >/dev/null && continue 2
			fi
			sleep 0.1
		done
		return 1
	done
}
{ wait_for default t 9000 9010 9020 && wait_for default u 9001 9011 9021; } ||
	die "backends did not start: $(cat "$work/backend.log")"
sed 's/^/  /' "$work/backend.log"

# --- checks ------------------------------------------------------------------------------
failures=0
pass() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; failures=$((failures + 1)); }
in_ns() { # in_ns NS CMD...: run CMD in namespace NS ("default": the root namespace)
	local ns=$1
	shift
	if [ "$ns" = default ]; then "$@"; else ip netns exec "$ns" "$@"; fi
}

# ask NS PROTO: one request from a client in NS to 127.0.0.1:8000 there
ask() {
	local ns=$1 proto=$2 answer label
	local addr=TCP:127.0.0.1:8000 linger=3
	[ "$proto" = udp ] && addr=UDP:127.0.0.1:8000 linger=1 # UDP has no close: wait 1 s for the reply
	answer=$(printf 'hello from a client in %s over %s\n' "$ns" "$proto" |
		in_ns "$ns" timeout 6 socat -t "$linger" -T 4 - "$addr" 2>&1 || true)
	label=$(printf 'client in %-7s %s 127.0.0.1:8000' "$ns" "$proto")
	if [[ $answer == "hello from the backend for $ns ($proto "*"you sent: hello from a client in $ns over $proto" ]]; then
		pass "$label -> $answer"
	else
		fail "$label -> ${answer:-<no answer>}"
	fi
}

ask_all() {
	local ns proto
	for ns in default "$NS1" "$NS2"; do
		for proto in tcp udp; do ask "$ns" "$proto"; done
	done
}

# http_get NS URL WANT: a GET from a client in NS must answer WANT
http_get() {
	local ns=$1 url=$2 want=$3 body
	body=$(in_ns "$ns" curl -sS --max-time 4 "$url" 2>&1 || true)
	local label
	label=$(printf 'client in %-7s GET %s' "$ns" "$url")
	if [ "$body" = "$want" ]; then pass "$label -> $body"; else fail "$label -> ${body:-<no answer>}"; fi
}
# closed NS PROTO PORT: nothing listens on PORT in NS (within 3 s: sockets of
# an unloaded config are closed right after the new config is running)
closed() {
	local ns=$1 proto=$2 port=$3 opt=t
	[ "$proto" = udp ] && opt=u
	for _ in $(seq 30); do
		if ! in_ns "$ns" ss -Hln"$opt" "sport = :$port" | grep -e . >/dev/null; then
			pass "$proto :$port in $ns is closed"
			return
		fi
		sleep 0.1
	done
	fail "$proto :$port in $ns is still open"
}

# Caddy keeps its autosave and data out of the operator's home directory.
export XDG_CONFIG_HOME=$work/config XDG_DATA_HOME=$work/data

# wait_listeners: the :8000 listeners are up everywhere (at most 10 s each)
wait_listeners() {
	local ns
	for ns in default "$NS1" "$NS2"; do
		{ wait_for "$ns" t 8000 && wait_for "$ns" u 8000; } || { fail "no listener on :8000 in $ns"; return 1; }
	done
}
wait_admin() {
	for _ in $(seq 100); do
		curl -sf --max-time 1 "http://$ADMIN/config/" >/dev/null && return 0
		kill -0 "$caddy_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# load FILE: replace Caddy's config through the admin API
load() {
	curl -sS --max-time 10 -X POST "http://$ADMIN/load" -H 'Content-Type: application/json' \
		--data-binary "@$1" || return 1
}

say "starting Caddy with canonical/Caddyfile"
setsid "$CADDY" run --config "$here/canonical/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
wait_admin || die "Caddy did not start (its log follows)"

say "canonical/Caddyfile: TCP and UDP on 127.0.0.1:8000 from each namespace"
wait_listeners && ask_all

say "reloading with canonical/Caddyfile + http-in-netns/Caddyfile"
cat "$here/canonical/Caddyfile" "$here/http-in-netns/Caddyfile" >"$work/Caddyfile"
if timeout 20 "$CADDY" reload --config "$work/Caddyfile" --adapter caddyfile --address "$ADMIN" >"$work/reload.log" 2>&1; then
	echo "  reloaded"
else
	fail "caddy reload: $(tail -n 5 "$work/reload.log")"
fi
wait_for "$NS1" t 8080 || fail "no listener on tcp :8080 in $NS1"
body="hello from Caddy's http app inside ns1"
http_get "$NS1" http://127.0.0.1:8080/ "$body"
http_get "$NS1" http://10.200.1.2:8080/ "$body"
http_get default http://10.200.1.2:8080/ "$body" # from the root namespace, over the veth
closed default tcp 8080
echo "  the layer4 listeners after the reload:"
wait_listeners && ask_all

say "loading canonical/caddy.json through the admin API"
load "$here/canonical/caddy.json" || fail "loading canonical/caddy.json"
closed "$NS1" tcp 8080
wait_listeners && ask_all

say "loading http-in-netns/caddy.json through the admin API"
load "$here/http-in-netns/caddy.json" || fail "loading http-in-netns/caddy.json"
wait_for "$NS1" t 8080 || fail "no listener on tcp :8080 in $NS1"
http_get "$NS1" http://127.0.0.1:8080/ "$body"
for ns in default "$NS1" "$NS2"; do
	closed "$ns" tcp 8000
	closed "$ns" udp 8000
done

say "result"
if [ "$failures" -eq 0 ]; then
	echo "all answers present and correct"
else
	echo "$failures check(s) failed"
	exit 1
fi
