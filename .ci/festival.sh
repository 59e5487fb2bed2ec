#!/usr/bin/env bash
# CI: Festival, its two American English voices (kal_diphone, cmu_us_slt_arctic_hts) and the
# public-domain text they read (dict-devil: Bierce's "The Devil's Dictionary") for
# tests/research/test_timit_synth.py and `python -m research.timit.synth`; the test skips with a
# reason where they are missing. Installs Debian's packages when needed; never fails CI.
set -uo pipefail
# shellcheck source=.ci/apt.sh
. "$(dirname "$0")/apt.sh"

have() {
  command -v festival >/dev/null 2>&1 &&
    [ -d /usr/share/festival/voices/english/kal_diphone ] &&
    [ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] &&
    [ -f /usr/share/dictd/devil.dict.dz ]
}

have || apt_install festival.sh "the Festival synthesis tests" \
  festival festvox-kallpc16k festvox-us-slt-hts dict-devil
exit 0
