#!/usr/bin/env bash
# The canonical example's backends: six socat servers on 127.0.0.1 in the
# root namespace, one per Caddy listener, each answering one line that names
# the listener the client came through.
#
#   examples/canonical/backend.sh      # runs in the foreground until Ctrl-C / SIGTERM
#
#	port   protocol  for clients that reached Caddy through
#	9000   tcp       tcp/:8000 in the default namespace
#	9001   udp       udp/:8000 in the default namespace
#	9010   tcp       netns/ns1/tcp/:8000
#	9011   udp       netns/ns1/udp/:8000
#	9020   tcp       netns/ns2/tcp/:8000
#	9021   udp       netns/ns2/udp/:8000
#
# Each answer is "hello from the backend for <ns> (<proto> 127.0.0.1:<port>),
# you sent: <first line received>". Needs socat.
set -euo pipefail

if [ "${1:-}" = answer ]; then # answer NS PROTO PORT: one reply, run by socat
	line=
	read -r -t 1 line || true
	printf 'hello from the backend for %s (%s 127.0.0.1:%s), you sent: %s\n' "$2" "$3" "$4" "$line"
	exit 0
fi

command -v socat >/dev/null || { echo "backend.sh: socat is missing (apt-get install socat)" >&2; exit 1; }

self=$(readlink -f "${BASH_SOURCE[0]}")
tmp=
case $self in
*[!A-Za-z0-9_./-]*) # socat's address syntax would split the path: use a copy
	tmp=$(mktemp -d)
	cp "$self" "$tmp/backend.sh"
	self=$tmp/backend.sh
	;;
esac

pids=()
cleanup() {
	[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

while read -r ns proto port; do
	case $proto in
	tcp) socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=128" "EXEC:$self answer $ns tcp $port" & ;;
	udp) socat "UDP-RECVFROM:$port,bind=127.0.0.1,reuseaddr,fork" "EXEC:$self answer $ns udp $port" & ;;
	esac
	pids+=($!)
	echo "backend for $ns: $proto 127.0.0.1:$port"
done <<'LIST'
default tcp 9000
default udp 9001
ns1 tcp 9010
ns1 udp 9011
ns2 tcp 9020
ns2 udp 9021
LIST

sleep 0.3
for pid in "${pids[@]}"; do
	kill -0 "$pid" 2>/dev/null || { echo "backend.sh: a backend failed to start (port in use?)" >&2; exit 1; }
done
wait
