#!/usr/bin/env bash
# modern-root.sh builds the Debian testing root that the lab's "modern" hosts
# run their Docker from: docker.io 28, containerd 2, runc 1.3 and CRIU 4.2,
# the versions people run today (bookworm, this machine's own system, has
# Docker 20.10, containerd 1.6, runc 1.1). It is made once with debootstrap
# from the archive this machine already uses (no host name lives in this
# repo) and kept in $MODERN_ROOT; later runs only check it.
#
# Usage: modern-root.sh            build the root if missing, print versions
#        modern-root.sh versions   print the versions in the root
set -euo pipefail

MODERN_ROOT=${MODERN_ROOT:-/var/lib/dockmove-root/testing}
SUITE=testing
PACKAGES=docker.io,containerd,runc,iptables,iproute2,criu,ca-certificates
READY=$MODERN_ROOT/.dockmove-ready

# shellcheck source=scripts/archive.sh
. "$(dirname "$0")/archive.sh"

log() { printf 'modern-root: %s\n' "$*" >&2; }
die() { printf 'modern-root: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

versions() {
	local root=$1 p v
	for p in docker.io containerd runc criu; do
		v=$(chroot "$root" dpkg-query -W -f='${Version}' "$p" 2>/dev/null) || v=missing
		printf '%s=%s\n' "$p" "$v"
	done
}

build() {
	local tmp=$MODERN_ROOT.tmp uri
	if ! command -v debootstrap >/dev/null; then
		log "installing debootstrap"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
	fi
	uri=$(archive_uri) || die "no archive URI"
	rm -rf "$tmp"
	mkdir -p "$(dirname "$MODERN_ROOT")"
	log "debootstrap $SUITE into $MODERN_ROOT (about a minute, ~550 MB)"
	if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$uri" \
		>"$(dirname "$MODERN_ROOT")/debootstrap.log" 2>&1; then
		tail -n 20 "$(dirname "$MODERN_ROOT")/debootstrap.log" >&2
		die "debootstrap failed (log: $(dirname "$MODERN_ROOT")/debootstrap.log)"
	fi
	# Paths the lab binds in at the same place as on this machine.
	mkdir -p "$tmp/var/lib/dockmove-lab" "$tmp/run" "$tmp/.oldroot"
	versions "$tmp" >"$tmp/.dockmove-ready"
	rm -rf "$MODERN_ROOT"
	mv "$tmp" "$MODERN_ROOT"
}

case ${1:-build} in
build)
	[ -s "$READY" ] || build
	cat "$READY"
	;;
versions) cat "$READY" ;;
*) die "usage: modern-root.sh [build|versions]" ;;
esac
