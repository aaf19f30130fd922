#!/usr/bin/env bash
# Put the cached influxd into this build context (bin/influxd), building it first if the cache lacks it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$("$here/../../../scripts/build-influxd.sh")
install -d "$here/bin"
install -m 0755 "$dir/bin/influxd" "$here/bin/influxd"
