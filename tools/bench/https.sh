#!/usr/bin/env bash
# HTTPS proxy benchmark: sluice vs nginx terminating TLS with the same
# certificate (tools/dev-cert: EC P-256 leaf + intermediate), side by side in
# one run, in front of the same plain-HTTP backend as tools/bench/http.sh.
#   tools/bench/https.sh [seconds per run, default 10] [workers, default 1]
# Prints a Markdown table for three loads:
#   keep-alive      wrk -c50 over https: requests/s, p50, p99
#   full handshake  concurrent `openssl s_time -new`: a new connection, a full
#                   handshake (no session offered) and one request each
#   resumed         wrk -c50 -H "Connection: close": wrk keeps its last session
#                   and resumes it (TLS 1.3 ticket), so this is NOT full handshakes
# plus the proxy's own CPU time per request, read from /proc: the client
# shares the two cores, so requests/s alone flattens differences.
# Not a test: numbers depend on the machine; compare ratios from one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
workers=${2:-1}
handshake_clients=4  # concurrent s_time loops (one connection each at a time); 4 fill 2 cores

source tools/bench/lib.sh
bench_setup nginx wrk openssl

backend=$(free_port); nginx_port=$(free_port); sluice_port=$(free_port)
tools/dev-cert -o "$work/tls" 2>"$work/dev-cert.err" || { cat "$work/dev-cert.err" >&2; exit 1; }
cert=$work/tls/cert.pem key=$work/tls/key.pem

# Backend and proxy settings as in http.sh (tools/bench/lib.sh); only the listeners differ.
backend_conf "$work/backend.conf" "$backend"
proxy_conf "$work/proxy.conf" "$workers" "$backend" "127.0.0.1:$nginx_port ssl reuseport" "\
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    ssl_conf_command NumTickets 1;  # as sluice; OpenSSL's default is 2 per handshake"
cat > "$work/sluice.toml" <<CONF
[server]
workers = $workers
access_log = "off"
max_connections = 100000
[[listener]]
address = "127.0.0.1:$sluice_port"
[listener.tls]
cert = "$cert"
key = "$key"
[admin]
address = "127.0.0.1:0"
[upstream.backend]
servers = ["127.0.0.1:$backend"]
keepalive = 32
[[route]]
name = "all"
prefix = "/"
upstream = "backend"
CONF

nginx -c "$work/backend.conf" -p "$work" & pids+=($!)
nginx -c "$work/proxy.conf" -p "$work" & pids+=($!); nginx_pid=$!
"$dir/sluice" --config "$work/sluice.toml" 2>"$work/sluice.err" & pids+=($!); sluice_pid=$!
for url in "http://127.0.0.1:$backend/" "https://127.0.0.1:$nginx_port/" "https://127.0.0.1:$sluice_port/"; do
  for _ in $(seq 50); do curl -sf --cacert "$work/tls/ca.pem" "$url" >/dev/null && break; sleep 0.1; done
  curl -sf --cacert "$work/tls/ca.pem" "$url" >/dev/null || { echo "https.sh: $url does not answer" >&2; cat "$work"/*.err >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || true

# CPU time (user + system, in clock ticks) of a proxy: nginx's workers (the
# master is idle) or sluice's process (all its threads).
proxy_pids() {
  if [ "$1" = nginx ]; then cat /proc/"$nginx_pid"/task/*/children; else echo "$sluice_pid"; fi
}
cpu_ticks() {
  local t=0 p
  for p in $(proxy_pids "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
# Microseconds of proxy CPU per request, from ticks before and after.
cpu_us() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.1f", (b-a)/hz*1e6/n}'; }
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); printf "%.2f", v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); printf "%.2f", v} else if (v ~ /s$/) {sub(/s/,"",v); printf "%.2f", v*1000} else print v }'; }

# Prints "requests/s p50 p99 cpu_us_per_request" for wrk against a proxy.
wrk_run() {
  local proxy=$1 port=$2; shift 2
  local before after out rps total
  before=$(cpu_ticks "$proxy")
  out=$(wrk -t2 -c50 -d"${secs}s" --latency "$@" "https://127.0.0.1:$port/" 2>&1)
  after=$(cpu_ticks "$proxy")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  total=$(awk '/requests in/ {print $1}' <<<"$out")
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    echo "https.sh: wrk against $proxy: $(grep "Non-2xx\|Socket errors" <<<"$out")" >&2
  fi
  echo "$rps $(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")") \
$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")") $(cpu_us "$before" "$after" "$total")"
}

# Full handshakes: $handshake_clients concurrent `openssl s_time -new` loops.
# Each connects, handshakes without offering a session, sends
# "GET / HTTP/1.0", reads the answer until the proxy closes, and reconnects.
# s_time stops at a whole-second boundary, so the rate is its connection count
# over wall time measured here. No latency percentiles: s_time reports none.
# Prints "handshakes/s - - cpu_us_per_handshake".
handshake_run() {
  local proxy=$1 port=$2 i before after t0 t1 n clients=() status
  status=$(printf 'GET / HTTP/1.0\r\n\r\n' |
    openssl s_client -connect "127.0.0.1:$port" -quiet -ign_eof 2>/dev/null | sed -n 1p || true)
  [[ $status == HTTP/1.?" 200"* ]] || echo "https.sh: $proxy answers s_time's request with: $status" >&2
  before=$(cpu_ticks "$proxy")
  t0=$(date +%s.%N)
  for i in $(seq "$handshake_clients"); do
    openssl s_time -connect "127.0.0.1:$port" -new -time "$secs" -www / >"$work/s_time.$i" 2>&1 &
    clients+=($!)
  done
  wait "${clients[@]}"
  t1=$(date +%s.%N)
  after=$(cpu_ticks "$proxy")
  n=$(cat "$work"/s_time.* | awk '/connections in .* real seconds/ {n += $1} END {print n + 0}')
  if grep -qi "error\|unable" "$work"/s_time.*; then echo "https.sh: s_time against $proxy reported errors" >&2; fi
  rm -f "$work"/s_time.*
  echo "$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", n/(b-a)}') - - $(cpu_us "$before" "$after" "$n")"
}

# Whether a proxy resumes a session: s_client saves one, then offers it.
# s_client's exit status is not used: it is 1 when the server closes without
# close_notify, which says nothing about resumption.
resumes() {
  local port=$1 out
  printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" -ign_eof \
    -sess_out "$work/sess.$port" >/dev/null 2>&1 || true
  out=$(printf 'GET / HTTP/1.0\r\n\r\n' | openssl s_client -connect "127.0.0.1:$port" -ign_eof \
    -sess_in "$work/sess.$port" 2>/dev/null || true)
  grep -q '^Reused' <<<"$out" && echo yes || echo no
}

version=$(nginx -v 2>&1 | sed 's/.*nginx\///')
echo "| load | target | per second | p50 ms | p99 ms | proxy CPU µs each | vs nginx (rate) | vs nginx (CPU) |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
row() {
  local load=$1 n=$2 s=$3 n_rate n_p50 n_p99 n_cpu s_rate s_p50 s_p99 s_cpu
  read -r n_rate n_p50 n_p99 n_cpu <<<"$n"
  read -r s_rate s_p50 s_p99 s_cpu <<<"$s"
  echo "| $load | nginx $version | $n_rate | $n_p50 | $n_p99 | $n_cpu | 1.00x | 1.00x |"
  echo "| $load | sluice | $s_rate | $s_p50 | $s_p99 | $s_cpu \
| $(awk -v a="$s_rate" -v b="$n_rate" 'BEGIN{printf "%.2fx", a/b}') \
| $(awk -v a="$s_cpu" -v b="$n_cpu" 'BEGIN{printf "%.2fx", a/b}') |"
}
n=$(wrk_run nginx "$nginx_port"); s=$(wrk_run sluice "$sluice_port")
row "keep-alive, 50 conns (requests)" "$n" "$s"
n=$(handshake_run nginx "$nginx_port"); s=$(handshake_run sluice "$sluice_port")
row "full handshake, $handshake_clients clients (handshakes)" "$n" "$s"
n=$(wrk_run nginx "$nginx_port" -H "Connection: close"); s=$(wrk_run sluice "$sluice_port" -H "Connection: close")
row "resumed, 50 conns (handshakes)" "$n" "$s"
echo
# What a client negotiates with each proxy, e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519".
negotiated() {
  openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null |
    awk '/^New,/ {v = $2; sub(/,$/, "", v); p = v " " $5} /^Server Temp Key:/ {k = $4; sub(/,$/, "", k)} END {print p, k}'
}
echo "${secs}s per run, $workers proxy worker(s), upstream keep-alive 32, access logs off, $(nproc) cores," \
  "$(openssl version | awk '{print $1, $2}'), P-256 ECDSA certificate + intermediate." \
  "Negotiated: nginx $(negotiated "$nginx_port"), sluice $(negotiated "$sluice_port")."
echo "Session resumption offered by a returning client: nginx $(resumes "$nginx_port"), sluice $(resumes "$sluice_port")." \
  "\"CPU µs each\" is the proxy's own user + system time over the run divided by requests served (\"vs nginx (CPU)\": lower is better)."
