#!/usr/bin/env bash
# Build influxd (InfluxDB OSS 2.x) from the Go module proxy and crates.io only: the official image cannot
# be pulled here, and the tests and the stand-in image need the real server. The binary is cached per
# version and recipe, so a second run costs a second.
#
#   scripts/build-influxd.sh            build (or reuse) and print the directory holding bin/influxd
#   INFLUXDB_VERSION=v2.7.12            the release to build (keep it equal to influxdb_image's tag)
#   BLOOMBERG_TOOLS_CACHE=~/.cache/...  where the cache lives
#
# What differs from the official build: no UI assets (the `assets` tag is left out, the HTTP API is all
# we use), the `influx` CLI is not built (github.com/influxdata/influx-cli is not served by the module
# proxy), and libflux is compiled with the installed stable Rust instead of the 1.72 pinned in flux's
# rust-toolchain file (rustup cannot fetch toolchains from here), with lints capped at warnings.
set -euo pipefail
source "$(dirname "$0")/progress.sh"

version=${INFLUXDB_VERSION:-v2.7.12}
cache=${BLOOMBERG_TOOLS_CACHE:-$HOME/.cache/bloomberg-tools}
dest="$cache/influxdb-${version#v}"
module=github.com/influxdata/influxdb/v2

export GOTOOLCHAIN=local GOFLAGS=-mod=mod GO111MODULE=on CGO_ENABLED=1 RUSTUP_TOOLCHAIN=stable
export GOPROXY=${GOPROXY:-https://proxy.golang.org}

for tool in go cargo pkg-config cc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build-influxd: '$tool' is missing; install Go, Rust (rustup), pkg-config and a C compiler" >&2
    exit 1
  fi
done

# Changing this script, the version or a toolchain invalidates the cache.
recipe=$({
  cat "$0"
  echo "$version"
  go version
  cargo --version
} | sha256sum | cut -c1-16)

cached() { [ -x "$dest/bin/influxd" ] && [ "$(cat "$dest/.recipe" 2>/dev/null)" = "$recipe" ]; }

start=$(date +%s)
mkdir -p "$cache"
# One build at a time per cache; a concurrent caller waits and then reuses what the first one built.
exec 9>"$cache/.influxdb.lock"
flock 9

if cached; then
  echo "build-influxd: cached $dest (recipe $recipe) in $(($(date +%s) - start)) s" >&2
  echo "$dest"
  exit 0
fi

work=$(mktemp -d "$cache/.influxdb-build.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "build-influxd: fetching $module@$version from the module proxy" >&2
src_ro=$(go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cp -r "$src_ro" "$work/influxdb"
chmod -R u+w "$work/influxdb"
cd "$work/influxdb"

# libflux is built by influxdata's pkg-config wrapper from the flux module's source. A writable copy
# referenced by a replace directive keeps cargo's target directory inside $work instead of the shared
# Go build cache, so concurrent or aborted builds cannot leave a half-written tree behind.
flux_ro=$(go mod download -json github.com/influxdata/flux | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
cp -r "$flux_ro" "$work/flux"
chmod -R u+w "$work/flux"
go mod edit -replace "github.com/influxdata/flux=$work/flux"

go build -o "$work/tools/pkg-config" github.com/influxdata/pkg-config
export PKG_CONFIG="$work/tools/pkg-config"

# flux-core builds with `deny(warnings)`, and lints added to Rust since 1.72 (mismatched_lifetime_syntaxes,
# dead_code) make that an error. Capping lints at warnings leaves the code unchanged. RUSTFLAGS would not
# do: with --target (which the wrapper passes) cargo leaves it off build-script dependencies, and flux's
# build script depends on flux-core. Crates from the registry already get cargo's own --cap-lints.
cat >"$work/tools/rustc-cap-lints" <<'WRAPPER'
#!/bin/sh
case " $* " in
  *" --cap-lints"*) exec "$@" ;;
  *) exec "$@" --cap-lints=warn ;;
esac
WRAPPER
chmod +x "$work/tools/rustc-cap-lints"
export RUSTC_WRAPPER="$work/tools/rustc-cap-lints"
mkdir -p "$work/out/bin"
run_logged "build-influxd: compiling influxd $version (libflux with $(cargo --version))" "20-40 min on 2 cores, 2-3 min with Go's and cargo's caches warm" \
  "$cache/influxd-build.log" \
  go build \
  -tags sqlite_foreign_keys,sqlite_json \
  -ldflags "-s -w -X main.version=$version -X main.commit=proxy-${version}" \
  -o "$work/out/bin/influxd" ./cmd/influxd

"$work/out/bin/influxd" version >&2
echo "$recipe" >"$work/out/.recipe"
rm -rf "$dest"
mv "$work/out" "$dest"
echo "build-influxd: built $dest (recipe $recipe) in $(($(date +%s) - start)) s" >&2
echo "$dest"
