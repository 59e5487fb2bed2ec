#!/usr/bin/env bash
# Sourced by the .ci/ install scripts: apt_install NAME WHAT PACKAGES... installs Debian
# packages for an optional feature, as root or through sudo -n, and never fails CI: where it
# cannot install, it says so on stderr and the tests that need WHAT skip with their reason.
# The caller's `have` function says whether the feature is there afterwards.

apt_install() {
  local name=$1 what=$2
  shift 2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "$name: no apt-get here; $what will be skipped" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! sudo -n true 2>/dev/null; then
      echo "$name: not root and no sudo; $what will be skipped" >&2
      return 0
    fi
    sudo="sudo -n"
  fi
  export DEBIAN_FRONTEND=noninteractive
  if $sudo apt-get update -qq >/dev/null &&
    $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null && have; then
    echo "$name: installed $*"
  else
    echo "$name: could not install $*; $what will be skipped" >&2
  fi
  return 0
}
