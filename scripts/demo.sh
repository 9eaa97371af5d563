#!/usr/bin/env bash
# demo.sh is the main job: migrate a running workload container (256 MiB of
# verified memory, a TCP heartbeat) from the lab's host1 to host2 with the
# real agents over TLS, and print the freeze time. `make demo` runs the
# setup (deps, lab) first.
set -euo pipefail
cd "$(dirname "$0")/.."
L="bash scripts/lab.sh"
TLS=/var/lib/dockmove-lab/tls
NAME=${DEMO_NAME:-demo-workload}
MEM=${DEMO_MEM_MIB:-256}
eval "$($L env host2)"; H2_ADDR=$LAB_ADDR; H2_DOCKER=$LAB_DOCKER_HOST; H2_CONF=$LAB_CONFIG
eval "$($L env host1)"; H1_DOCKER=$LAB_DOCKER_HOST

cleanup() {
	[ -n "${DST_PID:-}" ] && kill "$DST_PID" 2>/dev/null && wait "$DST_PID" 2>/dev/null
	for h in host1 host2; do $L on "$h" docker rm -f "$NAME" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
cleanup
DST_EVENTS=/var/log/dockmove-lab/demo-dst.events
rm -f "$DST_EVENTS"

echo "== host2: migrate-dst listening on $H2_ADDR:7070"
$L on host2 bin/migrate-dst --listen "$H2_ADDR:7070" --docker-host "$H2_DOCKER" \
	--work-dir /var/lib/dockmove-lab/host2/work --runtime-state "$(dirname "$H2_CONF")/runtime" \
	--tls-dir "$TLS/host2" --events "$DST_EVENTS" >/var/log/dockmove-lab/demo-dst.log 2>&1 &
DST_PID=$!
# Its event stream says when it accepts migrations.
for _ in $(seq 100); do grep -q '"event":"ready"' "$DST_EVENTS" && break; sleep 0.1; done
grep -q '"event":"ready"' "$DST_EVENTS" || { cat /var/log/dockmove-lab/demo-dst.log >&2; echo "demo: migrate-dst did not start" >&2; exit 1; }

echo "== host1: workload container $NAME holding $MEM MiB"
$L on host1 docker run -d --pull never --name "$NAME" --network dmlab dockmove/workload:lab \
	/usr/local/bin/workload --data-dir /data --mem-mib "$MEM" >/dev/null
IP=$($L on host1 docker inspect -f '{{.NetworkSettings.Networks.dmlab.IPAddress}}' "$NAME")
$L on host1 docker exec "$NAME" arping -U -c 1 -I eth0 "$IP" >/dev/null
until before=$(bin/workload query "$IP:7000" status 2>/dev/null); do sleep 0.2; done
echo "   before: $before"

echo "== migrate-src --to $H2_ADDR:7070 $NAME"
$L on host1 bin/migrate-src --to "$H2_ADDR:7070" --docker-host "$H1_DOCKER" \
	--work-dir /var/lib/dockmove-lab/host1/work --tls-dir "$TLS/host1" "$NAME"

after=$(bin/workload query "$IP:7000" verify)
echo "   after (on host2, memory verified): $after"
echo "   host2: $($L on host2 docker ps --filter "name=^/$NAME\$" --format '{{.Names}}: {{.Status}}')"
echo "   host1: $($L on host1 docker ps -a --filter "name=^/$NAME\$" --format '{{.Names}}: {{.Status}}')"
