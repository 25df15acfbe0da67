#!/usr/bin/env bash
# Remove what netns-setup.sh made, idempotently.
#
#   examples/netns-teardown.sh [NS...]     # default: ns1 ns2
#
# Deletes the veth pairs netns-setup.sh created for these namespaces, and the
# namespaces themselves if netns-setup.sh created them (a namespace that
# existed before setup is left in place). Set FORCE=1 to delete the named
# namespaces regardless.
set -euo pipefail

STATE_DIR=${STATE_DIR:-/run/caddy-netns-examples}

[ "$(id -u)" -eq 0 ] || { echo "netns-teardown.sh: must run as root" >&2; exit 1; }
[ $# -gt 0 ] || set -- ns1 ns2

ifname() { # PREFIX NS
	if [ ${#2} -le 12 ]; then echo "$1-$2"; else echo "$1-$(printf '%s' "$2" | sha256sum | cut -c1-12)"; fi
}

for ns in "$@"; do
	root_if=$(ifname vr "$ns")
	# Deleting one end of a veth pair deletes both.
	if [ -e "$STATE_DIR/veth-$root_if" ]; then
		ip link del "$root_if" 2>/dev/null || true
		rm -f "$STATE_DIR/veth-$root_if"
	fi
	if [ ! -e "/run/netns/$ns" ]; then
		rm -f "$STATE_DIR/ns-$ns"
		echo "namespace $ns: absent"
	elif [ -e "$STATE_DIR/ns-$ns" ] || [ -n "${FORCE:-}" ]; then
		ip netns pids "$ns" 2>/dev/null | while read -r pid; do
			echo "netns-teardown.sh: warning: process $pid still runs in $ns" >&2
		done
		ip netns del "$ns"
		rm -f "$STATE_DIR/ns-$ns"
		echo "namespace $ns removed"
	else
		echo "namespace $ns: not created by netns-setup.sh, left in place"
	fi
done
rmdir "$STATE_DIR" 2>/dev/null || true
