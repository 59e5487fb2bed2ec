#!/usr/bin/env bash
# CI: Festival, its two American English voices (kal_diphone, cmu_us_slt_arctic_hts) and the
# public-domain text they read (dict-devil: Bierce's "The Devil's Dictionary") for
# tests/test_timit_synth.py and `python -m competitions.timit.synth`; the test skips with a
# reason where they are missing. Installs Debian's packages when needed; never fails CI.
set -uo pipefail

packages="festival festvox-kallpc16k festvox-us-slt-hts dict-devil"
have() {
  command -v festival >/dev/null 2>&1 &&
    [ -d /usr/share/festival/voices/english/kal_diphone ] &&
    [ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] &&
    [ -f /usr/share/dictd/devil.dict.dz ]
}

if have; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "festival.sh: no apt-get here; the Festival synthesis tests will be skipped" >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    echo "festival.sh: not root and no sudo; the Festival synthesis tests will be skipped" >&2
    exit 0
  fi
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086  # $sudo and $packages are word lists
if $sudo apt-get update -qq >/dev/null &&
  $sudo apt-get install -y -qq --no-install-recommends $packages >/dev/null && have; then
  echo "festival.sh: installed $(festival --version 2>/dev/null | head -n1) with $packages"
else
  echo "festival.sh: could not install $packages; the Festival synthesis tests will be skipped" >&2
fi
exit 0
