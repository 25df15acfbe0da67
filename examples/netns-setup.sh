#!/usr/bin/env bash
# Create the example network namespaces (default: ns1 ns2), idempotently.
#
#   examples/netns-setup.sh [NS...]
#
# The i-th namespace (counting from 1) gets:
#   - lo up (so 127.0.0.1 works inside it),
#   - a veth pair into the root namespace:
#       root side  vr-<NS>  ${SUBNET_PREFIX}.<i>.1/24
#       ns side    vn-<NS>  ${SUBNET_PREFIX}.<i>.2/24  (default route via .1)
#     SUBNET_PREFIX defaults to 10.200, a private test range.
#
# Namespaces this script creates are marked in $STATE_DIR (a tmpfs under /run,
# like /run/netns itself) so that netns-teardown.sh removes what setup made
# and nothing else. A namespace that already existed is reused, not marked.
set -euo pipefail

SUBNET_PREFIX=${SUBNET_PREFIX:-10.200}
STATE_DIR=${STATE_DIR:-/run/caddy-netns-examples}

[ "$(id -u)" -eq 0 ] || { echo "netns-setup.sh: must run as root" >&2; exit 1; }
command -v ip >/dev/null || { echo "netns-setup.sh: ip (iproute2) is missing" >&2; exit 1; }
[ $# -gt 0 ] || set -- ns1 ns2

# Interface names are at most 15 bytes; long namespace names are hashed.
ifname() { # PREFIX NS
	if [ ${#2} -le 12 ]; then echo "$1-$2"; else echo "$1-$(printf '%s' "$2" | sha256sum | cut -c1-12)"; fi
}

mkdir -p "$STATE_DIR"
i=0
for ns in "$@"; do
	i=$((i + 1))
	root_if=$(ifname vr "$ns")
	ns_if=$(ifname vn "$ns")
	root_ip=$SUBNET_PREFIX.$i.1
	ns_ip=$SUBNET_PREFIX.$i.2

	if [ -e "/run/netns/$ns" ]; then
		[ -e "$STATE_DIR/ns-$ns" ] || echo "netns-setup.sh: namespace $ns already exists, reusing it" >&2
	else
		ip netns add "$ns"
		: >"$STATE_DIR/ns-$ns"
	fi
	ip -n "$ns" link set lo up

	if ! ip link show "$root_if" >/dev/null 2>&1; then
		ip link add "$root_if" type veth peer name "$ns_if" netns "$ns"
		ip link set "$root_if" alias "caddy-netns example veth for $ns"
	fi
	ip addr replace "$root_ip/24" dev "$root_if"
	ip link set "$root_if" up
	ip -n "$ns" addr replace "$ns_ip/24" dev "$ns_if"
	ip -n "$ns" link set "$ns_if" up
	ip -n "$ns" route replace default via "$root_ip" dev "$ns_if"
	echo "$ns" >"$STATE_DIR/veth-$root_if"

	echo "namespace $ns: lo up, $ns_if $ns_ip/24 <-> $root_if $root_ip/24 (root namespace)"
done
