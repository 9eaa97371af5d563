#!/usr/bin/env bash
# apps-root.sh builds the Debian root the lab's application images are cut
# from (scripts/images.sh): PostgreSQL 15 and nginx from bookworm, as
# Debian packages them, with no registry. It is made once with debootstrap
# from the archive this machine already uses (no host name lives in this
# repo) and kept in $APPS_ROOT; it is made again only when this script
# changes. PostgreSQL's data directory is initialised here, once, so that
# the image made from it stays the same from run to run.
set -euo pipefail

APPS_ROOT=${APPS_ROOT:-/var/lib/dockmove-root/apps}
SUITE=bookworm
PACKAGES=postgresql-15,nginx-light
READY=$APPS_ROOT/.dockmove-ready

# shellcheck source=scripts/archive.sh
. "$(dirname "$0")/archive.sh"

log() { printf 'apps-root: %s\n' "$*" >&2; }
die() { printf 'apps-root: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

recipe=$(sha256sum "$0" | cut -c1-16)
if [ "$(sed -n 's/^recipe=//p' "$READY" 2>/dev/null)" = "$recipe" ]; then
	exit 0
fi
if ! command -v debootstrap >/dev/null; then
	log "installing debootstrap"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi
uri=$(archive_uri) || die "no archive URI"
tmp=$APPS_ROOT.tmp
rm -rf "$tmp"
mkdir -p "$(dirname "$APPS_ROOT")"
log "debootstrap $SUITE with $PACKAGES into $APPS_ROOT (about two minutes, ~500 MB)"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$tmp" "$uri" \
	>"$(dirname "$APPS_ROOT")/apps-debootstrap.log" 2>&1; then
	tail -n 20 "$(dirname "$APPS_ROOT")/apps-debootstrap.log" >&2
	die "debootstrap failed (log: $(dirname "$APPS_ROOT")/apps-debootstrap.log)"
fi
# A cluster of our own (the package's is laid out for Debian's wrappers):
# C locale, clients of any address trusted (the lab's network only).
rm -rf "$tmp/srv/pgdata"
mkdir -p "$tmp/srv/pgdata"
chroot "$tmp" chown postgres:postgres /srv/pgdata
chroot "$tmp" su postgres -s /bin/sh -c \
	"/usr/lib/postgresql/15/bin/initdb -D /srv/pgdata --no-locale -E UTF8 -A trust" >/dev/null ||
	die "initdb failed"
echo 'host all all 0.0.0.0/0 trust' >>"$tmp/srv/pgdata/pg_hba.conf"
{
	for p in postgresql-15 nginx-light; do
		printf '%s=%s\n' "$p" "$(chroot "$tmp" dpkg-query -W -f='${Version}' "$p")"
	done
	echo "recipe=$recipe"
} >"$tmp/.dockmove-ready.new"
mv "$tmp/.dockmove-ready.new" "$tmp/.dockmove-ready"
rm -rf "$APPS_ROOT"
mv "$tmp" "$APPS_ROOT"
log "ready: $(tr '\n' ' ' <"$READY")"
