#!/usr/bin/env bash
# dev/sigv4-botocore.sh VECTOR.json...: signs v4 request vectors with botocore (see
# dev/sigv4-botocore.py). botocore is installed from PyPI into a virtual environment under
# target/ on first use, at a pinned version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BOTOCORE_VERSION=1.44.5
venv=target/botocore-venv
if ! "$venv/bin/python" -c "import botocore, sys; sys.exit(botocore.__version__ != '$BOTOCORE_VERSION')" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "botocore==$BOTOCORE_VERSION" >&2
fi
exec "$venv/bin/python" dev/sigv4-botocore.py "$@"
