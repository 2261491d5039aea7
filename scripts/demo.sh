#!/usr/bin/env bash
# cfguard's main job, start to finish, in two throwaway network namespaces:
# an origin (nginx + PHP-FPM, as Debian ships them) and "the internet" (one
# address inside the stand-in Cloudflare ranges, one stranger). It needs root,
# no Cloudflare account and no network, and it never touches this machine's
# own ruleset or services. Run it with `make demo`.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces and nftables)"; exit 2; }
for tool in ip nft curl nginx php-fpm8.2; do
	command -v "$tool" >/dev/null || { echo "demo: needs $tool (apt-get install iproute2 nftables curl nginx php8.2-fpm)"; exit 2; }
done
make -s build || exit 1
go build -o bin/cfapi-standin ./internal/cmd/cfapi-standin || exit 1

origin=cfguard-demo-origin-$$
inet=cfguard-demo-inet-$$
state=$(mktemp -d /var/tmp/cfguard-demo.XXXXXX)
site=$state/site
cleanup() {
	for ns in "$origin" "$inet"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	done
	sleep 0.2
	for ns in "$origin" "$inet"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$state"
}
trap cleanup EXIT

bold='' plain=''
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
step() { printf '\n%s# %s%s\n' "$bold" "$1" "$plain"; }
o() { ip netns exec "$origin" "$@"; }
cf() { # cfguard inside the origin namespace, with the demo's state directory
	printf '$ cfguard %s\n' "$*"
	o bin/cfguard --state-dir "$state" "$@"
	printf '(exit %s)\n' "$?"
}
visit() { # visit FROM-ADDRESS WHO: GET http://192.0.2.1/ from the internet namespace
	local code
	code=$(ip netns exec "$inet" curl -s -o /dev/null -w '%{http_code}' --max-time 2 --interface "$1" http://192.0.2.1/ -H 'Host: www.example.com')
	case $code in
	000) printf '  %-34s -> no answer within 2 s (dropped)\n' "$2 ($1)" ;;
	*) printf '  %-34s -> HTTP %s\n' "$2 ($1)" "$code" ;;
	esac
}

# The two hosts: the origin 192.0.2.1, and the internet side with one address
# inside the stand-in Cloudflare ranges (198.51.100.0/24) and a stranger.
ip netns add "$origin"
ip netns add "$inet"
ip link add o0 netns "$origin" type veth peer name n0 netns "$inet"
o ip link set lo up
o ip link set o0 up
o ip addr add 192.0.2.1/24 dev o0
o ip route add default via 192.0.2.2
ip netns exec "$inet" ip link set lo up
ip netns exec "$inet" ip link set n0 up
ip netns exec "$inet" ip addr add 192.0.2.2/24 dev n0
ip netns exec "$inet" ip addr add 198.51.100.7/32 dev n0

# The site: nginx in front of PHP-FPM over a unix socket, in a directory of
# the demo's own (pid files, logs and the socket included).
mkdir -p "$site/www"
chmod 755 "$state" "$site" "$site/www"
echo '<?php echo "hello from PHP\n";' >"$site/www/index.php"
cat >"$site/php-fpm.conf" <<EOF
[global]
pid = $site/fpm.pid
error_log = $site/fpm.log
daemonize = no
[www]
user = www-data
group = www-data
listen = $site/php-fpm.sock
listen.owner = www-data
listen.group = www-data
pm = static
pm.max_children = 2
ping.path = /ping
EOF
cat >"$site/nginx.conf" <<EOF
user www-data;
worker_processes 1;
pid $site/nginx.pid;
error_log $site/error.log;
daemon off;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $site/tmp-body;
    fastcgi_temp_path $site/tmp-fastcgi;
    proxy_temp_path $site/tmp-proxy;
    uwsgi_temp_path $site/tmp-uwsgi;
    scgi_temp_path $site/tmp-scgi;
    server {
        listen 192.0.2.1:80;
        server_name www.example.com;
        root $site/www;
        index index.php;
        location / { try_files \$uri /index.php?\$args; }
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$site/php-fpm.sock;
        }
    }
}
EOF
o php-fpm8.2 -F -R -y "$site/php-fpm.conf" >/dev/null 2>&1 &
o nginx -c "$site/nginx.conf" >/dev/null 2>&1 &
for _ in $(seq 50); do [ -S "$site/php-fpm.sock" ] && o curl -s -o /dev/null --max-time 1 http://192.0.2.1/ && break; sleep 0.1; done

# A stand-in for Cloudflare's API: its published ranges are 198.51.100.0/24
# and 203.0.113.0/24 (+ two IPv6 /48s), and it holds the zone example.com
# with www.example.com proxied to this origin, SSL mode Flexible (port 80);
# its GraphQL Analytics say the edge served 1,204 × 502 (the origin's own
# 502) for www.example.com in the last 15 minutes.
o bin/cfapi-standin -listen 127.0.0.1:8099 -zone example.com -ssl flexible -record www.example.com=192.0.2.1 \
	-edge www.example.com=502:1204:502 >/dev/null &
for _ in $(seq 50); do o curl -s -o /dev/null --max-time 1 http://127.0.0.1:8099/ips && break; sleep 0.1; done
api="--api-url http://127.0.0.1:8099"
token="--api-token cfapitest-token-0123456789abcdef"

step "A fresh origin: nginx + PHP-FPM answer everybody; nothing guards the web ports."
visit 198.51.100.7 "Cloudflare's edge"
visit 192.0.2.2 "a stranger"
cf status

step "sync needs Cloudflare's API; the real one is out of reach here, so it fails and changes nothing."
cf sync

step "restore needs no network: there is no cache yet, so it applies the list built into the binary."
cf restore

step "The stand-in API's list would drop more than half of what is installed: sync refuses (a truncated answer looks like that)."
cf $api sync

step "With --force it is applied in one transaction; the next sync has nothing to do."
cf $api sync --force
cf $api sync
cf status

step "Now the web ports answer Cloudflare and nobody else (other ports, SSH included, are untouched)."
visit 198.51.100.7 "Cloudflare's edge"
visit 192.0.2.2 "a stranger"

step "An incident: PHP-FPM dies. Cloudflare's visitors get a 502; verify finds why and says what to do."
kill "$(cat "$site/fpm.pid")" 2>/dev/null
for _ in $(seq 50); do [ -S "$site/php-fpm.sock" ] || break; sleep 0.1; done
visit 198.51.100.7 "Cloudflare's edge"
cf $api $token verify --fpm-config "$site/php-fpm.conf"

step "PHP-FPM started again: every path passes."
o php-fpm8.2 -F -R -y "$site/php-fpm.conf" >/dev/null 2>&1 &
for _ in $(seq 50); do [ -S "$site/php-fpm.sock" ] && break; sleep 0.1; done
cf $api $token verify --fpm-config "$site/php-fpm.conf"

step "What the kernel holds: cfguard's own table (other tables are never touched)."
o nft list table inet cfguard

step "remove deletes cfguard's table and nothing else."
cf remove
visit 192.0.2.2 "a stranger"
printf '\ndemo: done; the namespaces and the demo directory are removed.\n'
