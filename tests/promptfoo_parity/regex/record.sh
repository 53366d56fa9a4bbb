#!/bin/sh
# Records promptfoo 0.120.0's own verdicts for this folder's config into promptfoo-output.json.
# Exit code 100 only means that some tests failed, as some are meant to.
cd "$(dirname "$0")" && PROMPTFOO_CONFIG_DIR="$(mktemp -d)" PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1 PROMPTFOO_DISABLE_SHARING=1 npx --yes promptfoo@0.120.0 eval -c promptfooconfig.yaml --no-cache -o promptfoo-output.json
