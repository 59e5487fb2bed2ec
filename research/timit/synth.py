"""A TIMIT stand-in made of real synthesised speech: Festival reads public-domain sentences in
several "speakers", and the audio becomes the competition's 11 x 39 MFCC rows.

    python -m research.timit.synth OUT [--speakers 16] [--test-speakers 4] [--sentences 30]
        [--seed 0] [--jobs 2]

Unlike `competitions.timit.generate` (random vectors with TIMIT's structure), these frames have
formants, coarticulation, pauses, speaker and channel variation, so models and post-processing
(smoothing, Viterbi) can be tuned on something that behaves like speech. OUT gets exactly the
competition's files, plus a few for analysis:

- timit_11/train_11.npy, timit_11/test_11.npy: float32 (rows, 429), rows are consecutive frames,
  utterance after utterance, speaker after speaker (features: `research.timit.speech`);
- timit_11/train_label_11.npy: the class of each train row as a string '0'..'38' (like the real
  file; class names in `speech.CLASSES`, silence is 0);
- answers.csv (Id,Class: the test labels), sampleSubmission.csv (Id,Class all 0);
- timit_11/{train,test}_speaker.npy, {train,test}_utterance.npy: speaker number and utterance
  number (counted within the split) of every row;
- SOURCE.md (how the data was made, speakers, class frequencies) and synth.json (the same
  for programs, with every utterance's text and rows).

Speakers: each is one of Festival's two American English voices (kal_diphone, a male diphone
voice at 16 kHz; cmu_us_slt_arctic_hts, a female HMM voice at 32 kHz) with its own speaking
rate, pitch, vocal-tract "length" and background noise, all drawn from --seed:

- rate: a duration factor (1.2 = 20 % slower): Festival's Duration_Stretch for kal_diphone (its
  own default 1.1 times the factor), the HTS engine's speed "-r" (1 / factor) for slt, the only
  engine setting Festival passes on for HTS voices;
- pitch: kal_diphone's intonation targets (int_lr_params target_f0_mean / target_f0_std); the
  HTS voice has no pitch control in Festival, so its pitch varies through the warp only;
- warp: the audio is resampled as if it had been recorded at rate x warp, which scales pitch and
  formants by `warp` (like a shorter or longer vocal tract) and durations by 1 / warp, for both
  voices; phone end times are scaled with it;
- noise: white Gaussian noise at a per-speaker SNR (relative to the utterance's mean power),
  seeded per utterance.

Train and test speakers are different speakers (drawn separately; the test set is split by
speaker, as TIMIT's is), and read different sentences while the text has enough of them.

Sentences: prose of Ambrose Bierce's "The Devil's Dictionary" (1911, public domain), from Debian's
dict-devil package (/usr/share/dictd/devil.dict.dz): whole sentences, or runs of whole clauses
of long ones, of 5-12 words and 25-55 characters (about 2-4 s of speech); verse, quotations set
apart and anything with digits or symbols are left out. --text takes another plain-text file.

Needs Festival, the two voices and dict-devil (`.ci/festival.sh` installs them on Debian).
Synthesis takes about 0.015 s per sentence for kal_diphone and 0.1 s for the HTS voice, features
about 0.1 s more; the measuring set (about 112,000 train and 27,000 test rows) takes under a
minute on two cores:

    python -m research.timit.synth /work/data/timit-speech --speakers 16 --test-speakers 4 \
        --sentences 23 --seed 0
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import wavfile

from pipeline.io import write_csv
from pipeline.run.folder import move_in, sibling
from research.timit import speech

VOICES = ("kal_diphone", "cmu_us_slt_arctic_hts")
DEFAULT_TEXT = Path("/usr/share/dictd/devil.dict.dz")
TEXT_NAME = 'Ambrose Bierce, "The Devil\'s Dictionary" (1911; public domain, copyright expired)'
INSTALL_HINT = (
    "run .ci/festival.sh (Debian packages festival festvox-kallpc16k festvox-us-slt-hts)"
)
KAL_STRETCH = 1.1  # kal_diphone's own Duration_Stretch
WORDS = (5, 12)  # words per sentence
CHARACTERS = (25, 55)  # characters per sentence: about 2-4 s of speech
WARP = (0.86, 1.12)
WARP_STEP = 0.005  # warps are multiples of this, so resampling ratios stay small fractions
RATE = (0.85, 1.2)
KAL_F0 = (85, 150)  # Hz
SNR_DB = (15.0, 40.0)


class SynthError(RuntimeError):
    """Something the user can fix (a missing program or file, a bad argument): one line."""


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a Festival voice read with its own rate, pitch, warp and noise."""

    number: int  # train speakers first, then test speakers
    split: str  # "train" or "test"
    voice: str
    rate: float  # duration factor: > 1 speaks slower
    warp: float  # frequency scale of the audio (pitch and formants); durations scale by 1/warp
    snr_db: float
    f0_mean: int | None = None  # kal_diphone's intonation target (Hz); None: the voice's own
    f0_std: int | None = None

    def describe(self) -> str:
        pitch = f"f0 target {self.f0_mean} Hz" if self.f0_mean else "own f0"
        return (
            f"{self.voice}, {pitch}, warp {self.warp:.3f}, rate {self.rate:.2f}, "
            f"SNR {self.snr_db:.1f} dB"
        )


@dataclass
class Utterance:
    speaker: int
    text: str
    frames: int = 0
    first_row: int = 0  # filled in when the split is assembled


@dataclass
class SpeakerAudio:
    """Everything one speaker produced: spliced rows, labels, and per-utterance facts."""

    speaker: Speaker
    rows: np.ndarray  # (frames, 429) float32
    labels: np.ndarray  # (frames,) int
    utterances: list[Utterance] = field(default_factory=list)
    f0: float | None = None  # median measured pitch (Hz) over the speaker's utterances
    seconds: float = 0.0  # wall time for synthesis + features


# ---------------------------------------------------------------- speakers and sentences


def make_speakers(n_train: int, n_test: int, seed: int = 0) -> list[Speaker]:
    """Train speakers 0..n_train-1, then test speakers; each split alternates the two voices
    (in an order shuffled by the seed) so both splits hold both voices."""
    rng = np.random.default_rng(seed)
    speakers: list[Speaker] = []
    for split, count in (("train", n_train), ("test", n_test)):
        voices = [VOICES[i % len(VOICES)] for i in range(count)]
        rng.shuffle(voices)
        for voice in voices:
            warp = round(rng.uniform(*WARP) / WARP_STEP) * WARP_STEP
            rate = float(rng.uniform(*RATE))
            snr = float(rng.uniform(*SNR_DB))
            f0 = int(rng.integers(KAL_F0[0], KAL_F0[1] + 1))
            spread = float(rng.uniform(0.10, 0.20))
            kal = voice == "kal_diphone"
            speakers.append(
                Speaker(
                    number=len(speakers),
                    split=split,
                    voice=voice,
                    rate=round(rate, 2),
                    warp=round(warp, 3),
                    snr_db=round(snr, 1),
                    f0_mean=f0 if kal else None,
                    f0_std=max(1, round(f0 * spread)) if kal else None,
                )
            )
    return speakers


def read_text(path: Path) -> str:
    """A text file, gzip/dictzip-compressed or not."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        hint = " (Debian package dict-devil: run .ci/festival.sh)" if path == DEFAULT_TEXT else ""
        raise SynthError(f"the sentence source {path} does not exist{hint}.") from None
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


_HEADWORD = re.compile(r"^[A-Z][A-Z' .-]*,\s*(?:[a-z]+\.\s*)*")
_ALLOWED = re.compile(r"[A-Za-z ,.'!?;:-]+")


def _pieces(sentence: str) -> list[str]:
    """The sentence if it has 5-12 words, else runs of its whole clauses that do."""
    lo, hi = WORDS
    if len(sentence.split()) <= hi:
        return [sentence]
    out, run = [], []
    for clause in re.split(r"(?<=,)\s+", sentence):
        if run and len(" ".join(run + [clause]).split()) > hi:
            out.append(" ".join(run))
            run = []
        run.append(clause)
    out.append(" ".join(run))
    return out


def extract_sentences(text: str) -> list[str]:
    """Speakable sentences of 5-12 words and 25-55 characters, in text order, without repeats.

    Prose paragraphs only (a paragraph with indented lines after its first is verse or a set-off
    quotation); a Devil's Dictionary headword ("EXCESS, n.") is dropped; "--" becomes a comma.
    """
    found: dict[str, None] = {}
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line for line in paragraph.split("\n") if line.strip()]
        if not lines or any(line[:1].isspace() for line in lines[1:]):
            continue
        if lines[0].startswith(("00-", "http")):  # dictd's own header entries
            continue
        prose = " ".join(line.strip() for line in lines)
        prose = _HEADWORD.sub("", prose).replace("_", "").replace("--", ",").replace('"', "")
        for sentence in re.split(r"(?<=[.!?;:])\s+", prose):
            if not _ALLOWED.fullmatch(sentence.strip() or "#"):
                continue
            for piece in _pieces(sentence.strip()):
                piece = piece.strip(" ,;:-")
                if not piece:
                    continue
                if piece[-1] not in ".!?":
                    piece += "."
                piece = piece[0].upper() + piece[1:]
                words = len(piece.split())
                if WORDS[0] <= words <= WORDS[1] and CHARACTERS[0] <= len(piece) <= CHARACTERS[1]:
                    found[piece] = None
    return list(found)


def assign_sentences(
    pool: Sequence[str], speakers: Sequence[Speaker], per_speaker: int, seed: int = 0
) -> dict[int, list[str]]:
    """Sentences for every speaker: all different while the pool allows; otherwise test speakers
    keep their own block and train speakers share (overlap within train only)."""
    order = list(pool)
    np.random.default_rng([seed, 1]).shuffle(order)
    test = [s for s in speakers if s.split == "test"]
    train = [s for s in speakers if s.split == "train"]
    need_test = len(test) * per_speaker
    if need_test + (per_speaker if train else 0) > len(order):
        raise SynthError(
            f"the text has {len(order):,} usable sentences; {len(test)} test speakers x "
            f"{per_speaker} sentences plus one train speaker's need more: lower --sentences."
        )
    out: dict[int, list[str]] = {}
    for i, spk in enumerate(test):
        out[spk.number] = order[i * per_speaker : (i + 1) * per_speaker]
    rest = order[need_test:]
    for i, spk in enumerate(train):
        start = i * per_speaker
        out[spk.number] = [rest[(start + j) % len(rest)] for j in range(per_speaker)]
    return out


# ---------------------------------------------------------------- Festival


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def festival_script(speaker: Speaker, sentences: Sequence[str]) -> str:
    """The Scheme one Festival process runs for a speaker: u000.wav/u000.segs, ... in its cwd."""
    lines = [f"(voice_{speaker.voice})"]
    if speaker.voice == "kal_diphone":
        lines.append(f"(Parameter.set 'Duration_Stretch {KAL_STRETCH * speaker.rate:.4f})")
        lines.append(
            f"(set! int_lr_params (list '(target_f0_mean {speaker.f0_mean}) "
            f"'(target_f0_std {speaker.f0_std}) (assoc 'model_f0_mean int_lr_params) "
            "(assoc 'model_f0_std int_lr_params)))"
        )
    else:  # HTS voices: Festival passes only the speed on to the engine
        speed = 1.0 / speaker.rate
        lines.append(f'(set! hts_engine_params (append hts_engine_params \'(("-r" {speed:.4f}))))')
    for i, text in enumerate(sentences):
        lines.append(f"(set! utt (utt.synth (Utterance Text {_scheme_string(text)})))")
        lines.append(f'(utt.save.wave utt "u{i:03d}.wav" \'riff)')
        lines.append(f'(utt.save.segs utt "u{i:03d}.segs")')
    return "\n".join(lines) + "\n"


def read_segs(path: Path) -> list[tuple[float, str]]:
    """(end time, phone) pairs of a Festival .segs file (an xlabel file: header, '#', then
    'end colour name' lines)."""
    segments, body = [], False
    for line in path.read_text().splitlines():
        if not body:
            body = line.strip() == "#"
            continue
        parts = line.split()
        if len(parts) >= 3:
            segments.append((float(parts[0]), parts[2]))
    return segments


def festival_voices(festival: str = "festival") -> set[str]:
    """The voices this Festival installation offers."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "voices.scm"
        script.write_text("(print (voice.list))\n")
        done = subprocess.run(
            [festival, "-b", str(script)], capture_output=True, text=True, timeout=60
        )
    return set(re.findall(r"[A-Za-z0-9_]+", done.stdout))


def check_festival() -> str:
    """The festival program, or a SynthError saying how to install what is missing."""
    festival = shutil.which("festival")
    if festival is None:
        raise SynthError(f"festival is not installed: {INSTALL_HINT}")
    missing = [v for v in VOICES if v not in festival_voices(festival)]
    if missing:
        raise SynthError(
            f"festival voice {' and '.join(missing)} is not installed: {INSTALL_HINT}"
        )
    return festival


class _Processes:
    """The Festival processes running now, so an interrupted run can stop them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen] = set()
        self.stopping = False

    def run(self, args: list[str], cwd: Path) -> tuple[int, str]:
        with self._lock:
            if self.stopping:
                raise SynthError("stopped")
            proc = subprocess.Popen(
                args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            self._running.add(proc)
        try:
            output, _ = proc.communicate()
        finally:
            with self._lock:
                self._running.discard(proc)
        return proc.returncode, output

    def stop(self) -> None:
        with self._lock:
            self.stopping = True
            for proc in self._running:
                proc.kill()


# ---------------------------------------------------------------- audio to rows


def utterance_rows(
    wave: np.ndarray,
    rate: int,
    segments: Sequence[tuple[float, str]],
    speaker: Speaker,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(rows (T, 429) float32, labels (T,), median f0) of one synthesised utterance."""
    audio = wave.astype(np.float64) / 32768.0
    audio = speech.resample(audio, rate * speaker.warp)  # now 16 kHz, frequencies x warp
    f0 = speech.median_f0(audio)
    power = float(np.mean(audio**2)) if len(audio) else 0.0
    noise = np.sqrt(max(power, 1e-12) / 10.0 ** (speaker.snr_db / 10.0))
    audio = audio + rng.normal(0.0, noise, len(audio))
    frames = speech.features(audio)
    ends = [(end / speaker.warp, phone) for end, phone in segments]
    labels = speech.frame_labels(ends, len(frames))
    return speech.splice(frames), labels, f0


def synth_speaker(
    speaker: Speaker,
    sentences: Sequence[str],
    seed: int,
    festival: str,
    processes: _Processes,
) -> SpeakerAudio:
    """Synthesise one speaker's sentences in one Festival process and turn them into rows."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"timit-synth-{speaker.number}-") as tmp:
        work = Path(tmp)
        (work / "speaker.scm").write_text(festival_script(speaker, sentences))
        code, output = processes.run([festival, "-b", "speaker.scm"], cwd=work)
        if processes.stopping:
            raise SynthError("stopped")
        rows, labels, utterances, pitches = [], [], [], []
        for i, text in enumerate(sentences):
            wav, segs = work / f"u{i:03d}.wav", work / f"u{i:03d}.segs"
            if code != 0 or not wav.is_file() or not segs.is_file():
                tail = " ".join(output.strip().splitlines()[-3:])
                raise SynthError(
                    f"festival (exit {code}) produced no audio for speaker {speaker.number} "
                    f"({speaker.voice}), sentence {text!r}: {tail or 'no output'}"
                )
            rate, wave = wavfile.read(wav)
            rng = np.random.default_rng([seed, speaker.number, i])
            x, y, f0 = utterance_rows(wave, rate, read_segs(segs), speaker, rng)
            rows.append(x)
            labels.append(y)
            utterances.append(Utterance(speaker=speaker.number, text=text, frames=len(y)))
            if f0 is not None:
                pitches.append(f0)
    return SpeakerAudio(
        speaker=speaker,
        rows=np.concatenate(rows).astype(np.float32, copy=False),
        labels=np.concatenate(labels),
        utterances=utterances,
        f0=float(np.median(pitches)) if pitches else None,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------- output


def _class_table(counts: dict[str, np.ndarray]) -> list[str]:
    names = list(counts)
    lines = [
        "| class | name | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    totals = {n: max(1, int(c.sum())) for n, c in counts.items()}
    for k, name in enumerate(speech.CLASSES):
        cells = [f"{int(counts[n][k]):,} ({100 * counts[n][k] / totals[n]:.1f} %)" for n in names]
        lines.append(f"| {k} | {name} | " + " | ".join(cells) + " |")
    return lines


def _source_md(info: dict) -> str:
    speakers = info["speakers"]
    lines = [
        "# Synthesised TIMIT stand-in",
        "",
        "Made by `research/timit/synth.py` (features: `research/timit/speech.py`):",
        "",
        f"    {info['command']}",
        "",
        f"Festival: {info['festival_version']}. Took {info['seconds']:.0f} s.",
        "",
        f"Sentences: {TEXT_NAME}, from {info['text']}; {info['sentence_pool']:,} usable "
        f"sentences of {WORDS[0]}-{WORDS[1]} words and {CHARACTERS[0]}-{CHARACTERS[1]} "
        "characters, shuffled by the seed. Test speakers read sentences no train speaker "
        f"reads: {'yes' if info['test_sentences_disjoint'] else 'no'}.",
        "",
        "## Rows",
        "",
        "| split | rows | speakers | utterances | seconds of audio |",
        "|---|---|---|---|---|",
    ]
    for split in ("train", "test"):
        s = info["splits"][split]
        lines.append(
            f"| {split} | {s['rows']:,} | {s['speakers']} | {s['utterances']} | "
            f"{s['rows'] / 100:.0f} |"
        )
    lines += [
        "",
        "Rows are consecutive 10 ms frames, utterance after utterance, speaker after speaker. "
        "timit_11/{train,test}_speaker.npy give each row's speaker number, "
        "{train,test}_utterance.npy its utterance number within the split; synth.json lists "
        "every utterance (speaker, text, first row, rows). answers.csv holds the test labels.",
        "",
        "## Speakers",
        "",
        "Rate: duration factor (> 1 slower). Pitch: kal_diphone's intonation target "
        "(int_lr_params); the HTS voice keeps its own. Warp: the audio resampled as if recorded "
        "at rate x warp, scaling pitch and formants by warp and durations by 1/warp. Noise: "
        "white Gaussian at the SNR shown. Measured f0: median autocorrelation pitch of the "
        "warped audio.",
        "",
        "| speaker | split | voice | f0 target (Hz) | warp | rate | SNR (dB) | measured f0 (Hz) "
        "| rows |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in speakers:
        target = f"{s['f0_mean']} +- {s['f0_std']}" if s["f0_mean"] else "voice's own"
        f0 = f"{s['measured_f0']:.0f}" if s["measured_f0"] else "?"
        lines.append(
            f"| {s['number']} | {s['split']} | {s['voice']} | {target} | {s['warp']:.3f} | "
            f"{s['rate']:.2f} | {s['snr_db']:.1f} | {f0} | {s['rows']:,} |"
        )
    lines += [
        "",
        "## Features and labels",
        "",
        "Audio at 16 kHz; pre-emphasis 0.97; 25 ms Hamming windows every 10 ms (whole windows "
        "only); 512-point FFT power spectrum; 26 HTK-mel filters 0-8 kHz; log; orthonormal "
        "DCT-II, coefficients 0-12 (c0 kept); deltas and delta-deltas (+-2 frames, edges "
        "repeated): 39 per frame; mean and variance normalised per utterance; 11 frames "
        "t-5..t+5 spliced frame-major (edge frames repeated at utterance ends): 429 columns.",
        "",
        "Label of frame i: the phone whose Festival segment holds the frame centre, "
        "i x 10 ms + 12.5 ms, folded to Lee & Hon's 39 TIMIT classes (ao->aa, ax->ah, "
        "axr->er, hv->hh, el->l, em->m, en/nx->n, zh->sh, pau/h#/brth->sil); stored as the "
        "class number, a string '0'..'38'. Festival makes no flaps, so class 10 (dx) is empty.",
        "",
        "## Class frequencies",
        "",
        *_class_table({k: np.array(v["class_counts"]) for k, v in info["splits"].items()}),
        "",
    ]
    return "\n".join(lines)


def _festival_version(festival: str) -> str:
    try:
        done = subprocess.run([festival, "--version"], capture_output=True, text=True, timeout=30)
        line = done.stdout.strip().splitlines()[0]
        return line.split(": ", 1)[-1]  # "/usr/bin/festival: Festival Speech Synthesis ..."
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def _write_split(folder: Path, split: str, parts: list[SpeakerAudio], first_utterance: int = 0):
    rows = np.concatenate([p.rows for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    speakers = np.concatenate([np.full(len(p.labels), p.speaker.number) for p in parts])
    utterances = [u for p in parts for u in p.utterances]
    numbers = np.repeat(np.arange(len(utterances)), [u.frames for u in utterances])
    first = 0
    for u in utterances:
        u.first_row, first = first, first + u.frames
    np.save(folder / f"{split}_11.npy", rows)
    if split == "train":
        np.save(folder / "train_label_11.npy", labels.astype(str))  # '0'..'38', like the real
    np.save(folder / f"{split}_speaker.npy", speakers.astype(np.int64))
    np.save(folder / f"{split}_utterance.npy", numbers.astype(np.int64))
    return rows, labels, utterances


def generate(
    out_dir: str | Path,
    n_train: int = 16,
    n_test: int = 4,
    sentences: int = 30,
    seed: int = 0,
    jobs: int = 2,
    text: str | Path = DEFAULT_TEXT,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    command: str | None = None,
) -> dict:
    """Write the synthesised competition folder `out_dir`; returns what synth.json holds.

    Everything is written into a temporary folder beside `out_dir` and renamed at the end, so
    an interrupted run leaves nothing half-written. An existing `out_dir` is replaced only with
    `force`.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    if n_train < 1 or n_test < 1 or sentences < 1 or jobs < 1:
        raise SynthError("--speakers, --test-speakers, --sentences and --jobs must be >= 1.")
    if out.exists() and not force:
        raise SynthError(
            f"{out} already exists: remove it, choose another folder or pass --force."
        )
    festival = check_festival()
    text = Path(text)
    pool = extract_sentences(read_text(text))
    speakers = make_speakers(n_train, n_test, seed)
    scripts = assign_sentences(pool, speakers, sentences, seed)
    train_sets = {s for spk in speakers if spk.split == "train" for s in scripts[spk.number]}
    test_sets = {s for spk in speakers if spk.split == "test" for s in scripts[spk.number]}
    say = progress or (lambda line: None)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = sibling(out, "partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    processes = _Processes()
    try:
        results: dict[int, SpeakerAudio] = {}
        with ThreadPoolExecutor(max_workers=jobs) as pool_:
            futures = {
                pool_.submit(synth_speaker, spk, scripts[spk.number], seed, festival, processes): (
                    spk
                )
                for spk in speakers
            }
            try:
                for future in as_completed(futures):
                    audio = future.result()
                    results[audio.speaker.number] = audio
                    spk = audio.speaker
                    f0 = f", measured f0 {audio.f0:.0f} Hz" if audio.f0 else ""
                    say(
                        f"[{len(results):>{len(str(len(speakers)))}}/{len(speakers)}] speaker "
                        f"{spk.number} ({spk.split}): {spk.describe()}{f0}: "
                        f"{len(audio.utterances)} sentences, {len(audio.labels):,} frames, "
                        f"{audio.seconds:.1f} s"
                    )
            except BaseException:
                processes.stop()
                for f in futures:
                    f.cancel()
                raise

        folder = tmp / "timit_11"
        folder.mkdir()
        info: dict = {
            "command": command or f"python -m research.timit.synth {shlex.quote(str(out))}",
            "festival_version": _festival_version(festival),
            "seed": seed,
            "text": str(text),
            "text_name": TEXT_NAME if text == DEFAULT_TEXT else text.name,
            "sentence_pool": len(pool),
            "sentences_per_speaker": sentences,
            "test_sentences_disjoint": not (train_sets & test_sets),
            "classes": list(speech.CLASSES),
            "splits": {},
            "speakers": [],
            "utterances": {},
        }
        test_labels = None
        for split in ("train", "test"):
            parts = [results[s.number] for s in speakers if s.split == split]
            rows, labels, utterances = _write_split(folder, split, parts)
            if split == "test":
                test_labels = labels
            info["splits"][split] = {
                "rows": len(rows),
                "speakers": len(parts),
                "utterances": len(utterances),
                "class_counts": np.bincount(labels, minlength=len(speech.CLASSES)).tolist(),
            }
            info["utterances"][split] = [asdict(u) for u in utterances]
        for spk in speakers:
            audio = results[spk.number]
            info["speakers"].append(
                {**asdict(spk), "measured_f0": audio.f0, "rows": len(audio.labels)}
            )
        ids = np.arange(len(test_labels))
        write_csv(tmp / "answers.csv", pd.DataFrame({"Id": ids, "Class": test_labels}))
        write_csv(tmp / "sampleSubmission.csv", pd.DataFrame({"Id": ids, "Class": 0}))
        info["seconds"] = round(time.perf_counter() - started, 1)
        (tmp / "synth.json").write_text(json.dumps(info, indent=1) + "\n")
        (tmp / "SOURCE.md").write_text(_source_md(info))

        move_in(tmp, out)  # force: the old folder goes only once the new one is in place
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m research.timit.synth",
        description="Write a TIMIT-like competition folder from speech synthesised by Festival.",
    )
    parser.add_argument("out_dir", type=Path, help="the folder to create")
    parser.add_argument("--speakers", type=int, default=16, help="train speakers (16)")
    parser.add_argument("--test-speakers", type=int, default=4, help="test speakers (4)")
    parser.add_argument("--sentences", type=int, default=30, help="sentences per speaker (30)")
    parser.add_argument("--seed", type=int, default=0, help="speakers, sentences, noise (0)")
    parser.add_argument("--jobs", type=int, default=2, help="Festival processes at a time (2)")
    parser.add_argument(
        "--text", type=Path, default=DEFAULT_TEXT, help=f"sentence source ({DEFAULT_TEXT})"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing out_dir")
    args = parser.parse_args(argv)
    command = "python -m research.timit.synth " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)
    )
    try:
        info = generate(
            args.out_dir,
            n_train=args.speakers,
            n_test=args.test_speakers,
            sentences=args.sentences,
            seed=args.seed,
            jobs=args.jobs,
            text=args.text,
            force=args.force,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
            command=command,
        )
    except SynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except speech.UnknownPhoneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    train, test = info["splits"]["train"], info["splits"]["test"]
    print(
        f"wrote {train['rows']:,} train rows ({train['speakers']} speakers) and "
        f"{test['rows']:,} test rows ({test['speakers']} speakers) to {args.out_dir} "
        f"in {info['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
