# Sourced by scripts/serve and scripts/test: makes .venv (Python 3.11+) and installs the pinned
# dependencies, again only when requirements.lock or pyproject.toml changed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
pick_python() {
  for candidate in "${PYTHON:-}" python3.12 python3.11 python3.13 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  echo "frontdesk needs Python 3.11 or newer on PATH" >&2; exit 1
}
if [ ! -x "$venv/bin/python" ]; then
  "$(pick_python)" -m venv "$venv"
fi
stamp="$venv/.installed-$(cat "$repo/requirements.lock" "$repo/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/requirements.lock"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$repo"
  rm -f "$venv"/.installed-* && touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
