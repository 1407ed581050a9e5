# Sourced by scripts/test: the browser tests drive Debian's Chromium (Playwright's own browser
# download needs the internet). Installed here when missing; where it cannot be, the browser
# tests skip saying so (or fail under CI=true).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing chromium (Debian package) for the browser tests"
    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1; } || echo "could not install chromium" >&2
  elif command -v sudo >/dev/null 2>&1; then
    echo "== installing chromium (Debian package) for the browser tests"
    sudo apt-get install -y -q chromium >/dev/null 2>&1 || echo "could not install chromium" >&2
  fi
fi
