#!/usr/bin/env bash
# The test command of the README: installs what the tests need (iproute2,
# util-linux's setpriv, socat, curl, and for hosts without SCTP the qemu
# guest's qemu, cloud kernel and busybox-static), runs every test of the
# repository once, and fails if any test skipped, except those that the
# same run covers elsewhere (marked "[runs elsewhere]": the SCTP tests that
# run in the qemu guest instead of on a host without SCTP, and the
# guest-only checks). Run as root on Debian; extra arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" != 0 ]; then
	echo "test.sh: run as root: the tests create network namespaces and veths" >&2
	exit 1
fi
# A privileged test that cannot run fails instead of skipping.
export CI=true

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${need[@]}"
fi
sh .ci/install-sctp-vm.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/skipcheck" ./internal/testenv/skipcheck
# skipcheck prints the package lines, keeps the whole output in the log,
# and fails on every skip not marked "[runs elsewhere]".
status=0
go test -count=1 -json "$@" ./... 2>&1 | "$tmp/skipcheck" "$tmp/test.log" || status=$?
if [ "$status" != 0 ]; then
	echo "test.sh: FAIL" >&2
	grep -B30 -A20 -E '^ *--- FAIL' "$tmp/test.log" | head -200 >&2 || true
fi
exit "$status"
