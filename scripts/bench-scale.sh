# bench-scale.sh: sourced by bench.sh (uses its inns, bench, $cf, $ns, $out).
# scale_verify DIR: `cfguard verify` over 10,000 proxied hostnames of one
# zone on one origin (SSL full: 20,000 paths), the origin a real nginx on
# 192.0.2.2 inside the namespace with one default server and an ECDSA
# P-256 wildcard certificate (as Cloudflare's Origin CA issues). Each run
# must end "all 20000 paths pass"; peak RSS is the kernel's (GNU time's
# maximum resident set size). Then the same with 10,000 per-address rules
# and 300 sets of 20 loaded into the namespace's ruleset (nft -f).
# SCALE_HOSTS (10000) and SCALE_RUNS (5) change the size and the runs;
# KEEP_RULES=1 leaves the busy ruleset loaded afterwards.

scale_verify() {
	local site=$1 hosts=${SCALE_HOSTS:-10000}
	local want="all $((2 * hosts)) paths pass"
	command -v nginx >/dev/null || { echo "bench: no nginx: the 10,000-hostname rows are skipped (apt-get install nginx)"; return 0; }
	command -v openssl >/dev/null || { echo "bench: no openssl: the 10,000-hostname rows are skipped"; return 0; }
	command -v jq >/dev/null || { echo "bench: no jq: the 10,000-hostname rows are skipped (apt-get install jq)"; return 0; }
	mkdir -p "$site"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj "/CN=*.example.org" -addext "subjectAltName=DNS:*.example.org" \
		-keyout "$site/key.pem" -out "$site/cert.pem" 2>/dev/null
	cat >"$site/nginx.conf" <<EOF
worker_processes auto;
pid $site/nginx.pid;
error_log $site/error.log;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $site/tmp-body;
    proxy_temp_path $site/tmp-proxy;
    fastcgi_temp_path $site/tmp-fastcgi;
    uwsgi_temp_path $site/tmp-uwsgi;
    scgi_temp_path $site/tmp-scgi;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # as Debian's nginx.conf
    ssl_prefer_server_ciphers on;
    ssl_certificate $site/cert.pem;
    ssl_certificate_key $site/key.pem;
    server {
        listen 192.0.2.2:80 default_server;
        listen 192.0.2.2:443 ssl default_server;
        server_name _;
        location / { default_type text/plain; return 200 "ok\n"; }
    }
}
EOF
	inns ip addr add 192.0.2.2/24 dev cfb0
	inns nginx -c "$site/nginx.conf" &
	inns "$PWD/bin/cfapi-standin" -listen 127.0.0.1:8104 -zone example.org -hosts "$hosts" -origin 192.0.2.2 -no-origin-server >/dev/null &
	local i
	for i in $(seq 50); do inns curl -s -o /dev/null --max-time 1 http://192.0.2.2/ && inns curl -s -o /dev/null --max-time 1 http://127.0.0.1:8104/ips && break; sleep 0.1; done

	local vscale="$cf --api-url http://127.0.0.1:8104 verify --zone example.org --nginx-config $site/nginx.conf"
	scale_one "cfguard verify ($hosts hostnames, $((2 * hosts)) paths, nginx origin)" "$vscale" "$want" || return 1
	# --json: the document must hold every path; its peak RSS too.
	local n rss
	n=$(inns $vscale --json | jq '.paths | length')
	[ "$n" = $((2 * hosts)) ] || { echo "bench: verify --json: $n paths, want $((2 * hosts))"; return 1; }
	rss=$(inns /usr/bin/time -f %M $vscale --json 2>&1 >/dev/null | tail -1)
	echo "bench: cfguard verify --json ($hosts hostnames): $n paths; peak RSS $((rss / 1024)) MiB"
	echo "| ↳ \`verify --json\`, the same: peak RSS $((rss / 1024)) MiB, $n paths in the document | | | | |" >>"$out"

	# A busy ruleset: the shape of sim.BenchmarkCheckPrefixManyRules, with
	# the usual ct state accept first (else every packet, not only each
	# SYN, walks the 10,816 rules in the kernel).
	python3 - >"$site/busy.nft" <<'PY'
print("table inet filter {")
for i in range(300):
    v = ", ".join(f"2001:db8:cf:{(i % 7) * 0x1000:x}::{i >> 8:x}{i & 255:02x}:{j:x}" for j in range(20))
    print(f"  set s{i} {{ type ipv6_addr; elements = {{ {v} }} }}")
print("  chain input {\n    type filter hook input priority 0; policy accept;")
print("    ct state established,related accept")
for i in range(10000):
    print(f"    ip6 saddr 2001:db8:cf:{(i % 7) * 0x1000:x}::{i >> 8:x}:{i & 255:x} tcp dport {1000 + i % 5000} counter drop")
for i in range(512):
    net = "198.51.100" if i < 256 else "203.0.113"
    print(f"    ip saddr {net}.{i % 256} tcp dport {1000 + i} drop")
for i in range(300):
    print(f"    tcp dport {6000 + i} ip6 saddr @s{i} drop")
print("  }\n}")
PY
	local t0 t1
	t0=$(date +%s%N)
	inns nft -f "$site/busy.nft"
	t1=$(date +%s%N)
	echo "bench: loaded 10,000 rules and 300 sets of 20 in $(((t1 - t0) / 1000000)) ms ($(inns nft list ruleset | grep -c drop) drop rules)"
	scale_one "cfguard verify ($hosts hostnames, through 10,000 rules + 300 sets)" "$vscale" "$want" || return 1
	[ -n "${KEEP_RULES:-}" ] || inns nft delete table inet filter
}

# scale_one NAME COMMAND WANT: the result line must be WANT; then the peak
# RSS of one run and the hyperfine row.
scale_one() {
	local name=$1 cmd=$2 want=$3 last rss
	last=$(inns $cmd | tail -1)
	case $last in *"$want"*) ;; *) echo "bench: $name: want \"$want\", got: $last"; return 1 ;; esac
	rss=$(inns /usr/bin/time -f %M $cmd 2>&1 >/dev/null | tail -1)
	echo "bench: $name: $last; peak RSS $((rss / 1024)) MiB"
	runs=${SCALE_RUNS:-5} bench "$name" "$cmd"
	echo "| ↳ peak RSS $((rss / 1024)) MiB (GNU time, maximum resident set size); \"$want\" | | | | |" >>"$out"
}
