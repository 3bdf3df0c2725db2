#!/usr/bin/env bash
# Bootstrap a Debian bookworm machine for the aistack sandbox and test suite.
#
# Installs the host tools the tests need and starts a Docker engine:
#   nginx          `nginx -t` on rendered configs
#   docker.io      the engine (bookworm's 20.10 is fine) + CLI
#   docker-compose compose v2 from Debian trixie (bookworm's package is compose v1)
#   debootstrap    builds the aistack-base:trixie rootfs
#   prometheus     for `promtool check config/rules`
#
# Idempotent and non-interactive: every step checks whether it is already done, so a
# rerun takes about a second. Runs as root, or re-executes itself through sudo.
#
# The trixie apt source is derived at runtime from the machine's own bookworm source
# (same mirror URI, suite replaced), pinned at priority 100 so nothing else upgrades;
# only the `docker-compose` package (a static Go binary needing just libc6) comes from it.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E DEBIAN_FRONTEND=noninteractive bash "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive

TRIXIE_SOURCES=/etc/apt/sources.list.d/aistack-trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/aistack-trixie
DOCKERD_LOG=/var/log/dockerd.log
DOCKERD_TIMEOUT=${DOCKERD_TIMEOUT:-60}
APT_UPDATED=0

log() { printf '[bootstrap] %s\n' "$*"; }

apt_update_once() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        apt-get update -qq
        APT_UPDATED=1
    fi
}

apt_install() {  # apt_install [apt options...] PKG...
    apt_update_once
    log "apt-get install $*"
    apt-get install -y -qq --no-install-recommends "$@"
}

# --- trixie source ------------------------------------------------------------------

# Print "URI COMPONENTS SIGNED_BY" of the first source that carries the plain `bookworm`
# suite, from deb822 *.sources files or one-line sources.list entries.
bookworm_source() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: stanzas separated by blank lines; pick one whose Suites has "bookworm".
        awk -v RS='' '
            /(^|\n)Types:([^\n]* )?deb( |\n|$)/ && /(^|\n)Suites:([^\n]* )?bookworm( |\n|$)/ {
                uri = ""; comp = ""; key = ""
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^URIs:/)       { sub(/^URIs:[ \t]*/, "", lines[i]); split(lines[i], u, " "); uri = u[1] }
                    if (lines[i] ~ /^Components:/) { sub(/^Components:[ \t]*/, "", lines[i]); comp = lines[i] }
                    if (lines[i] ~ /^Signed-By:/)  { sub(/^Signed-By:[ \t]*/, "", lines[i]); key = lines[i] }
                }
                if (uri != "") { print uri "\t" comp "\t" key; exit }
            }' "$f" | head -n1 | grep . && return 0
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        # one-line: deb [options] URI SUITE COMPONENT...
        awk '$1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i+1) == "bookworm") {
                    comp = ""; for (j = i + 2; j <= NF; j++) comp = comp (comp ? " " : "") $j
                    print $i "\t" comp "\t"; exit
                }
            }' "$f" | head -n1 | grep . && return 0
    done
    return 1
}

have_trixie_source() {
    grep -qsE '^(deb(\s+\[[^]]*\])?\s+\S+\s+trixie\s|Suites:.*(^|\s)trixie(\s|$))' \
        /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
}

ensure_trixie_source() {
    if ! have_trixie_source; then
        local line uri comp key
        line=$(bookworm_source) || { log "ERROR: no bookworm apt source found to derive trixie from"; exit 1; }
        IFS=$'\t' read -r uri comp key <<<"$line"
        comp=${comp:-main}
        key=${key:-/usr/share/keyrings/debian-archive-keyring.gpg}
        log "adding trixie source derived from the bookworm one: $uri trixie $comp"
        cat >"$TRIXIE_SOURCES" <<EOF
# Added by aistack scripts/bootstrap.sh (derived from this machine's bookworm source).
# Used only for compose v2 (docker-compose); pinned low in $TRIXIE_PIN.
Types: deb
URIs: $uri
Suites: trixie
Components: $comp
Signed-By: $key
EOF
        APT_UPDATED=0  # the new source needs an apt-get update
    fi
    if [ ! -f "$TRIXIE_PIN" ]; then
        log "pinning trixie at priority 100"
        cat >"$TRIXIE_PIN" <<'EOF'
# Added by aistack scripts/bootstrap.sh: never prefer trixie over bookworm.
Package: *
Pin: release n=trixie
Pin-Priority: 100
EOF
    fi
}

# --- packages -----------------------------------------------------------------------

compose_v2_installed() {
    [ -x /usr/libexec/docker/cli-plugins/docker-compose ] &&
        /usr/libexec/docker/cli-plugins/docker-compose version 2>/dev/null | grep -q 'version v\?2\.'
}

ensure_packages() {
    local missing=() need_compose=0
    command -v nginx >/dev/null || missing+=(nginx)
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v promtool >/dev/null || missing+=(prometheus)
    if ! compose_v2_installed; then
        need_compose=1
        ensure_trixie_source  # before the (single) apt-get update
    fi

    if [ ${#missing[@]} -gt 0 ]; then
        # No recommends: docker.io's (apparmor, cgroupfs-mount, ...) are not needed here
        # and prometheus' pull in exporters we don't want.
        apt_install "${missing[@]}"
    else
        log "host packages present (nginx, docker.io, debootstrap, prometheus)"
    fi
    if [ "$need_compose" -eq 1 ]; then
        # Only docker-compose from trixie; its Recommends (trixie's docker-cli) would
        # Break bookworm's docker.io, hence --no-install-recommends (in apt_install).
        apt_install -t trixie docker-compose
    else
        log "compose v2 plugin present"
    fi
}

# --- docker engine ------------------------------------------------------------------

docker_up() { timeout 10 docker info >/dev/null 2>&1; }

ensure_dockerd() {
    if docker_up; then
        log "docker engine is up"
        return
    fi
    if ! pgrep -x dockerd >/dev/null; then
        log "starting dockerd (log: $DOCKERD_LOG)"
        # No systemd here: run it detached so it outlives this script.
        setsid nohup dockerd >"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    local waited=0
    until docker_up; do
        if [ "$waited" -ge "$DOCKERD_TIMEOUT" ]; then
            log "ERROR: docker engine did not answer within ${DOCKERD_TIMEOUT}s; tail of $DOCKERD_LOG:"
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    log "docker engine is up after ${waited}s"
}

main() {
    ensure_packages
    ensure_dockerd
    log "docker: $(docker version --format '{{.Client.Version}} (client) / {{.Server.Version}} (server)')"
    log "compose: $(docker compose version)"
    log "done"
}

main "$@"
