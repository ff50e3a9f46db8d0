#!/usr/bin/env sh
# The AsyncAPI project's own parser and its Avro schema parser (npm), for the test that validates
# docs/asyncapi.yaml: installed into tests/docs/asyncapi/node_modules at the versions of the committed
# package-lock.json. Node.js (18 or later) and npm come from Debian when the machine has none.
set -eu
dir=tests/docs/asyncapi
if ! command -v npm >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q nodejs npm
fi
# npm ci starts from a clean node_modules, so it runs only when the installed tree differs from the lock file.
if ! (cd "$dir" && npm ls --all --silent >/dev/null 2>&1); then
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
