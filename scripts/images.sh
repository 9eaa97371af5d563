#!/usr/bin/env bash
# images.sh builds the lab's test images with no registry and loads them into
# both lab daemons:
#   dockmove/busybox:lab   busybox-static applets
#   dockmove/workload:lab  the same plus /usr/local/bin/workload (cmd/workload)
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
dk() { local h=$1; shift; "$DOCKER_CLI" -H "$(bash "$LAB" env "$h" | sed -n 's/^LAB_DOCKER_HOST=//p')" "$@"; }

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

# tree_hash prints a hash of a directory's names, modes and contents.
tree_hash() {
	(cd "$1" && find . -printf '%p %m %l\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# up_hosts prints the lab hosts besides host1 whose dockerd answers.
up_hosts() {
	local h
	for h in host2 host3 host4; do
		dk "$h" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1 && echo "$h"
	done
	return 0
}

# import_image TAG ROOT CMD: import on host1 unless current, then copy to the
# other hosts.
import_image() {
	local tag=$1 root=$2 cmd=$3 hash h have
	hash=$(tree_hash "$root")
	have=$(dk host1 image inspect --format "{{index .Config.Labels \"$HASH_LABEL\"}}" "$tag" 2>/dev/null || true)
	if [ "$have" != "$hash" ]; then
		tar -C "$root" --numeric-owner -c . |
			dk host1 import --change "CMD $cmd" --change "LABEL $HASH_LABEL=$hash" - "$tag" >/dev/null
		log "built $tag ($hash) on host1"
	fi
	# Compared by the inputs' hash, not the image ID: the containerd image
	# store (host4) names the same image by another ID.
	for h in $(up_hosts); do
		if [ "$(dk "$h" image inspect --format "{{index .Config.Labels \"$HASH_LABEL\"}}" "$tag" 2>/dev/null || true)" != "$hash" ]; then
			dk host1 save "$tag" | dk "$h" load >/dev/null
			log "loaded $tag into $h"
		fi
	done
}

mkdir -p "$BUILD"
make_rootfs "$BUILD/busybox"
import_image dockmove/busybox:lab "$BUILD/busybox" '["/bin/sh"]'

make_rootfs "$BUILD/workload"
CGO_ENABLED=0 go build -trimpath -o "$BUILD/workload/usr/local/bin/workload" ./cmd/workload
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
