#!/usr/bin/env bash
# Quick start: builds Vestibule, starts three echo backends and `vestibule serve` on the
# manifests in this directory, and prints requests to try. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."

HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8080}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:10254}

cargo build --quiet --bin vestibule
vestibule=target/debug/vestibule

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
"$vestibule" echo --listen 127.0.0.1:9001 --name coffee-1 & pids+=($!)
"$vestibule" echo --listen 127.0.0.2:9001 --name coffee-2 & pids+=($!)
"$vestibule" echo --listen 127.0.0.1:9002 --name tea & pids+=($!)
"$vestibule" serve --manifests examples/quickstart \
  --http-addr "$HTTP_ADDR" --admin-addr "$ADMIN_ADDR" & pids+=($!)

for _ in $(seq 100); do
  curl -fs "http://$ADMIN_ADDR/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://$ADMIN_ADDR/readyz" >/dev/null || { echo "vestibule did not become ready" >&2; exit 1; }

cat <<TRY

Vestibule is serving examples/quickstart on http://$HTTP_ADDR. Try:

  curl -H 'Host: cafe.example' http://$HTTP_ADDR/coffee          # coffee-1 and coffee-2 take turns
  curl -H 'Host: cafe.example' http://$HTTP_ADDR/tea/green       # tea
  curl -H 'Host: cafe.example' http://$HTTP_ADDR/menu            # tea (Exact path)
  curl -H 'Host: latte.cafe.example' http://$HTTP_ADDR/          # coffee (wildcard host)
  curl -H 'Host: elsewhere.example' http://$HTTP_ADDR/           # tea (the default backend)
  curl --http2-prior-knowledge -H 'Host: cafe.example' http://$HTTP_ADDR/coffee
  curl http://$ADMIN_ADDR/readyz

Edit any file in examples/quickstart and the change applies within milliseconds.
Press Ctrl-C to stop.
TRY
wait
