#!/usr/bin/env bash
# deps.sh installs everything dockmove needs on a Debian 12 machine, as root:
# Debian packages (Docker, runc, containerd, CRIU's build and run dependencies),
# CRIU >= 4.2.1 built from Debian's source package with the patches in
# scripts/criu-patches (each says why), and the sysctls CRIU needs.
# It is idempotent: when everything is present it changes nothing and takes
# seconds. It ends by printing CRIU's version and which kernel features (and so
# which migration strategies) this machine allows.
set -euo pipefail

CRIU_MIN=4.2.1
CRIU_BIN=/usr/local/sbin/criu
SRC_LIST=/etc/apt/sources.list.d/dockmove-src.sources
BUILD_ROOT=${DOCKMOVE_BUILD_ROOT:-/var/cache/dockmove/criu-build}
PATCH_DIR=$(cd "$(dirname "$0")" && pwd)/criu-patches
# PATCH_STAMP holds the hash of the patches the installed CRIU was built with.
PATCH_STAMP=/usr/local/lib/dockmove/criu-patches.sha256

# podman: the Podman peer of the benchmark (dockmove-bench's podman-archive).
PKGS=(
	docker.io containerd runc iproute2 iptables kmod busybox-static redis-tools
	ca-certificates curl xz-utils make gcc pkgconf patch
	groff-base systemd
	libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev
	libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler
	protobuf-compiler python3-protobuf uuid-dev
	podman conmon
)

# shellcheck source=scripts/archive.sh
. "$(dirname "$0")/archive.sh"

log() { printf 'deps: %s\n' "$*" >&2; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

# version_ge A B succeeds when version A >= version B.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | sed -n 1p)" = "$2" ]; }

missing_packages() {
	local p
	for p in "${PKGS[@]}"; do
		[[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"ok installed" ]] || echo "$p"
	done
}

install_packages() {
	local missing
	missing=$(missing_packages)
	if [ -z "$missing" ]; then
		log "Debian packages present"
		return
	fi
	log "installing:" $missing
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

installed_criu_version() {
	[ -x "$CRIU_BIN" ] || return 0
	"$CRIU_BIN" --version 2>/dev/null | sed -n 's/^Version: *//p'
}

# write_source_list adds deb-src entries for unstable and testing that reuse the
# archive URI this machine already uses, so no host name lives in this repo.
write_source_list() {
	local uri
	uri=$(archive_uri) || die "no archive URI"
	local want
	want=$(printf 'Types: deb-src\nURIs: %s\nSuites: unstable testing\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri")
	if [ "$(cat "$SRC_LIST" 2>/dev/null)" != "$want" ]; then
		printf '%s\n' "$want" >"$SRC_LIST"
	fi
	apt-get update -qq
}

# newest_criu_source prints the newest CRIU source version the signed index offers.
newest_criu_source() {
	apt-cache showsrc criu 2>/dev/null | sed -n 's/^Version: *//p' | sort -V | tail -n1
}

# fetch_orig downloads the upstream tarball of criu=$1 and verifies its sha256
# against the value apt read from the signed index.
fetch_orig() {
	local version=$1 dir=$2 line uri name sum
	line=$(apt-get source --print-uris -qq "criu=$version" | awk '/\.orig\.tar\./ && !found {print; found=1}')
	[ -n "$line" ] || die "apt offers no orig tarball for criu=$version"
	uri=$(echo "$line" | awk '{print $1}' | tr -d "'")
	name=$(echo "$line" | awk '{print $2}')
	sum=$(echo "$line" | sed -n 's/.*SHA256:\([0-9a-f]*\).*/\1/p')
	[ -n "$sum" ] || die "no SHA256 for $name in the index"
	if ! echo "$sum  $dir/$name" | sha256sum -c --quiet >/dev/null 2>&1; then
		log "downloading $name"
		curl -fsSL --retry 3 -o "$dir/$name" "$uri"
	fi
	echo "$sum  $dir/$name" | sha256sum -c --quiet >&2 || die "checksum mismatch for $name"
	echo "$dir/$name"
}

# patches_hash prints one hash of every patch CRIU is built with.
patches_hash() {
	cat "$PATCH_DIR"/*.patch | sha256sum | cut -d' ' -f1
}

build_criu() {
	local have version upstream tarball src p
	have=$(installed_criu_version)
	if [ -n "$have" ] && version_ge "$have" "$CRIU_MIN" && [ "$(cat "$PATCH_STAMP" 2>/dev/null)" = "$(patches_hash)" ]; then
		log "CRIU $have present at $CRIU_BIN"
		return
	fi
	write_source_list
	version=$(newest_criu_source)
	[ -n "$version" ] || die "the apt index offers no criu source package"
	upstream=${version%-*}
	upstream=${upstream#*:}
	version_ge "$upstream" "$CRIU_MIN" || die "newest criu source is $version, need >= $CRIU_MIN"
	log "building CRIU $upstream (source package $version)"
	mkdir -p "$BUILD_ROOT"
	tarball=$(fetch_orig "$version" "$BUILD_ROOT")
	src="$BUILD_ROOT/criu-$upstream"
	rm -rf "$src"
	mkdir -p "$src"
	tar -xf "$tarball" -C "$src" --strip-components=1
	for p in "$PATCH_DIR"/*.patch; do
		patch -d "$src" -p1 -s <"$p" || die "CRIU patch $(basename "$p") does not apply to $upstream"
	done
	make -C "$src" -j"$(nproc)" criu >"$BUILD_ROOT/build.log" 2>&1 ||
		{ tail -n 30 "$BUILD_ROOT/build.log" >&2; die "CRIU build failed (log: $BUILD_ROOT/build.log)"; }
	install -m 0755 "$src/criu/criu" "$CRIU_BIN"
	mkdir -p "$(dirname "$PATCH_STAMP")"
	patches_hash >"$PATCH_STAMP"
	log "installed CRIU $(installed_criu_version) at $CRIU_BIN"
}

# tune_sysctls raises the pipe size limit: without CAP_SYS_RESOURCE CRIU cannot
# grow its pipes past it and lazy dumps fail with "page-pipe: splice".
tune_sysctls() {
	local want=16777216 have
	have=$(cat /proc/sys/fs/pipe-max-size)
	if [ "$have" -lt "$want" ]; then
		echo "$want" >/proc/sys/fs/pipe-max-size
		log "fs.pipe-max-size $have -> $want"
	fi
}

# load_modules loads what CRIU's socket dumps and the lab's network need; a
# module built into the kernel or absent is not an error.
load_modules() {
	local m
	for m in unix_diag inet_diag tcp_diag udp_diag netlink_diag packet_diag veth macvlan bridge; do
		modprobe -q "$m" 2>/dev/null || true
	done
}

feature_table() {
	local f state
	printf '\nCRIU: %s (%s)\n' "$("$CRIU_BIN" --version | sed -n 's/^Version: *//p')" "$CRIU_BIN"
	printf '%-18s %s\n' feature state
	for f in mem_dirty_track uffd uffd-noncoop; do
		if "$CRIU_BIN" check --feature "$f" >/dev/null 2>&1; then state=yes; else state=no; fi
		printf '%-18s %s\n' "$f" "$state"
	done
	printf '\nstrategies: stop-and-copy'
	"$CRIU_BIN" check --feature uffd-noncoop >/dev/null 2>&1 && printf ', lazy'
	if "$CRIU_BIN" check --feature mem_dirty_track >/dev/null 2>&1; then
		printf ', precopy'
		"$CRIU_BIN" check --feature uffd-noncoop >/dev/null 2>&1 && printf ', hybrid'
	fi
	printf '\n'
}

install_packages
build_criu
tune_sysctls
load_modules
feature_table
