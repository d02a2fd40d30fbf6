# shellcheck shell=bash
# Helpers shared by scripts/test and scripts/check-manifests (sourced, not run).
# Tools the scripts install go under .tools/ (gitignored): a Python venv for the broker, the
# acceptance client and the manifest validators.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"

say() { printf '==> %s\n' "$*"; }
die() {
  printf '%s: %s\n' "$(basename "$0")" "$*" >&2
  exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if ((EUID == 0)); then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "needs root (or sudo) to run: $*"
  fi
}

apt_updated=0
# Installs Debian packages (updating the package lists once per run first).
apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* here: no apt-get (install them by hand)"
  say "installing $* (apt)"
  if ((apt_updated == 0)); then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Installs the Debian packages whose named command is missing: need_commands CMD:PACKAGE ...
need_commands() {
  local pair missing=()
  for pair in "$@"; do
    if ! command -v "${pair%%:*}" >/dev/null && [[ " ${missing[*]} " != *" ${pair#*:} "* ]]; then
      missing+=("${pair#*:}")
    fi
  done
  ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# Retries a command every 0.2 s until it succeeds or SECONDS_ pass: wait_until SECONDS_ CMD...
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A loopback port that was free a moment ago (needs ensure_venv first).
free_port() {
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Creates .tools/venv if it is missing or broken.
ensure_venv() {
  [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import pip' 2>/dev/null && return
  need_commands python3:python3
  rm -rf "$VENV"
  mkdir -p "$TOOLS"
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    # Debian's python3 makes venvs only with python3-venv installed.
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv "$VENV"
  fi
}

# Installs a requirements file into .tools/venv unless this exact file was installed already:
# pip_requirements FILE [PIP OPTIONS...]
pip_requirements() {
  local file=$1
  shift
  ensure_venv
  local stamp
  stamp="$VENV/.installed-$(basename "$(dirname "$file")")-$(basename "$file")"
  if [[ -f "$stamp" ]] && [[ "$(sha256sum <"$file")" == "$(cat "$stamp")" ]]; then
    return
  fi
  say "installing ${file#"$ROOT"/} into .tools/venv (pip)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@" -r "$file"
  sha256sum <"$file" >"$stamp"
}
