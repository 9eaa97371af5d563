#!/bin/bash
# The VM test tier (make test-vm): pre-copy needs the kernel's soft-dirty
# page tracking, which this project's hosts lack. This boots Debian
# bookworm's cloud kernel (which has it) in QEMU with an initramfs built
# from this host's binaries (busybox, criu and its libraries, kmod, our
# agents) and runs the tests tagged vmtest inside (predump/vm_linux_test.go).
#
#   scripts/vm.sh            build what is missing, boot, run, exit with the tests' status
#   VM_RUN='-test.run X'     pass arguments to the test binary
#   VM_ACCEL=kvm             use KVM instead of TCG
#   VM_DOCKER=0              leave out the two-dockerd lab (default: included; needs make lab-up for its images)
#   VM_DOCKER_RUN=REGEXP     which of the lab's tests to run (default TestVMDocker)
#   VM_DOCKER_RUNS='PAIR=REGEXP;PAIR=REGEXP'
#                            several runs of the lab's tests, one after the other, each on
#                            its pair of hosts (instead of VM_PAIR and VM_DOCKER_RUN)
#   VM_MIB=N                 the lab tests' container memory (default 32)
#   VM_CGROUP=2              mount the unified cgroup v2 hierarchy (default: v1 controllers)
#   VM_MODERN=1              also run the lab's Docker 28 hosts (host3, host4; needs make lab-up-modern)
#   VM_PAIR=host3,host4      the lab hosts the container tests migrate between (default host1,host2)
#   VM_TIMEOUT=SECONDS       end QEMU after this long (default 1200)
#   VM_SMP=N                 the guest's vCPUs (default 2; 1 with VM_CROSS)
#   VM_CROSS=HOST:PORT       instead of the tests: the guest's lab host (host5, with VM_MODERN=1 and
#                            VM_CGROUP=2) joins this machine's lab switch through a tap, moves a
#                            container to the migrate-dst at HOST:PORT, then serves migrations until
#                            a connection to its port 7071 (scripts/vm-cross.sh; driven by
#                            migrate/e2e_crosskernel_linux_test.go)
#   scripts/vm.sh table      print the last run's policy comparison (make bench-vm) as Markdown
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=/var/cache/dockmove/vm
OUT=${VM_OUT:-/tmp/dockmove-vm}
LOG=$OUT/console.log

if [ "${1:-}" = table ]; then
	printf '# Pre-copy policies in the VM tier (make bench-vm)\n\n%s, Debian %s under QEMU TCG, where everything is far slower than on the host (transfers ran at about 7-20 MiB/s).\n' \
		"$(date -u -r "$LOG" +%F)" "$(grep -a -o -m1 'kernel [^,]*' "$LOG")"
	printf 'One migration of a 32 MiB workload process (--pid) per policy and dirty rate; default limits (8 rounds, 500 ms target, 300 ms restore floor).\n\n'
	PATH=$PATH:/usr/local/go/bin go run ./scripts/vmtable < "$LOG"
	exit
fi
mkdir -p "$CACHE" "$OUT"
log() { echo "vm: $*" >&2; }
cross=${VM_CROSS:-}
if [ -n "$cross" ] && { [ "${VM_MODERN:-0}" != 1 ] || [ "${VM_CGROUP:-1}" != 2 ] || [ "${VM_DOCKER:-1}" != 1 ]; }; then
	log "VM_CROSS needs VM_MODERN=1 and VM_CGROUP=2 (its host5 is a Docker 28 host on cgroup v2)"
	exit 1
fi

# QEMU and cpio, from Debian's packages.
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v cpio >/dev/null; then
	log "installing qemu-system-x86 cpio"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-system-x86 cpio >/dev/null
fi

# The kernel: the package linux-image-cloud-amd64 currently depends on.
pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !found {print $2; found=1}')
if [ -z "$pkg" ]; then
	apt-get update -q >/dev/null
	pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ && !found {print $2; found=1}')
fi
kver=${pkg#linux-image-}
kdir=$CACHE/$kver
if [ ! -f "$kdir/root/boot/vmlinuz-$kver" ]; then
	log "downloading $pkg"
	rm -rf "$kdir" && mkdir -p "$kdir"
	# (apt warns that it downloads as root, not _apt: harmless here)
	(cd "$kdir" && apt-get download -q "$pkg" 2>&1 >/dev/null | grep -v 'unsandboxed as root' >&2 || true)
	dpkg-deb -x "$kdir"/*.deb "$kdir/root"
	rm -f "$kdir"/*.deb
	depmod -b "$kdir/root" "$kver"
fi

# The initramfs root, rebuilt every run (our binaries change).
root=$OUT/root
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,tmp,run,lib/modules}
cp /bin/busybox "$root/bin/busybox"
if ldd /bin/busybox >/dev/null 2>&1; then log "/bin/busybox must be busybox-static (make deps installs it)"; exit 1; fi

# Dynamically linked host binaries with the libraries ldd names.
copy_bin() {
	local src=$1 dst=$root$1
	mkdir -p "$(dirname "$dst")"
	cp -L "$src" "$dst"
	ldd "$src" 2>/dev/null | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}' | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		[ -e "$root$lib" ] || cp -L "$lib" "$root$lib"
	done
}
copy_bin "$(command -v criu)"
copy_bin "$(command -v kmod)"
ln -s "$(command -v kmod)" "$root/sbin/modprobe"

# Our agents, the workload and the test binary, all static.
CGO_ENABLED=0 go build -trimpath -o "$root/bin/" ./cmd/migrate-src ./cmd/migrate-dst ./cmd/workload
CGO_ENABLED=0 go test -c -tags vmtest -o "$root/bin/vmtest" ./predump

# The lab of two Docker hosts, as scripts/lab.sh makes it on this machine:
# Debian's dockerd, containerd, runc and docker CLI with their libraries,
# bash, iproute2, nsenter, iptables (nft) with its extensions, the lab's
# images saved from this machine's lab, and the migrate package's tests.
mods=""
drives=()
if [ "${VM_DOCKER:-1}" = 1 ]; then
	# GNU tar and gzip: CRIU archives the container's tmpfs mounts with them.
	for b in bash ip nsenter unshare mount umount pivot_root tar gzip dockerd containerd containerd-shim-runc-v2 runc xtables-nft-multi; do
		copy_bin "$(command -v "$b")"
	done
	copy_bin /usr/bin/docker
	for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
		ln -sf xtables-nft-multi "$root/usr/sbin/$t"
	done
	xt=/usr/lib/x86_64-linux-gnu/xtables
	mkdir -p "$root$xt"
	for so in "$xt"/*.so; do copy_bin "$so"; done
	mkdir -p "$root/repo/scripts" "$root/repo/bin" "$root/repo/images"
	cp scripts/lab.sh scripts/lab-runtime.sh scripts/vm-cross.sh "$root/repo/scripts/"
	CGO_ENABLED=0 go build -trimpath -o "$root/repo/bin/" ./cmd/migrate-src ./cmd/migrate-dst ./cmd/dockmove-runtime ./cmd/workload
	if [ -n "$cross" ]; then
		# The lab's credentials, host5's included: the guest's host and
		# this machine's trust each other.
		tls=$(dirname "$(bash scripts/lab.sh env host5 | sed -n 's/^LAB_TLS_DIR=//p')")
		[ -s "$tls/host5/key.pem" ] || { log "the lab has no credentials for host5: run make lab-up"; exit 1; }
		# (the CA's certificate, not its key)
		mkdir -p "$root/repo/tls"
		cp -a "$tls/ca.pem" "$tls/host5" "$root/repo/tls/"
		echo "$cross" > "$root/etc/vm-cross-target"
		touch "$root/etc/vm-cross"
	else
		CGO_ENABLED=0 go test -c -tags vmtest -o "$root/bin/migratetest" ./migrate
	fi
	sock=$(bash scripts/lab.sh env host1 | sed -n 's/^LAB_DOCKER_HOST=//p')
	for img in dockmove/workload:lab dockmove/busybox:lab; do
		docker -H "$sock" save "$img" > "$root/repo/images/${img//[\/:]/_}.tar" ||
			{ log "the lab's image $img is missing: run make lab-up first"; exit 1; }
	done
	if [ "${VM_MODERN:-0}" = 1 ]; then
		# The lab's modern hosts (Docker 28) run from the Debian testing
		# root, as on this machine. It comes in as a disk of its own, made
		# once per root and never written (the guest's writes go to a
		# snapshot): in the initramfs, unpacking and copying its 320 MB
		# took about 40 s of emulated CPU. Docs, caches and apt lists stay
		# out.
		modern=${MODERN_ROOT:-/var/lib/dockmove-root/testing}
		[ -s "$modern/.dockmove-ready" ] || { log "VM_MODERN=1 needs the modern root: run make lab-up-modern first"; exit 1; }
		disk=$CACHE/modern-root.img
		stamp="$(stat -c %Y "$modern/.dockmove-ready") $(md5sum < "$modern/.dockmove-ready")"
		if [ ! -s "$disk" ] || [ "$(cat "$disk.stamp" 2>/dev/null)" != "$stamp" ]; then
			log "making the modern root's disk"
			stage=$OUT/modern-stage
			rm -rf "$stage" "$disk" "$disk.stamp" && mkdir -p "$stage"
			tar -C "$modern" --exclude=./var/cache --exclude=./var/lib/apt --exclude=./usr/share/doc \
				--exclude=./usr/share/man --exclude=./usr/share/locale --exclude=./usr/bin/ctr -cf - . |
				tar -C "$stage" -xf -
			mkfs.ext4 -q -F -L dmroot -d "$stage" "$disk" "$(( $(du -sm "$stage" | cut -f1) * 5 / 4 + 64 ))M" >/dev/null
			rm -rf "$stage"
			echo "$stamp" > "$disk.stamp"
		fi
		drives=(-drive "file=$disk,format=raw,if=virtio,snapshot=on")
		mods="$mods virtio_pci virtio_blk"
		mkdir -p "$root/opt/dockmove-root/testing"
	fi
	printf 'root:x:0:0:root:/root:/bin/sh\n' > "$root/etc/passwd"
	printf 'root:x:0:\n' > "$root/etc/group"
	[ -n "$cross" ] && mods="$mods virtio_net"
	mods="$mods overlay bridge veth macvlan br_netfilter nft_compat nft_chain_nat nf_nat nf_conntrack xt_conntrack xt_addrtype xt_MASQUERADE xt_nat xt_tcpudp xt_comment nf_conntrack_netlink"
	docker_lab=1
fi

# Kernel modules CRIU needs (socket diagnostics, netlink, nftables), with
# their dependencies as modprobe resolves them.
mods="unix_diag inet_diag tcp_diag udp_diag netlink_diag af_packet_diag nfnetlink nf_tables veth tun $mods"
for m in $mods; do
	# (built-in or absent modules print nothing)
	modprobe -d "$kdir/root" -S "$kver" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}' || true
done | sort -u | while read -r ko; do
	rel=${ko#"$kdir/root"}
	mkdir -p "$root$(dirname "$rel")"
	cp "$ko" "$root$rel"
done
cp "$kdir/root/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"
echo "$mods" > "$root/etc/modules.list"

cat > "$root/init" <<'EOF'
#!/bin/busybox sh
# runc cannot pivot_root out of an initramfs: move to a tmpfs root first.
if [ ! -e /.tmpfs-root ]; then
	echo "VMTEST-BOOT init runs; copying the root to a tmpfs"
	/bin/busybox mkdir -p /newroot
	/bin/busybox mount -t tmpfs -o size=90% newroot /newroot
	for d in /*; do [ "$d" = /newroot ] || /bin/busybox cp -a "$d" /newroot/; done
	/bin/busybox touch /newroot/.tmpfs-root
	exec /bin/busybox switch_root /newroot /init
fi
/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
echo 4 > /proc/sys/kernel/printk # the boot was logged; from here, errors only
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
for m in $(cat /etc/modules.list); do modprobe "$m" || echo "VMTEST modprobe $m failed"; done
# The modern root's disk (VM_MODERN=1), written only to QEMU's snapshot.
[ -d /opt/dockmove-root/testing ] && { mount -t ext4 /dev/vda /opt/dockmove-root/testing || echo "VMTEST the modern root's disk did not mount"; }
ip link set lo up
echo 16777216 > /proc/sys/fs/pipe-max-size
echo "VMTEST kernel $(uname -r), $(nproc) CPUs"
criu check --feature mem_dirty_track && echo "VMTEST soft-dirty: yes"
cd /tmp
rc=0
[ -e /etc/vm-cross ] || { /bin/vmtest -test.v -test.timeout 15m $(cat /etc/vmtest.args); rc=$?; }
if { [ -x /bin/migratetest ] || [ -e /etc/vm-cross ]; } && [ $rc = 0 ]; then
	# cgroup v1 hierarchies as on the lab's hosts (or the unified cgroup v2
	# hierarchy, VM_CGROUP=2, as on current distributions), then the lab.
	if [ "$(cat /etc/vm-cgroup)" = 2 ]; then
		mount -t cgroup2 cgroup2 /sys/fs/cgroup
		echo "VMTEST cgroup v2: $(cat /sys/fs/cgroup/cgroup.controllers)"
	else
		mount -t tmpfs cgroup /sys/fs/cgroup
		for c in $(awk 'NR>1 && $4==1 {print $1}' /proc/cgroups); do
			mkdir -p /sys/fs/cgroup/$c && mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c
		done
	fi
	mkdir -p /var/lib /var/log /run/netns /usr/local/bin
	mount -t tmpfs varlib /var/lib
	echo 1 > /proc/sys/net/ipv4/ip_forward
	cd /repo
	# Only the hosts the runs need: under TCG an idle dockerd costs too.
	hosts=$(cat /etc/vm-hosts)
	[ -d /opt/dockmove-root/testing ] && export MODERN_ROOT=/opt/dockmove-root/testing
	if [ -e /etc/vm-cross ]; then
		bash scripts/vm-cross.sh || rc=1
	elif bash scripts/lab.sh up $hosts; then
		for h in $hosts; do
			for t in images/*.tar; do DOCKER_HOST=unix:///run/dockmove-lab/$h.sock docker load -q -i $t; done &
		done
		wait
		echo "VMTEST images loaded"
		bash scripts/lab-runtime.sh
		# One run per line: PAIR REGEXP.
		while read -r pair run; do
			echo "VMTEST lab tests on $pair: $run"
			# The agents' default keepalives: emulated CPUs can hold a ping back.
			DOCKMOVE_LAB_PEER_TIMEOUTS=5s,10s \
			DOCKMOVE_LAB_PAIR=$pair DOCKMOVE_VM_MIB=$(cat /etc/vm-mib) DOCKMOVE_BIN=/repo/bin DOCKMOVE_STRICT=1 \
				/bin/migratetest -test.v -test.timeout 15m -test.run "$run" || rc=1
		done < /etc/vm-docker-runs
	else
		echo "VMTEST lab did not come up"; tail -20 /var/log/dockmove-lab/*.log; rc=1
	fi
fi
echo "VMTEST-EXIT $rc"
poweroff -f
EOF
chmod +x "$root/init"
echo "${VM_RUN:-}" > "$root/etc/vmtest.args"
if [ -n "${VM_DOCKER_RUNS:-}" ]; then
	tr ';=' '\n ' <<<"$VM_DOCKER_RUNS" > "$root/etc/vm-docker-runs"
else
	echo "${VM_PAIR:-host1,host2} ${VM_DOCKER_RUN:-TestVMDocker}" > "$root/etc/vm-docker-runs"
fi
# The lab hosts the runs use: the guest brings up only those.
vm_hosts=$(cut -d' ' -f1 "$root/etc/vm-docker-runs" | tr ',' '\n' | sort -u | tr '\n' ' ')
case "$vm_hosts" in
*host3* | *host4*)
	if [ "${VM_MODERN:-0}" != 1 ]; then
		log "the runs use $vm_hosts: host3 and host4 need VM_MODERN=1"
		exit 1
	fi
	;;
esac
echo "$vm_hosts" > "$root/etc/vm-hosts"
echo "${VM_MIB:-32}" > "$root/etc/vm-mib"
echo "${VM_CGROUP:-1}" > "$root/etc/vm-cgroup"
[ -n "${docker_lab:-}" ] || rm -f "$root/bin/migratetest"
# Not compressed: the guest unpacks it with emulated CPUs.
rm -f "$OUT/initrd.gz"
(cd "$root" && find . | cpio -o -H newc --quiet) > "$OUT/initrd"
log "kernel $kver, initramfs $(du -h "$OUT/initrd" | cut -f1)"

# TCG by default: this project's machines expose /dev/kvm, but a nested
# guest hung in its firmware there. VM_ACCEL=kvm where KVM works.
accel=${VM_ACCEL:-tcg}
cpu=max
# A guest that locks up panics (softlockup_panic) and, with panic=-1 and
# -no-reboot, ends QEMU at once instead of at the timeout; a lockup counts
# after 2 minutes (watchdog_thresh=60), not 20 s: under TCG a vCPU that
# waits for the other one (a TLB shootdown's IPI) while the host's two
# cores run the lab too can stall for tens of seconds and recover (seen:
# "soft lockup - CPU#0 stuck for 45s" in mprotect, the cross-kernel guest
# panicked, CI41). The cross-kernel guest, which only serves host5, runs
# on one vCPU (VM_SMP): nothing to wait for. The kernel logs
# its boot (no quiet, earlyprintk) so a boot that stalls shows where; the
# init script quiets it once it runs.
mem=4096
[ "${VM_MODERN:-0}" = 1 ] && mem=6144 # the testing root lives in the guest's memory too
smp=${VM_SMP:-2}
[ -z "$cross" ] || smp=${VM_SMP:-1}
boot_limit=${VM_BOOT_LIMIT:-300} # the guest reaches its init in about 35 s
# boot runs the guest until it powers off. It returns 3 if the guest never
# reached its init within boot_limit seconds: before init, none of our code
# runs; what the kernel printed is in the console log.
boot() {
	local start=$(date +%s) net=()
	[ -z "$cross" ] || net=(-netdev "tap,id=lab,ifname=$tap,script=no,downscript=no" -device "virtio-net-pci,netdev=lab")
	: > "$LOG"
	setsid bash -c 'timeout "${VM_TIMEOUT:-1200}" qemu-system-x86_64 "$@" </dev/null | tee "$0" | grep --line-buffered -E "^(VMTEST|=== RUN|--- |    |PASS|FAIL|ok |lab: )" || true' \
		"$LOG" -accel "$accel" -cpu "$cpu" -m "$mem" -smp "$smp" -nographic -no-reboot \
		-kernel "$kdir/root/boot/vmlinuz-$kver" -initrd "$OUT/initrd" "${drives[@]}" "${net[@]}" \
		-append "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 softlockup_panic=1 watchdog_thresh=60" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		if grep -aq '^VMTEST kernel' "$LOG"; then
			log "guest reached its init after $(( $(date +%s) - start )) s"
			break
		fi
		if [ $(( $(date +%s) - start )) -ge "$boot_limit" ]; then
			stop_guest
			wait "$pid" || true
			log "the guest did not reach its init in $boot_limit s; the console's last lines:"
			tail -n 15 "$LOG" | sed 's/^/vm:   /' >&2
			return 3
		fi
		sleep 2
	done
	wait "$pid" || true
	log "VM ran $(( $(date +%s) - start )) s ($accel); console log in $LOG"
}
pid= tap=
# Stopped (the cross test ends early), the guest goes too; so does the tap.
# The whole session setsid made: timeout puts QEMU in a process group of
# its own, so killing the first group left QEMU running.
stop_guest() { [ -z "$pid" ] || pkill -s "$pid" 2>/dev/null || true; }
trap 'stop_guest; exit 143' TERM INT
if [ -n "$cross" ]; then
	trap 'stop_guest; ip link del "$tap" 2>/dev/null || true' EXIT
	# The guest's network card, cabled to the lab's switch.
	eval "$(bash scripts/lab.sh env host1 | grep -E '^LAB_(SWITCH|VM_TAP)=')"
	tap=$LAB_VM_TAP
	ip link del "$tap" 2>/dev/null || true
	{ ip tuntap add dev "$tap" mode tap && ip link set "$tap" master "$LAB_SWITCH" up; } ||
		{ log "could not cable a tap to the lab's switch $LAB_SWITCH (is the lab up?)"; exit 1; }
fi
log "booting with $accel"
if ! boot; then
	# Seen once in about 20 boots under TCG (before the kernel logged its
	# boot): no output after the firmware for 13 minutes, QEMU busy, guest
	# memory flat at the initramfs's size. Nothing of ours had run yet:
	# boot once more, keeping the stalled boot's log to find the cause.
	cp "$LOG" "$OUT/console-stalled-boot.log"
	log "booting again (the stalled boot's console is in $OUT/console-stalled-boot.log)"
	boot || { log "the guest did not boot twice"; exit 1; }
fi
if grep -aq 'soft lockup' "$LOG"; then
	log "the guest kernel locked up (see the log); the tests did not finish"
fi
grep -q '^VMTEST-EXIT 0' "$LOG"
