#!/usr/bin/env bash
# cfguard's main job, start to finish, in a throwaway network namespace: it
# needs root, no Cloudflare account and no network, and it never touches this
# machine's own ruleset. Run it with `make demo`.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces and nftables)"; exit 2; }
command -v ip >/dev/null || { echo "demo: needs iproute2 (apt-get install iproute2)"; exit 2; }
make -s build
go build -o bin/cfapi-standin ./internal/cmd/cfapi-standin

ns=cfguard-demo-$$
state=$(mktemp -d)
cleanup() {
	ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$state"
}
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up

step() { printf '\n\033[1m# %s\033[0m\n' "$1"; }
run() {
	printf '$ cfguard %s\n' "$*"
	ip netns exec "$ns" bin/cfguard --state-dir "$state" "$@"
	printf '(exit %s)\n' "$?"
}

step "A fresh origin: nothing guards the web ports yet."
run status

step "sync needs Cloudflare's API; this namespace has no network, so it fails and changes nothing."
run sync

step "restore needs no network: no cache yet, so it applies the list built into the binary."
run restore
run status

step "A stand-in of Cloudflare's API answers with documentation prefixes, which drop more than half of what is installed: sync refuses (a truncated answer looks like that)."
ip netns exec "$ns" bin/cfapi-standin -listen 127.0.0.1:8099 >/dev/null &
sleep 0.5
run --api-url http://127.0.0.1:8099 sync --dry-run
run --api-url http://127.0.0.1:8099 sync

step "With --force it is applied in one transaction; the next sync has nothing to do."
run --api-url http://127.0.0.1:8099 sync --force
run --api-url http://127.0.0.1:8099 sync
run status

step "What the kernel holds (only cfguard's own table; other tables are never touched):"
ip netns exec "$ns" nft list table inet cfguard

step "remove deletes cfguard's table and nothing else."
run remove
run remove
printf '\ndemo: done; the namespace %s and its state are gone.\n' "$ns"
