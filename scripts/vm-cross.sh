#!/bin/bash
# vm-cross.sh runs inside the VM tier's guest (scripts/vm.sh, VM_CROSS=1),
# whose kernel has only the unified cgroup v2 hierarchy, while this
# machine's lab hosts run cgroup v1. It makes the guest's lab host (host5,
# Docker 28) one more host on the machine's lab switch and serves
# migrations to it, so that a test outside
# (migrate/e2e_crosskernel_linux_test.go) can move containers between
# hosts whose cgroup versions differ:
#   1. host5 up, its switch bridged to the machine's through the guest's
#      network card, the lab's credentials (carried in by vm.sh) in place;
#   2. the way out: a container on host5 moved to the host named in
#      /etc/vm-cross-target (a migrate-dst the outside test runs);
#   3. the way in: migrate-dst on host5, until the outside test is done
#      (it connects to port 7071 of host5);
#   4. what is left on host5.
# Every finding is a console line starting "VMTEST-CROSS ", read outside.
set -uo pipefail
cd /repo
say() { echo "VMTEST-CROSS $*"; }
target=$(cat /etc/vm-cross-target)

mkdir -p /var/lib/dockmove-lab
cp -a /repo/tls /var/lib/dockmove-lab/tls
if ! LAB_UPLINK=eth0 bash scripts/lab.sh up guest; then
	say "failed: the guest's lab did not come up"
	tail -20 /var/log/dockmove-lab/*.log
	exit 1
fi
eval "$(bash scripts/lab.sh env host5)"
export DOCKER_HOST=$LAB_DOCKER_HOST
docker load -q -i images/dockmove_busybox_lab.tar >/dev/null || { say "failed: image load"; exit 1; }
LAB_CERTS=carried bash scripts/lab-runtime.sh
runtime_state=$(dirname "$LAB_CONFIG")/runtime
on() { nsenter --net="$LAB_NETNS" "$@"; }
say "host5 up: cgroup v$(docker info --format '{{.CgroupVersion}}'), docker $(docker version --format '{{.Server.Version}}')"

# The way out: host5 (cgroup v2) to the target (cgroup v1).
docker run -d --name cross-out --network "$LAB_NETWORK" dockmove/busybox:lab sleep 1000000 >/dev/null ||
	{ say "failed: docker run"; exit 1; }
started=$(docker inspect -f '{{.State.Pid}} {{.State.StartedAt}}' cross-out)
on bin/migrate-src --to "$target" --docker-host "$LAB_DOCKER_HOST" --work-dir "$LAB_WORK_DIR" \
	--tls-dir "$LAB_TLS_DIR" --events /tmp/out.events --json cross-out >/tmp/out.json 2>/tmp/out.err
say "out exit $?"
say "out stages $(sed -n 's/.*"stage":"\([a-z-]*\)".*/\1/p' /tmp/out.events | tr '\n' ' ')"
while read -r line || [ -n "$line" ]; do say "out stderr: $line"; done </tmp/out.err
now=$(docker inspect -f '{{.State.Pid}} {{.State.StartedAt}}' cross-out)
[ "$now" = "$started" ] || say "out restarted: $started -> $now"
say "out state $(docker inspect -f '{{.State.Status}} paused={{.State.Paused}}' cross-out)"

# The way in: host5 serves migrations until the outside test is done.
on bin/migrate-dst --events /tmp/dst.events --listen "$LAB_ADDR:$LAB_AGENT_PORT" --docker-host "$LAB_DOCKER_HOST" \
	--work-dir "$LAB_WORK_DIR" --runtime-state "$runtime_state" --tls-dir "$LAB_TLS_DIR" \
	>/tmp/dst.log 2>&1 &
dst=$!
ready=
for _ in $(seq 1 120); do
	grep -q '"ready"' /tmp/dst.events 2>/dev/null && { ready=1; break; }
	kill -0 $dst 2>/dev/null || break
	sleep 1
done
if [ -z "$ready" ]; then
	say "failed: host5's migrate-dst did not become ready: $(tail -n 5 /tmp/dst.log | tr '\n' ' ')"
	exit 1
fi
say "in ready"
on nc -l -p 7071 </dev/null >/dev/null
while read -r line || [ -n "$line" ]; do say "in log: $line"; done </tmp/dst.log
say "left on host5: $(docker ps -a --format '{{.Names}}' | tr '\n' ' ')"
# What a migration stages here, and the restore runtime's state (its log
# aside): empty after refusals.
[ -d "$runtime_state" ] || say "failed: no runtime state directory $runtime_state"
say "left in host5's dirs: $(ls -A "$LAB_WORK_DIR/migrations" "$LAB_WORK_DIR/staging" "$runtime_state" 2>/dev/null | grep -v -e '^runtime.log$' -e ':$' -e '^$' | tr '\n' ' ')"
say "done"
