#!/usr/bin/env bash
# Whole-command timings, process start to exit, inside a throwaway network
# namespace against the local stand-in API: a no-op sync, a changing sync,
# restore, status, verify over 1,000 proxied hostnames, and verify over
# 10,000 with a real nginx as the origin (alone: BENCH=scale). Needs root.
# Uses hyperfine when installed (apt-get install hyperfine), else a loop.
# Results: a Markdown table on stdout and in bench-results/commands.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces and nftables)"; exit 2; }
make -s build
go build -o bin/cfapi-standin ./internal/cmd/cfapi-standin
runs=${RUNS:-50}

ns=cfguard-bench-$$
state=$(mktemp -d)
cleanup() {
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$state"
}
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
inns() { ip netns exec "$ns" "$@"; }

ip netns exec "$ns" bin/cfapi-standin -listen 127.0.0.1:8101 >/dev/null &
ip netns exec "$ns" bin/cfapi-standin -listen 127.0.0.1:8102 -alternate >/dev/null &
sleep 0.5
cf="bin/cfguard --state-dir $state"
inns $cf --api-url http://127.0.0.1:8101 sync --force >/dev/null

mkdir -p bench-results
out=bench-results/commands.md
{
	echo "| command | mean | min | max | runs |"
	echo "|---|---|---|---|---|"
} >"$out"

bench() { # name, command
	local name=$1 cmd=$2
	if command -v hyperfine >/dev/null; then
		inns hyperfine -N --warmup 3 --runs "$runs" --export-json bench-results/tmp.json "$cmd" >/dev/null 2>&1
		python3 - "$name" "$runs" >>"$out" <<'PY'
import json, sys
r = json.load(open("bench-results/tmp.json"))["results"][0]
ms = lambda s: f"{s*1000:.1f} ms"
print(f"| `{sys.argv[1]}` | {ms(r['mean'])} ± {ms(r['stddev'])} | {ms(r['min'])} | {ms(r['max'])} | {len(r['times'])} |")
PY
	else
		local t0 t1 i
		t0=$(date +%s%N)
		for ((i = 0; i < runs; i++)); do inns $cmd >/dev/null 2>&1; done
		t1=$(date +%s%N)
		echo "| \`$name\` | $(((t1 - t0) / runs / 1000)) µs (loop, incl. ip netns exec) | | | $runs |" >>"$out"
	fi
}

# scale_verify DIR: the 10,000-hostname rows (bench-scale.sh).
. scripts/bench-scale.sh

[ "${BENCH:-}" = scale ] || {
bench "cfguard sync (no-op: already up to date)" "$cf --api-url http://127.0.0.1:8101 sync"
bench "cfguard sync (changing: 1 range added or removed)" "$cf --api-url http://127.0.0.1:8102 sync"
bench "cfguard restore (from cache, no network)" "$cf restore"
bench "cfguard status" "$cf status"
}

# verify: one zone with 1,000 proxied hostnames on this origin (SSL full: 2,000
# paths), the origin on a veth whose both ends are inside the namespace (a default
# route that leads nowhere: no packet leaves the namespace).
inns ip link add cfb0 type veth peer name cfb1
inns ip link set cfb1 up
inns ip addr add 192.0.2.1/24 dev cfb0
inns ip link set cfb0 up
inns ip route add default via 192.0.2.254
ip netns exec "$ns" bin/cfapi-standin -listen 127.0.0.1:8103 -zone example.com -hosts 1000 -origin 192.0.2.1 >/dev/null &
sleep 1
export CLOUDFLARE_API_TOKEN=cfapitest-token-0123456789abcdef
vcmd="$cf --api-url http://127.0.0.1:8103 verify --zone example.com"
[ "${BENCH:-}" = scale ] || {
inns $vcmd | tail -1
runs=${VERIFY_RUNS:-10} bench "cfguard verify (1,000 hostnames, 2,000 paths)" "$vcmd"
}

# verify at scale: a shared host with 10,000 proxied hostnames on one origin
# (SSL full: 20,000 paths, a TLS handshake with each hostname as SNI, then
# GET /), served by a real nginx (one default server, an ECDSA wildcard
# certificate) on 192.0.2.2 inside the namespace; the stand-in API pages the
# 10,000 records as the real one does. Then the same run with a busy
# ruleset loaded (10,000 per-address rules and 300 sets of 20).
scale_verify "$state/site"
rm -f bench-results/tmp.json
cat "$out"
