#!/usr/bin/env bash
# HTTP/1.1 proxy benchmark: sluice vs nginx, side by side in one run, against
# the same backend (an nginx answering a small fixed body), with wrk.
#   tools/bench/http.sh [seconds per run, default 10] [workers, default 1]
# Prints a Markdown table (requests/s, p50, p99) for 50 and 1,000
# connections, plus "direct to backend" as the upper bound. Not a test:
# numbers depend on the machine; compare ratios from one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
workers=${2:-1}

source tools/bench/lib.sh
bench_setup nginx wrk

backend=$(free_port); nginx_port=$(free_port); sluice_port=$(free_port)

backend_conf "$work/backend.conf" "$backend"
proxy_conf "$work/proxy.conf" "$workers" "$backend" "127.0.0.1:$nginx_port reuseport"
cat > "$work/sluice.toml" <<CONF
[server]
workers = $workers
access_log = "off"
max_connections = 100000
[[listener]]
address = "127.0.0.1:$sluice_port"
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
nginx -c "$work/proxy.conf" -p "$work" & pids+=($!)
"$dir/sluice" --config "$work/sluice.toml" 2>"$work/sluice.err" & pids+=($!)
for port in $backend $nginx_port $sluice_port; do
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
done
ulimit -n 65536 2>/dev/null || true

# wrk's latency lines: "50%  123.00us"; normalise to milliseconds.
run() {
  local port=$1 conns=$2
  local out
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/" 2>&1)
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); printf "%.2f", v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); printf "%.2f", v} else if (v ~ /s$/) {sub(/s/,"",v); printf "%.2f", v*1000} else print v }'; }
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}

echo "| connections | target | requests/s | p50 ms | p99 ms | vs nginx |"
echo "| ---: | --- | ---: | ---: | ---: | ---: |"
for conns in 50 1000; do
  read -r d_rps d_p50 d_p99 < <(run "$backend" "$conns")
  read -r n_rps n_p50 n_p99 < <(run "$nginx_port" "$conns")
  read -r s_rps s_p50 s_p99 < <(run "$sluice_port" "$conns")
  ratio=$(awk -v a="$s_rps" -v b="$n_rps" 'BEGIN{printf "%.2fx", a/b}')
  echo "| $conns | direct to backend | $d_rps | $d_p50 | $d_p99 | |"
  echo "| $conns | nginx $(nginx -v 2>&1 | sed 's/.*nginx\///') | $n_rps | $n_p50 | $n_p99 | 1.00x |"
  echo "| $conns | sluice | $s_rps | $s_p50 | $s_p99 | $ratio |"
done
echo
echo "wrk -t2, ${secs}s per run, $workers proxy worker(s), upstream keep-alive 32, access logs off, $(nproc) cores."
