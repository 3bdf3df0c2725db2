#!/usr/bin/env bash
# The README's two commands from a clean slate, as a new user meets them: remove what this
# project made on this machine (and only that), clone main afresh, run `make demo`, then
# `make test`, and print how long each took. Not part of `make test`: it takes about an hour.
#
#   bash scripts/fresh-check.sh [REPO]          # REPO: a clone to take main from (default: this one)
#
# Removed first, each by the label or name prefix the project owns:
#   - the sandbox's test hosts, their volumes and network (label org.aistack.sandbox);
#   - every image built here (aistack-*: the base, the service stand-ins, the test host);
#   - the download cache (~/.cache/aistack, or $AISTACK_CACHE).
# Left alone: Debian packages the bootstrap installed (docker.io, nginx, ...) and pip's own
# cache; pip runs with an empty cache of its own here, so every wheel is downloaded as on a
# new machine. The clone has no venv and no .sandbox/ (SSH key, generated model).
set -euo pipefail

SRC=$(cd "${1:-$(dirname "$0")/..}" && pwd)
WORK=$(mktemp -d /tmp/aistack-fresh-XXXXXX)
CACHE=${AISTACK_CACHE:-$HOME/.cache/aistack}

say() { printf '[fresh-check %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

remove_project_state() {
    if docker info >/dev/null 2>&1; then
        say "removing the sandbox's containers, volumes and network (label org.aistack.sandbox)"
        docker ps -aq --filter label=org.aistack.sandbox | xargs -r docker rm -f -v >/dev/null
        docker volume ls -q --filter label=org.aistack.sandbox | xargs -r docker volume rm >/dev/null
        docker network ls -q --filter label=org.aistack.sandbox | xargs -r docker network rm >/dev/null
        say "removing the images built here (aistack-*)"
        docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^aistack-' | xargs -r docker rmi -f >/dev/null
        docker image prune -f --filter label=org.aistack.context-hash >/dev/null
    fi
    say "removing the download cache $CACHE"
    rm -rf "$CACHE"
}

timed() {  # timed LABEL COMMAND...: run it in the clone, print its wall time, keep its exit code
    local label=$1 start rc
    shift
    start=$(date +%s)
    say "$label: $*"
    set +e
    (cd "$WORK/aistack" && "$@")
    rc=$?
    set -e
    TIMES+=("$label: $(( $(date +%s) - start )) s, exit $rc")
    say "${TIMES[-1]}"
    return $rc
}

TIMES=()
remove_project_state
say "cloning main of $SRC into $WORK/aistack"
git clone --quiet --branch main --no-local "$SRC" "$WORK/aistack"
export PIP_CACHE_DIR="$WORK/pip-cache"
status=0
timed "make demo" make demo || status=$?
if [ "$status" -eq 0 ]; then
    timed "make demo (again: changes nothing)" make demo || status=$?
    timed "make test" make test || status=$?
fi
say "done on $(nproc) cores, commit $(git -C "$WORK/aistack" rev-parse --short HEAD):"
printf '  %s\n' "${TIMES[@]}"
exit "$status"
