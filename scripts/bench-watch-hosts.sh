#!/usr/bin/env bash
# bench-watch-hosts.sh: what `cfguard watch` itself costs (CPU seconds per hour, RSS) at its
# default intervals while it watches 1,000 proxied hostnames (2,000 paths, SSL full: TLS + HTTP
# each, walked every minute) of the stand-in API, in a throwaway network namespace. Needs root.
# SECS (default 180) is how long it is measured.
[ "$(id -u)" = 0 ] || { echo "bench-watch-hosts: needs root" >&2; exit 2; }
export PATH="/usr/local/go/bin:$PATH"
cd "$(dirname "$0")/.." && make -s build && go build -o bin/cfapi-standin ./internal/cmd/cfapi-standin || exit 1

ns=cfguard-wcost-$$; d=$(mktemp -d /var/tmp/wcost.XXXXXX)
trap 'ip netns pids $ns | xargs -r kill; sleep 0.5; ip netns pids $ns | xargs -r kill -9; ip netns del $ns; rm -rf $d' EXIT
ip netns add $ns; ip netns exec $ns ip link set lo up; ip netns exec $ns ip addr add 192.0.2.1/32 dev lo; ip netns exec $ns ip link add v0 type veth peer name v1; ip netns exec $ns ip link set v0 up; ip netns exec $ns ip link set v1 up; ip netns exec $ns ip route add default dev v0
ip netns exec $ns bin/cfapi-standin -listen 127.0.0.1:8099 -zone example.com -hosts 1000 -origin 192.0.2.1 -ssl full > $d/standin.out &
sleep 1
ip netns exec $ns bin/cfguard --api-url http://127.0.0.1:8099 --state-dir $d sync --force >/dev/null
ip netns exec $ns bin/cfguard --api-url http://127.0.0.1:8099 --api-token cfapitest-token-0123456789abcdef --state-dir $d watch --metrics-listen 127.0.0.1:9847 2> $d/watch.log &
sleep 2
pid=$(ip netns pids $ns | while read p; do [ "$(cat /proc/$p/comm)" = cfguard ] && echo $p; done | head -1)
secs=${SECS:-180}
t0=$(date +%s.%N); read -r -a s0 < /proc/$pid/stat
sleep $secs
read -r -a s1 < /proc/$pid/stat; t1=$(date +%s.%N)
tck=$(getconf CLK_TCK)
cpu=$(echo "(${s1[13]}+${s1[14]}-${s0[13]}-${s0[14]})/$tck" | bc -l)
el=$(echo "$t1-$t0" | bc -l)
hwm=$(grep VmHWM /proc/$pid/status | awk '{print $2}')
rss=$(grep VmRSS /proc/$pid/status | awk '{print $2}')
paths=$(ip netns exec $ns curl -s 127.0.0.1:9847/metrics | grep -c '^cfguard_path_up{')
up=$(ip netns exec $ns curl -s 127.0.0.1:9847/metrics | grep '^cfguard_path_up{' | grep -c ' 1$')
printf 'elapsed %.0f s, cpu %.2f s => %.1f CPU s/hour; RSS %d KiB (peak %d KiB); paths in /metrics %s (up %s)\n' $el $cpu $(echo "$cpu*3600/$el" | bc -l) $rss $hwm $paths $up
grep -c . $d/watch.log; tail -3 $d/watch.log
