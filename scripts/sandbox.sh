#!/usr/bin/env bash
# The local sandbox: a systemd container standing in for a bare VPS, converged by the same site.yml
# as a real host (the default inventory, inventory/sandbox, points at it).
#   scripts/sandbox.sh up [ansible-playbook args…]   create it if missing, then converge site.yml
#   scripts/sandbox.sh destroy                        remove it and its volumes
set -euo pipefail
cd "$(dirname "$0")/.."

name=bloomberg-sandbox
image=${BLOOMBERG_TARGET_IMAGE:-bloomberg-target:debian12}
key=$HOME/.cache/bloomberg-sandbox/id_ed25519

create() {
  docker container inspect "$name" >/dev/null 2>&1 && return 0
  echo "sandbox: creating $name from $image" >&2
  # The least that systemd as PID 1 needs here (--privileged is refused on some hosts); the nested
  # Docker engine of the stack gets a volume so that it can use overlay2.
  docker run -d --name "$name" --hostname "$name" \
    --cgroupns=host --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add SYS_PTRACE \
    --security-opt seccomp=unconfined --security-opt apparmor=unconfined \
    --tmpfs /run --tmpfs /run/lock -v /sys/fs/cgroup:/sys/fs/cgroup:rw \
    -v "$name-docker:/var/lib/docker" \
    "$image" /lib/systemd/systemd >/dev/null
}

wait_for_boot() {
  local state=""
  # systemctl answers only once systemd's bus is up; --wait then blocks until boot has finished.
  for _ in $(seq 1 60); do
    state=$(docker exec "$name" systemctl is-system-running --wait 2>/dev/null || true)
    case "$state" in
      running|degraded) return 0 ;;
    esac
    sleep 1
  done
  echo "sandbox: systemd in $name did not finish booting (state: ${state:-unknown})" >&2
  exit 1
}

case "${1:-up}" in
  up)
    shift || true
    [ -f "$key" ] && [ -f "$key.pub" ] || ansible-playbook scripts/sandbox-key.yml
    create
    wait_for_boot
    scripts/provide-offline-assets.sh "$name"
    scripts/s3-standin.sh start
    ansible-playbook site.yml "$@"
    address=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")
    secrets=$HOME/.cache/bloomberg-sandbox/secrets
    # The name nginx serves (edge_domain in inventory/sandbox).
    domain=$(docker exec "$name" sed -n 's/^ *server_name \([^_][^;]*\);$/\1/p' /etc/nginx/nginx.conf 2>/dev/null | head -n1 || true)
    domain=${domain:-bloomberg.localhost}
    compose() { docker exec -w /opt/bloomberg "$name" docker compose "$@" 2>/dev/null || true; }
    services=$(compose ps --all --format '{{.Service}}: {{.State}}{{if .Health}} ({{.Health}}){{end}}' | sort)
    running=$(compose ps --services --status running)
    # What the project defines but does not run: stack_services_not_started (images this machine lacks).
    unstarted=$(comm -23 <(compose config --services | sort) <(sort <<<"$running") | paste -sd ' ')
    if grep -qx grafana <<<"$running"; then
      grafana="  https://$domain/                      Grafana: login admin (password in $secrets/grafana_admin_password),
      alice (in $secrets/grafana_user_alice)"
    else
      grafana="  (Grafana is not running here: no image of it could be had; its configuration is rendered and validated)"
    fi
    cat <<MSG

The sandbox is converged. Services in its stack:
$(sed 's/^/  /' <<<"${services:-(none running)}")
Defined but not started here: ${unstarted:-none}.

Open (self-signed certificate: accept it for $domain only). The name must resolve to $address: curl
takes --resolve; browsers resolve *.localhost to their own machine whatever /etc/hosts says, so to
browse, set edge_domain in inventory/sandbox to a name such as sandbox.test and map it in /etc/hosts.
$grafana
  https://$domain/market/openapi.json   the watchlist and alert API (docs/api.md; logins: stack_users)
  curl -k --resolve $domain:443:$address https://$domain/market/healthz
Reach the host:
  docker exec -it $name bash                 # a root shell
  ssh -i $key ops@$address   # as the sandbox's admin, the way you would reach a VPS
  docker exec -w /opt/bloomberg $name docker compose ps    # the stack
  docker exec $name bloomberg-backup snapshots              # its backups, in the S3 stand-in on this machine
Re-run \`make sandbox\` after any change: it applies only what differs. \`make sandbox-destroy\` removes it.
MSG
    ;;
  destroy)
    docker rm -f "$name" >/dev/null 2>&1 || true
    docker volume rm "$name-docker" >/dev/null 2>&1 || true
    scripts/s3-standin.sh stop
    echo "sandbox: removed" >&2
    ;;
  *)
    echo "usage: $0 up [ansible-playbook args…] | destroy" >&2
    exit 2
    ;;
esac
