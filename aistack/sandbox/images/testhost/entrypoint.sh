#!/bin/sh
# Test host init: host keys, authorized key, the inner Docker engine, then sshd in front.
#   AUTHORIZED_KEYS  public key(s) for root on first boot (or mount /root/.ssh/authorized_keys)
#   SSH_PORT         sshd port (default 22; set it when running with --network host)
set -eu

ssh-keygen -A >/dev/null
# First boot only: afterwards the key is whatever `aistack sandbox up` last authorised. Rewriting
# it from the creation-time env on every start undid that on a restart and locked the host out.
if [ -n "${AUTHORIZED_KEYS:-}" ] && [ ! -e /root/.ssh/authorized_keys ]; then
    printf '%s\n' "$AUTHORIZED_KEYS" >/root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
fi
mkdir -p /run/sshd

# Inner engine: vfs (no overlay-on-overlay), no iptables (containers use host networking),
# its own cgroup parent so it does not mix with the outer engine's containers.
# Pid files survive `docker restart` of the test host: drop the stale ones.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid
dockerd --storage-driver=vfs --iptables=false --ip-masq=false \
    --cgroup-parent="/testhost-$(hostname)" >/var/log/dockerd.log 2>&1 &
dockerd_pid=$!
i=0
until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 60 ] || ! kill -0 "$dockerd_pid" 2>/dev/null; then
        echo "testhost: dockerd did not start; tail of /var/log/dockerd.log:" >&2
        tail -n 30 /var/log/dockerd.log >&2
        break  # keep sshd up so the failure can be inspected
    fi
    sleep 1
done

/usr/sbin/sshd -D -e -p "${SSH_PORT:-22}" &
sshd_pid=$!
# On `docker stop`: stop sshd and let dockerd stop its containers cleanly.
trap 'kill -TERM "$sshd_pid" "$dockerd_pid" 2>/dev/null || true; wait "$dockerd_pid" || true; exit 0' TERM INT
echo "testhost: ready (sshd on port ${SSH_PORT:-22})"
wait "$sshd_pid"
