#!/usr/bin/env bash
# Build a Caddy binary with caddy-netns (from this checkout) and caddy-l4,
# using a pinned xcaddy.
#
#   xcaddy/build.sh [OUTPUT]        # default OUTPUT: <repo root>/caddy
#
# Environment overrides: CADDY_VERSION (v2.11.9), L4_VERSION (v0.1.2),
# XCADDY_VERSION (v0.4.5), CADDY_OUTPUT (same as OUTPUT), FORCE_REBUILD=1.
#
# The module path github.com/caddy-netns/caddy-netns is replaced by this
# checkout. So that the go command falls back to that replacement even when
# the configured module proxy refuses unknown modules with a 403 (which the go
# command treats as a hard error; it only falls through on 404/410), the first
# proxy from `go env GOPROXY` is kept and followed by "|off": any failure then
# falls through to "off", which counts as "not found".
set -euo pipefail

CADDY_VERSION=${CADDY_VERSION:-v2.11.9}
L4_VERSION=${L4_VERSION:-v0.1.2}
XCADDY_VERSION=${XCADDY_VERSION:-v0.4.5}
MODULE=github.com/caddy-netns/caddy-netns

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
output=${1:-${CADDY_OUTPUT:-$repo_root/caddy}}
case $output in /*) ;; *) output=$PWD/$output ;; esac

log() { printf 'build.sh: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not installed"; exit 1; }

# --- xcaddy, pinned ---------------------------------------------------------
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin=$(go env GOPATH | cut -d: -f1)/bin
xcaddy=$gobin/xcaddy
have=$(go version -m "$xcaddy" 2>/dev/null | awk '$1 == "mod" && $2 == "github.com/caddyserver/xcaddy" {print $3}' || true)
if [ "$have" != "$XCADDY_VERSION" ]; then
	log "installing xcaddy $XCADDY_VERSION (found: ${have:-none})"
	go install "github.com/caddyserver/xcaddy/cmd/xcaddy@$XCADDY_VERSION"
else
	log "xcaddy $XCADDY_VERSION already installed at $xcaddy"
fi

# --- skip the build when nothing changed -------------------------------------
# The stamp covers the versions, the Go toolchain and every Go/module file of
# the checkout; it lives outside the repository.
stamp_dir=${XDG_CACHE_HOME:-$HOME/.cache}/caddy-netns
stamp_file=$stamp_dir/build-$(printf '%s' "$output" | sha256sum | cut -c1-16).stamp
stamp=$(
	cd "$repo_root"
	{
		echo "$CADDY_VERSION $L4_VERSION $XCADDY_VERSION $(go version)"
		find . -path ./.git -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print |
			LC_ALL=C sort | xargs -r sha256sum
	} | sha256sum | cut -d' ' -f1
)
if [ -z "${FORCE_REBUILD:-}" ] && [ -x "$output" ] && [ -f "$stamp_file" ] &&
	[ "$(cat "$stamp_file")" = "$stamp" ]; then
	log "sources unchanged since the last build, keeping $output (FORCE_REBUILD=1 to rebuild)"
else
	proxy=$(go env GOPROXY)
	case $proxy in
	off | direct) goproxy=$proxy ;;
	*) goproxy="${proxy%%,*}|off" ;;
	esac
	log "building Caddy $CADDY_VERSION with $MODULE=$repo_root and caddy-l4 $L4_VERSION"
	rm -f "$stamp_file"
	GOPROXY=$goproxy "$xcaddy" build "$CADDY_VERSION" \
		--with "$MODULE=$repo_root" \
		--with "github.com/mholt/caddy-l4@$L4_VERSION" \
		--output "$output"
	mkdir -p "$stamp_dir"
	printf '%s\n' "$stamp" >"$stamp_file"
fi

# --- verify -------------------------------------------------------------------
if ! "$output" list-modules 2>/dev/null | grep -x 'layer4' >/dev/null; then
	log "FAIL: $output list-modules does not show layer4"
	exit 1
fi
if ! "$output" build-info 2>/dev/null | grep -e "$MODULE" >/dev/null; then
	log "FAIL: $output build-info does not mention $MODULE"
	exit 1
fi
log "verified: list-modules shows layer4, build-info shows $MODULE"
echo "caddy binary: $output"
