#!/usr/bin/env bash
# images.sh builds the lab's test images with no registry and loads them into
# both lab daemons:
#   dockmove/busybox:lab   busybox-static applets
#   dockmove/workload:lab  the same plus /usr/local/bin/workload (cmd/workload)
#   dockmove/redis:lab     redis-server from Debian's redis-tools
#   dockmove/postgres:lab  PostgreSQL 15 from Debian, a cluster and a local client
#   dockmove/nginx:lab     nginx from Debian, serving a large file
# Each image is imported on host1 and moved to every other lab host that is
# up with save/load, as a user without a registry would. An image whose inputs did not change is left alone
# (the hash of its inputs is kept in a label).
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
LAB=scripts/lab.sh
BUILD=${DOCKMOVE_IMAGE_BUILD:-/var/lib/dockmove-lab/images}
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}
HASH_LABEL=org.dockmove.lab.hash

log() { printf 'images: %s\n' "$*" >&2; }
declare -A SOCK # host -> its dockerd's address, asked of lab.sh once
dk() {
	local h=$1
	shift
	[ -n "${SOCK[$h]:-}" ] || SOCK[$h]=$(bash "$LAB" env "$h" | sed -n 's/^LAB_DOCKER_HOST=//p')
	"$DOCKER_CLI" -H "${SOCK[$h]}" "$@"
}

# make_rootfs DIR fills DIR with busybox and the few files programs expect.
make_rootfs() {
	local root=$1 applet
	rm -rf "$root"
	mkdir -p "$root"/{bin,etc,tmp,data,proc,sys,dev,usr/local/bin}
	chmod 1777 "$root/tmp"
	cp /bin/busybox "$root/bin/busybox"
	for applet in $("$root/bin/busybox" --list); do
		[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# tree_hash prints a hash of a directory's names, modes, owners and contents.
tree_hash() {
	(cd "$1" && find . -printf '%p %m %U:%G %l\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# up_hosts prints the lab hosts besides host1 whose dockerd answers.
up_hosts() {
	local h
	for h in host2 host3 host4; do
		dk "$h" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1 && echo "$h"
	done
	return 0
}

# ident HOST TAG...: each image's inputs hash and layer diff IDs, one a
# line. An image is compared by these, not by its ID (the containerd image
# store, host4, names the same image by another ID) nor by the hash alone:
# an image imported again from the same inputs has the same hash but new
# layers (the files' times differ), and a host left with the old layers
# makes the tests' "host2 has the base layers" untrue.
ident() {
	dk "$1" image inspect --format "{{index .Config.Labels \"$HASH_LABEL\"}} {{.RootFS.Layers}}" "${@:2}" 2>/dev/null
}

# import_image TAG ROOT CMD [CHANGE...]: import on host1 unless current
# (CHANGE: more Dockerfile instructions, as USER postgres), then copy to
# the other hosts.
import_image() {
	local tag=$1 root=$2 cmd=$3 hash h have c want
	local changes=(--change "CMD $cmd")
	for c in "${@:4}"; do changes+=(--change "$c"); done
	hash=$(printf '%s %s\n' "$(tree_hash "$root")" "$cmd ${*:4}" | sha256sum | cut -c1-16)
	have=$(dk host1 image inspect --format "{{index .Config.Labels \"$HASH_LABEL\"}}" "$tag" 2>/dev/null || true)
	if [ "$have" != "$hash" ]; then
		tar -C "$root" --numeric-owner -c . |
			dk host1 import "${changes[@]}" --change "LABEL $HASH_LABEL=$hash" - "$tag" >/dev/null
		log "built $tag ($hash) on host1"
	fi
	printf '%s %s\n' "$tag" "$hash" >> "$BUILD/.images"
	want=$(ident host1 "$tag")
	for h in $(up_hosts); do
		if [ "$(ident "$h" "$tag" || true)" != "$want" ]; then
			dk host1 save "$tag" | dk "$h" load >/dev/null
			log "loaded $tag into $h"
		fi
	done
}

# The inputs of every image, cheaply: this script, the apps' files, the
# workload binary's digest (go build is cached), and the host files the
# images are cut from by name, size and time. When they and every image
# on every host that is up are as the last build left them, there is
# nothing to do (building the roots again to hash them took 23 s).
APPS_ROOT=${APPS_ROOT:-/var/lib/dockmove-root/apps}
mkdir -p "$BUILD"
bash scripts/apps-root.sh
CGO_ENABLED=0 go build -trimpath -o "$BUILD/workload.bin" ./cmd/workload
inputs=$({
	cat "$0" scripts/apps/* scripts/apps-root.sh
	sha256sum "$BUILD/workload.bin"
	stat -c '%n %s %Y' /bin/busybox /usr/bin/redis-check-rdb $(ldd /usr/bin/redis-check-rdb | grep -o '/[^ ]*') "$APPS_ROOT/.dockmove-ready" 2>&1 || true
} | sha256sum | cut -c1-16)
# current: every image of the last build is on host1, with the inputs'
# hash it was built with, and each other host that is up has the same
# images (hash and layers, see ident).
current() {
	local h want have
	[ "$(cat "$BUILD/.inputs" 2>/dev/null)" = "$inputs" ] && [ -s "$BUILD/.images" ] || return 1
	# (one question per host: the images in the order of the tags)
	want=$(ident host1 $(cut -d' ' -f1 "$BUILD/.images")) || return 1
	[ "$(cut -d' ' -f1 <<<"$want")" = "$(cut -d' ' -f2 "$BUILD/.images")" ] || return 1
	for h in $(up_hosts); do
		have=$(ident "$h" $(cut -d' ' -f1 "$BUILD/.images")) || return 1
		[ "$have" = "$want" ] || return 1
	done
}
if current; then
	exit 0
fi
rm -f "$BUILD/.inputs" "$BUILD/.images"

make_rootfs "$BUILD/busybox"
import_image dockmove/busybox:lab "$BUILD/busybox" '["/bin/sh"]'

make_rootfs "$BUILD/workload"
install -m 0755 "$BUILD/workload.bin" "$BUILD/workload/usr/local/bin/workload"
import_image dockmove/workload:lab "$BUILD/workload" '["/usr/local/bin/workload","--data-dir","/data"]'

# redis-server from Debian's redis-tools (redis-check-rdb is the server
# binary, named by argv[0]) with the shared libraries it needs.
make_rootfs "$BUILD/redis"
mkdir -p "$BUILD/redis/usr/bin"
cp /usr/bin/redis-check-rdb "$BUILD/redis/usr/bin/redis-server"
for lib in $(ldd /usr/bin/redis-check-rdb | grep -o '/[^ ]*'); do
	mkdir -p "$BUILD/redis$(dirname "$lib")"
	cp -L "$lib" "$BUILD/redis$lib"
done
import_image dockmove/redis:lab "$BUILD/redis" '["/usr/bin/redis-server","--bind","0.0.0.0","--protected-mode","no","--save","","--appendonly","no"]'

# copy_from_root ROOT IMG PATH...: each PATH of ROOT (a file or a
# directory) into the image root IMG, with the shared libraries every ELF
# file among them needs, as ROOT's own loader resolves them.
copy_from_root() {
	local root=$1 img=$2 p f lib
	shift 2
	for p in "$@"; do
		mkdir -p "$img$(dirname "$p")"
		cp -a "$root$p" "$img$(dirname "$p")/"
		while IFS= read -r f; do
			f=${f#"$root"}
			for lib in $(chroot "$root" ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true); do
				[ -e "$img$lib" ] && continue
				mkdir -p "$img$(dirname "$lib")"
				cp -L "$root$lib" "$img$lib"
			done
		done < <(find "$root$p" -type f \( -perm -u+x -o -name '*.so*' \))
	done
}

# PostgreSQL 15 and nginx from Debian's packages (scripts/apps-root.sh
# makes the root they are cut from, above), each with busybox for its
# scripts.
PG=/usr/lib/postgresql/15
make_rootfs "$BUILD/postgres"
copy_from_root "$APPS_ROOT" "$BUILD/postgres" "$PG/bin/postgres" "$PG/bin/psql" \
	"$PG/lib/plpgsql.so" "$PG/lib/dict_snowball.so" /usr/share/postgresql/15 /usr/share/zoneinfo /srv/pgdata
mkdir -p "$BUILD/postgres/run/postgresql"
chown 100:102 "$BUILD/postgres/run/postgresql"
printf 'postgres:x:100:102::/srv:/bin/sh\n' >>"$BUILD/postgres/etc/passwd"
printf 'postgres:x:102:\n' >>"$BUILD/postgres/etc/group"
install -m 0755 scripts/apps/pg-lab "$BUILD/postgres/usr/local/bin/pg-lab"
import_image dockmove/postgres:lab "$BUILD/postgres" '["/usr/local/bin/pg-lab"]' 'USER postgres'

make_rootfs "$BUILD/nginx"
copy_from_root "$APPS_ROOT" "$BUILD/nginx" /usr/sbin/nginx
mkdir -p "$BUILD/nginx/etc/nginx" "$BUILD/nginx/var/lib/nginx" "$BUILD/nginx/var/log/nginx" "$BUILD/nginx/srv/www" "$BUILD/nginx/run"
install -m 0644 scripts/apps/nginx.conf "$BUILD/nginx/etc/nginx/nginx.conf"
install -m 0755 scripts/apps/nginx-lab "$BUILD/nginx/usr/local/bin/nginx-lab"
printf 'www-data:x:33:33::/var/www:/bin/false\n' >>"$BUILD/nginx/etc/passwd"
printf 'www-data:x:33:\n' >>"$BUILD/nginx/etc/group"
import_image dockmove/nginx:lab "$BUILD/nginx" '["/usr/local/bin/nginx-lab"]'

# Every image is built and on every host that is up: remember the inputs.
echo "$inputs" > "$BUILD/.inputs"
