#!/usr/bin/env bash
# lab.sh runs Docker "hosts" on this machine with one L2 network between
# them:
#
#   root netns: bridge dmsw0 (the switch, 10.77.0.1/24) and bridge dmsw1
#          (a second segment, 10.78.0.1/24)
#   hostN: netns dm-hostN, eth0 10.77.0.1N/24 on the switch, eth1 (no
#          address) on the second segment, dockerd on
#          /run/dockmove-lab/hostN.sock
#   on every host: macvlan network "dmlab" (10.77.0.0/24, parent eth0),
#          containers get 10.77.0.64/27 on host1, .96/27 on host2,
#          .128/27 on host3 and .160/27 on host4; macvlan network
#          "dmlab2" (10.78.0.0/24, parent eth1), the same ranges in it, for
#          containers on two networks; dual-stack: fd78::/64 too, where
#          hostN hands out fd78::N:0/112 (the switch has fd78::1)
#   on every host: Docker's default bridge (docker0, 172.17.0.0/16, NAT
#          to eth0), where `docker run` puts a container unless told
#          otherwise: private to each host, as on real ones
#
# Two flavours of host:
#   classic (host1, host2): this machine's own Docker (Debian bookworm:
#          docker.io 20.10, containerd 1.6, runc 1.1)
#   modern  (host3, host4): Docker from a Debian testing root
#          (scripts/modern-root.sh: docker.io 28, containerd 2, runc 1.3,
#          CRIU 4.2). Each dockerd runs in its own mount namespace with that
#          root pivoted in (a plain chroot breaks CRIU's restore), and with
#          /var/lib/dockmove-lab and /run/dockmove-lab bound in at the same
#          paths, so agents outside see its data root, runtime state and
#          work directories where it does. host3 keeps images in the
#          overlay2 graph driver, host4 in the containerd image store (the
#          default for new installs from Docker 29).
#   guest   (host5): a modern host inside the VM tier's guest, which runs
#          its own kernel with the unified cgroup v2 hierarchy
#          (scripts/vm.sh, VM_CROSS=1). Its switch has no address of its
#          own and is bridged to this machine's switch through the
#          guest's network card (LAB_UPLINK=eth0), so host5 is on the same
#          L2 segment as host1-host4: the lab's one pair of hosts whose
#          cgroup versions differ.
#
# Usage:
#   lab.sh up [classic|modern|all|guest]
#                         bring those hosts up (default classic; idempotent)
#   lab.sh up HOST...     bring up only these hosts
#   lab.sh down           stop the daemons, remove namespaces and the switch
#   lab.sh purge          down, then delete the daemons' data
#   lab.sh status         print what is up
#   lab.sh on HOST CMD..  run CMD inside HOST's netns with DOCKER_HOST set
#   lab.sh networks HOST  make HOST's lab networks as they should be again
#   lab.sh env HOST       print HOST's settings as shell assignments
#
# Logs: /var/log/dockmove-lab. Data: /var/lib/dockmove-lab.
set -euo pipefail

SWITCH=dmsw0
SUBNET=10.77.0.0/24
GATEWAY=10.77.0.1
PREFIX=24
NETWORK=dmlab
# The second segment (this kernel has no VLAN driver: a second switch).
SWITCH2=dmsw1
SUBNET2=10.78.0.0/24
GATEWAY2=10.78.0.1
NETWORK2=dmlab2
SUBNET6_2=fd78::/64
GATEWAY6_2=fd78::1
LAB_RUN=/run/dockmove-lab
LAB_LIB=/var/lib/dockmove-lab
LAB_LOG=/var/log/dockmove-lab
LAB_TLS=$LAB_LIB/tls # the agents' credentials, one directory per host
AGENT_PORT=7070      # where a lab host's migrate-dst listens
CLASSIC=(host1 host2)
MODERN=(host3 host4)
ALL=("${CLASSIC[@]}" "${MODERN[@]}")
GUEST=(host5) # only inside the VM tier's guest; not in ALL
VM_TAP=dmvmtap # scripts/vm.sh's tap to that guest, on the switch
MODERN_ROOT=${MODERN_ROOT:-/var/lib/dockmove-root/testing}
# The lab drives its daemons with the Docker CLI that ships with them.
DOCKER_CLI=${DOCKER_CLI:-/usr/bin/docker}

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

host_index() {
	case $1 in
	host1) echo 1 ;;
	host2) echo 2 ;;
	host3) echo 3 ;;
	host4) echo 4 ;;
	host5) echo 5 ;;
	*) die "unknown host '$1' (want host1 ... host5)" ;;
	esac
}
is_modern() { [ "$(host_index "$1")" -ge 3 ]; }
netns_of() { echo "dm-$1"; }
veth_of() { echo "dm$(host_index "$1")eth"; }
addr_of() { echo "10.77.0.1$(host_index "$1")"; }
range_of() { echo "10.77.0.$((32 + 32 * $(host_index "$1")))/27"; }
range2_of() { echo "10.78.0.$((32 + 32 * $(host_index "$1")))/27"; }
range6_2_of() { echo "fd78::$(host_index "$1"):0/112"; }
sock_of() { echo "$LAB_RUN/$1.sock"; }
exec_root_of() { echo "$LAB_RUN/$1"; }
data_root_of() { echo "$LAB_LIB/$1/docker"; }
config_of() { echo "$LAB_LIB/$1/daemon.json"; }
pidfile_of() { echo "$LAB_RUN/$1.pid"; }
in_netns() { local h=$1; shift; nsenter --net="/run/netns/$(netns_of "$h")" "$@"; }
dk() { local h=$1; shift; "$DOCKER_CLI" -H "unix://$(sock_of "$h")" "$@"; }

# has_addr ADDR/PREFIX CMD... succeeds when CMD's output (an `ip addr show`)
# lists ADDR/PREFIX. The output is captured whole first: piping CMD into `grep -q`
# under pipefail fails at random (grep exits at its first match and CMD
# dies of SIGPIPE), and the address was then added twice ("Address
# already assigned").
has_addr() {
	local want=$1 out
	shift
	out=$("$@") || return 1
	grep -qF " $want " <<<"$out"
}

# switch_up SWITCH GATEWAY [GATEWAY6] makes the bridge SWITCH with
# GATEWAY/PREFIX (and GATEWAY6/64). With UPLINK, the bridge takes no
# address: it is cabled to UPLINK, behind which the real switch (and its
# gateway) already is.
switch_up() {
	local sw=$1 gw=$2 gw6=${3:-} uplink=${4:-}
	if ! ip link show "$sw" >/dev/null 2>&1; then
		ip link add "$sw" type bridge
		log "created switch $sw"
	fi
	if [ -n "$uplink" ]; then
		ip link set "$uplink" master "$sw" up
		ip link set "$sw" up
		return
	fi
	has_addr "$gw/$PREFIX" ip addr show dev "$sw" ||
		ip addr add "$gw/$PREFIX" dev "$sw"
	if [ -n "$gw6" ]; then
		has_addr "$gw6/64" ip -6 addr show dev "$sw" ||
			ip -6 addr add "$gw6/64" dev "$sw" nodad
	fi
	ip link set "$sw" up
}

# cable HOST VETH IFACE SWITCH gives HOST's netns the interface IFACE, one
# end of the veth pair VETH, whose other end is on SWITCH.
cable() {
	local h=$1 veth=$2 iface=$3 sw=$4
	if ! in_netns "$h" ip link show "$iface" >/dev/null 2>&1; then
		ip link del "$veth" 2>/dev/null || true
		ip link add "$veth" type veth peer name "$veth-p"
		ip link set "$veth-p" netns "$(netns_of "$h")"
		in_netns "$h" ip link set "$veth-p" name "$iface"
	fi
	ip link set "$veth" master "$sw" up
	in_netns "$h" ip link set "$iface" up
}

# host_net_up gives HOST a netns with an eth0 cabled to the switch and an
# eth1 to the second segment.
host_net_up() {
	local h=$1 ns
	ns=$(netns_of "$h")
	[ -e "/run/netns/$ns" ] || { ip netns add "$ns"; log "created netns $ns"; }
	cable "$h" "$(veth_of "$h")" eth0 "$SWITCH"
	cable "$h" "$(veth_of "$h")1" eth1 "$SWITCH2"
	in_netns "$h" ip link set lo up
	has_addr "$(addr_of "$h")/$PREFIX" in_netns "$h" ip addr show dev eth0 ||
		in_netns "$h" ip addr add "$(addr_of "$h")/$PREFIX" dev eth0
	in_netns "$h" ip route replace default via "$GATEWAY" dev eth0
}

# base_config_of HOST prints the daemon.json HOST starts from (the restore
# runtime is added to it later).
base_config_of() {
	case $1 in
	host4) echo '{"features": {"containerd-snapshotter": true}}' ;;
	*) echo '{}' ;;
	esac
}

# config_ok HOST succeeds when HOST's daemon.json has its image store set.
config_ok() {
	local c
	c=$(cat "$(config_of "$1")" 2>/dev/null) || return 1
	case $1 in
	host4) [[ $c == *'"containerd-snapshotter": true'* || $c == *'"containerd-snapshotter":true'* ]] ;;
	*) [[ $c != *containerd-snapshotter* ]] ;;
	esac
}

daemon_alive() {
	local pid
	pid=$(cat "$(pidfile_of "$1")" 2>/dev/null) || return 1
	kill -0 "$pid" 2>/dev/null && dk "$1" version --format '{{.Server.APIVersion}}' >/dev/null 2>&1
}

# daemon_up starts HOST's dockerd inside its netns. nsenter --net, not
# `ip netns exec`: the latter remounts /sys and hides the cgroup mounts.
daemon_up() {
	local h=$1 i
	config_ok "$h" && daemon_alive "$h" && dk "$h" network inspect bridge >/dev/null 2>&1 && return
	daemon_stop "$h"
	mkdir -p "$LAB_LOG" "$LAB_RUN" "$(data_root_of "$h")"
	if ! config_ok "$h"; then
		# A lab from before the host's image store was chosen: start over
		# (scripts/lab-runtime.sh adds the runtime back).
		base_config_of "$h" >"$(config_of "$h")"
		log "$h: daemon.json reset to $(base_config_of "$h")"
	fi
	# A stale exec-root keeps the managed containerd from coming up.
	clear_exec_root "$(exec_root_of "$h")"
	local enter=()
	if is_modern "$h"; then
		[ -s "$MODERN_ROOT/.dockmove-ready" ] || die "$h needs the modern root (run: bash scripts/modern-root.sh)"
		enter=(unshare --mount --propagation private bash "$SELF" enter-root)
	fi
	in_netns "$h" setsid "${enter[@]}" dockerd \
		--data-root "$(data_root_of "$h")" \
		--exec-root "$(exec_root_of "$h")" \
		--host "unix://$(sock_of "$h")" \
		--pidfile "$(pidfile_of "$h")" \
		--config-file "$(config_of "$h")" \
		--experimental \
		</dev/null >>"$LAB_LOG/$h-dockerd.log" 2>&1 &
	for i in $(seq 1 120); do
		daemon_alive "$h" && { log "dockerd $h up (pid $(cat "$(pidfile_of "$h")"))"; return; }
		sleep 0.5
	done
	tail -n 20 "$LAB_LOG/$h-dockerd.log" >&2
	die "dockerd $h did not come up (log: $LAB_LOG/$h-dockerd.log)"
}

daemon_stop() {
	local h=$1 pid i
	pid=$(cat "$(pidfile_of "$h")" 2>/dev/null) || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for i in $(seq 1 60); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		log "dockerd $h stopped"
	fi
	rm -f "$(pidfile_of "$h")" "$(sock_of "$h")"
}

# network_up HOST NAME PARENT SUBNET GATEWAY RANGE [SUBNET6 GATEWAY6 RANGE6]
# makes HOST's macvlan network NAME (dual-stack with the IPv6 pool).
network_up() {
	local h=$1 name=$2 parent=$3 want have args=()
	shift 3
	want="$parent"
	while [ $# -ge 3 ]; do
		want+=" $1 $2 $3"
		args+=(--subnet "$1" --gateway "$2" --ip-range "$3")
		shift 3
	done
	[ ${#args[@]} -gt 6 ] && args+=(--ipv6)
	have=$(dk "$h" network inspect "$name" \
		--format '{{index .Options "parent"}}{{range .IPAM.Config}} {{.Subnet}} {{.Gateway}} {{.IPRange}}{{end}}' 2>/dev/null || true)
	[ "$have" = "$want" ] && return
	[ -n "$have" ] && dk "$h" network rm "$name" >/dev/null
	dk "$h" network create -d macvlan "${args[@]}" -o parent="$parent" "$name" >/dev/null
	log "network $name on $h (${want#* })"
}

# cmd_enter_root runs CMD with the modern root as its / (called by daemon_up
# inside a fresh, private mount namespace).
cmd_enter_root() {
	local r=$MODERN_ROOT
	mount --bind "$r" "$r"
	mount -t proc proc "$r/proc"
	mount --rbind /sys "$r/sys"
	mount --rbind /dev "$r/dev"
	mount -t tmpfs -o mode=0755 tmpfs "$r/run"
	mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
	mkdir -p "$r$LAB_RUN" "$r$LAB_LIB"
	mount --bind "$LAB_RUN" "$r$LAB_RUN"
	mount --bind "$LAB_LIB" "$r$LAB_LIB"
	cd "$r"
	pivot_root . .oldroot
	umount -l /.oldroot
	cd /
	exec env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# hosts_of FLAVOUR prints the hosts of classic, modern or all.
hosts_of() {
	case ${1:-classic} in
	classic) echo "${CLASSIC[@]}" ;;
	modern) echo "${MODERN[@]}" ;;
	all) echo "${ALL[@]}" ;;
	guest) echo "${GUEST[@]}" ;;
	*) die "unknown flavour '$1' (want classic, modern, all or guest)" ;;
	esac
}

cmd_up() {
	local hosts h
	case ${1:-} in
	host[1-5]) for h in "$@"; do host_index "$h" >/dev/null; done; hosts="$*" ;;
	*) hosts=$(hosts_of "${1:-classic}") ;;
	esac
	switch_up "$SWITCH" "$GATEWAY" "" "${LAB_UPLINK:-}"
	switch_up "$SWITCH2" "$GATEWAY2" "$GATEWAY6_2"
	for h in $hosts; do host_net_up "$h"; done
	# The hosts' daemons and networks come up side by side: each takes a
	# second or two here and tens of seconds under the VM tier's emulated
	# CPUs.
	local pids=() failed=()
	for h in $hosts; do
		{ daemon_up "$h" && cmd_networks "$h"; } &
		pids+=("$h:$!")
	done
	for h in "${pids[@]}"; do wait "${h#*:}" || failed+=("${h%%:*}"); done
	[ ${#failed[@]} = 0 ] || die "lab-up failed on ${failed[*]} (above)"
}

# cmd_networks HOST makes (or remakes) HOST's lab networks as they should be.
cmd_networks() {
	local h=$1
	network_up "$h" "$NETWORK" eth0 "$SUBNET" "$GATEWAY" "$(range_of "$h")"
	network_up "$h" "$NETWORK2" eth1 "$SUBNET2" "$GATEWAY2" "$(range2_of "$h")" "$SUBNET6_2" "$GATEWAY6_2" "$(range6_2_of "$h")"
}

# clear_exec_root removes a dockerd's exec-root. A dockerd that did not
# exit cleanly leaves its network namespaces bind-mounted there (nsfs on
# netns/default, one per sandbox), and rm then fails with "Device or
# resource busy", failing lab-up: unmount what is below it first, deepest
# first.
clear_exec_root() {
	local dir=$1 mnt _ points=()
	while read -r _ mnt _; do
		case $mnt in "$dir"/*) points+=("$mnt") ;; esac
	done </proc/mounts
	local i
	for ((i = ${#points[@]} - 1; i >= 0; i--)); do
		umount -l "${points[i]}" 2>/dev/null || true
	done
	rm -rf "$dir"
}

cmd_down() {
	local h
	# (host5 is brought up inside the VM tier's guest, where this cleans
	# it; vm.sh's tap to that guest goes too, should vm.sh have been killed)
	ip link del "$VM_TAP" 2>/dev/null || true
	for h in "${ALL[@]}" "${GUEST[@]}"; do
		daemon_stop "$h"
		clear_exec_root "$(exec_root_of "$h")"
		ip netns del "$(netns_of "$h")" 2>/dev/null || true
		ip link del "$(veth_of "$h")" 2>/dev/null || true
		ip link del "$(veth_of "$h")1" 2>/dev/null || true
	done
	ip link del "$SWITCH" 2>/dev/null || true
	ip link del "$SWITCH2" 2>/dev/null || true
	log "down"
}

cmd_purge() {
	cmd_down
	rm -rf "$LAB_LIB"
	log "purged $LAB_LIB"
}

cmd_status() {
	local h state
	for h in "${ALL[@]}" "${GUEST[@]}"; do
		[ "$h" != host5 ] || [ -e "/run/netns/$(netns_of "$h")" ] || continue
		if daemon_alive "$h"; then state="up, $(dk "$h" ps -q | wc -l) running"; else state=down; fi
		printf '%s: netns %s eth0 %s docker %s (%s)\n' "$h" "$(netns_of "$h")" "$(addr_of "$h")" "$(sock_of "$h")" "$state"
	done
}

cmd_env() {
	local h=$1
	host_index "$h" >/dev/null
	local flavour=classic
	is_modern "$h" && flavour=modern
	printf 'LAB_FLAVOUR=%s\nLAB_NETNS=/run/netns/%s\nLAB_ADDR=%s\nLAB_DOCKER_HOST=unix://%s\nLAB_IP_RANGE=%s\nLAB_CONFIG=%s\nLAB_PIDFILE=%s\nLAB_NETWORK=%s\nLAB_SUBNET=%s\nLAB_GATEWAY=%s\nLAB_SWITCH=%s\nLAB_NETWORK2=%s\nLAB_SUBNET2=%s\nLAB_GATEWAY2=%s\nLAB_SWITCH2=%s\nLAB_IP_RANGE2=%s\nLAB_SUBNET2_V6=%s\nLAB_IP_RANGE2_V6=%s\nLAB_TLS_DIR=%s\nLAB_AGENT_PORT=%s\nLAB_WORK_DIR=%s\nLAB_LOG_DIR=%s\nLAB_EXEC_ROOT=%s\nLAB_VM_TAP=%s\n' \
		"$flavour" "$(netns_of "$h")" "$(addr_of "$h")" "$(sock_of "$h")" "$(range_of "$h")" "$(config_of "$h")" "$(pidfile_of "$h")" "$NETWORK" "$SUBNET" "$GATEWAY" "$SWITCH" \
		"$NETWORK2" "$SUBNET2" "$GATEWAY2" "$SWITCH2" "$(range2_of "$h")" "$SUBNET6_2" "$(range6_2_of "$h")" \
		"$LAB_TLS/$h" "$AGENT_PORT" "$LAB_LIB/$h/work" "$LAB_LOG" "$(exec_root_of "$h")" "$VM_TAP"
}

cmd_on() {
	[ $# -ge 2 ] || die "usage: lab.sh on HOST CMD..."
	local h=$1
	shift
	host_index "$h" >/dev/null
	[ -e "/run/netns/$(netns_of "$h")" ] || die "$h is not up (run: make lab-up)"
	# exec, so that the caller's PID is the command's own (kill reaches it).
	exec nsenter --net="/run/netns/$(netns_of "$h")" env DOCKER_HOST="unix://$(sock_of "$h")" "$@"
}

SELF=$(readlink -f "$0")
[ "$(id -u)" = 0 ] || die "must run as root"
case ${1:-} in
up) shift; cmd_up "$@" ;;
down | purge | status) "cmd_$1" ;;
enter-root) shift; cmd_enter_root "$@" ;;
on) shift; cmd_on "$@" ;;
networks) [ $# = 2 ] || die "usage: lab.sh networks HOST"; host_index "$2" >/dev/null; cmd_networks "$2" ;;
# restart-daemon HOST [SECONDS] stops HOST's dockerd (SIGTERM: it stops its
# containers, as a host's Docker upgrade or restart does) and starts it
# again, SECONDS after it stopped (default at once).
restart-daemon)
	[ $# = 2 ] || [ $# = 3 ] || die "usage: lab.sh restart-daemon HOST [SECONDS]"
	host_index "$2" >/dev/null
	daemon_stop "$2"
	sleep "${3:-0}"
	daemon_up "$2"
	;;
env) [ $# = 2 ] || die "usage: lab.sh env HOST"; cmd_env "$2" ;;
*) die "usage: lab.sh up [classic|modern|all]|down|purge|status|on HOST CMD...|networks HOST|restart-daemon HOST [SECONDS]|env HOST" ;;
esac
