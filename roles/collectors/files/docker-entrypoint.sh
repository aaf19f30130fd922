#!/bin/sh
# The services read their settings from the environment only; secrets reach the container as files
# (Compose secrets under /run/secrets). As in the official images' entrypoints, each VAR_FILE becomes
# VAR here (e.g. MARKETDASH_API_JWT_SECRET_FILE, PGPASSWORD_FILE for libpq), then the command runs.
set -eu

for file_var in $(env | sed -n 's/^\([A-Z][A-Z0-9_]*\)_FILE=.*/\1_FILE/p'); do
  var=${file_var%_FILE}
  path=$(printenv "$file_var")
  if [ -n "$(printenv "$var" || true)" ]; then
    echo "marketdash-entrypoint: both $var and $file_var are set; keep one" >&2
    exit 1
  fi
  if [ ! -r "$path" ]; then
    echo "marketdash-entrypoint: $file_var=$path is not a readable file" >&2
    exit 1
  fi
  value=$(cat "$path")
  export "$var=$value"
  unset "$file_var"
done

exec "$@"
