"""TIMIT-like arrays at any size, with the structure of the real ml2021spring-hw2 files.

The real features are not reachable from our machines, so tests and benchmarks use this
generator. What it reproduces, and why it matters:

- utterances of a few hundred frames, each starting and ending in silence;
- phones that last several frames (silence longer), drawn from a bigram model with skewed class
  frequencies (silence the most common class), so label sequences have the temporal structure
  that smoothing and Viterbi decoding exploit;
- 39-dim frame vectors (like 13 MFCC + deltas) whose class-dependent mean is blurred at phone
  boundaries (coarticulation) and buried in speaker offsets and correlated noise: learnable,
  but a single frame is ambiguous and context helps;
- rows spliced from 11 consecutive frames (t-5..t+5, edge frames repeated at utterance ends),
  laid out frame-major (columns f*39..f*39+38 hold frame t-5+f), exactly as the real features:
  neighbouring rows share 10 of their 11 frames, which is why shuffled folds leak.

Files: timit_11/train_11.npy (float32), timit_11/train_label_11.npy (strings '0'..'38'),
timit_11/test_11.npy; written through memory maps, utterance by utterance, so a full-size set
(1,229,932 + 451,552 rows, 2.9 GB) never sits in RAM.

    python -m competitions.timit.generate data/timit-generated --size full
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import lfilter

N_CLASSES = 39
N_MFCC = 39
CONTEXT = 11
SILENCE = 0  # the most frequent class
FULL_TRAIN_ROWS = 1_229_932
FULL_TEST_ROWS = 451_552


@dataclass(frozen=True)
class Language:
    """The fixed 'phonetics' every split shares: class means, bigrams, durations."""

    means: np.ndarray  # (39, 39) class mean vectors
    transitions: np.ndarray  # (39, 39) bigram probabilities, zero diagonal
    durations: np.ndarray  # (39,) mean duration in frames
    frequencies: np.ndarray  # (39,) unigram frequencies the bigrams lean towards


def make_language(seed: int = 0) -> Language:
    rng = np.random.default_rng(seed)
    # Zipf-like phone frequencies; silence is the most common class.
    freq = 1.0 / (np.arange(N_CLASSES) + 2.0) ** 0.9
    freq[SILENCE] = freq.max() * 1.5
    freq /= freq.sum()
    # Each phone favours a handful of successors, mixed with the unigram frequencies.
    transitions = np.empty((N_CLASSES, N_CLASSES))
    for c in range(N_CLASSES):
        favoured = rng.dirichlet(np.full(N_CLASSES, 0.15))
        row = 0.6 * favoured + 0.4 * freq
        row[c] = 0.0
        transitions[c] = row / row.sum()
    # Class means: a few shared directions plus class-specific parts, so some phones are
    # close to each other (confusable) and some are far apart.
    shared = rng.normal(size=(6, N_MFCC))
    means = (
        rng.normal(size=(N_CLASSES, 6)) @ shared * 0.35
        + rng.normal(size=(N_CLASSES, N_MFCC)) * 0.55
    )
    means[SILENCE] *= 0.3
    durations = rng.uniform(3.0, 11.0, N_CLASSES)
    durations[SILENCE] = 16.0
    return Language(means, transitions, durations, freq)


def _utterance(lang: Language, rng: np.random.Generator, length: int, noise: float):
    """One utterance: labels (T,) and frame vectors (T, 39)."""
    labels = np.empty(length, dtype=np.int64)
    t, phone = 0, SILENCE  # utterances start in silence...
    while t < length:
        dur = max(1, round(rng.gamma(4.0, lang.durations[phone] / 4.0)))
        labels[t : t + dur] = phone
        t += dur
        phone = rng.choice(N_CLASSES, p=lang.transitions[phone])
    tail = min(length // 4, max(1, round(rng.gamma(4.0, lang.durations[SILENCE] / 4.0))))
    labels[length - tail :] = SILENCE  # ...and end in it
    target = lang.means[labels]
    # Coarticulation: the trajectory moves smoothly between phone targets.
    kernel = np.array([0.1, 0.2, 0.4, 0.2, 0.1])
    padded = np.pad(target, ((2, 2), (0, 0)), mode="edge")
    smooth = sum(w * padded[i : i + length] for i, w in enumerate(kernel))
    speaker = rng.normal(scale=0.35, size=N_MFCC)
    # AR(1) noise: correlated over neighbouring frames, like real spectral noise.
    eps = lfilter([1.0], [1.0, -0.6], rng.normal(scale=noise, size=(length, N_MFCC)), axis=0)
    # scaled to about unit variance, like mean/variance-normalised MFCCs
    scale = np.sqrt(lang.means.var(axis=0).mean() + 0.35**2 + noise**2 / (1 - 0.6**2))
    frames = ((smooth + speaker + eps) / scale).astype(np.float32)
    return labels, frames


def splice(frames: np.ndarray, context: int = CONTEXT) -> np.ndarray:
    """(T, 39) frames -> (T, context*39) rows of frames t-h..t+h, edges repeated."""
    half = context // 2
    padded = np.pad(frames, ((half, half), (0, 0)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (context, frames.shape[1]))
    return windows.reshape(len(frames), context * frames.shape[1])


def write_split(
    path_x: Path,
    path_y: Path | None,
    rows: int,
    lang: Language,
    rng: np.random.Generator,
    noise: float,
    lengths: tuple[int, int] = (150, 450),
) -> None:
    path_x.parent.mkdir(parents=True, exist_ok=True)
    X = np.lib.format.open_memmap(
        path_x, mode="w+", dtype=np.float32, shape=(rows, CONTEXT * N_MFCC)
    )
    y = np.empty(rows, dtype=np.int64)
    start = 0
    while start < rows:
        length = min(int(rng.integers(*lengths)), rows - start)
        labels, frames = _utterance(lang, rng, length, noise)
        X[start : start + length] = splice(frames)
        y[start : start + length] = labels
        start += length
    X.flush()
    del X
    if path_y is not None:
        np.save(path_y, y.astype(str))  # the real labels are strings '0'..'38'


def generate(
    out_dir: str | Path,
    train_rows: int = 20_000,
    test_rows: int = 5_000,
    seed: int = 0,
    noise: float = 1.6,
    nested: bool = False,
) -> Path:
    """Write a TIMIT-like competition folder; returns the folder holding the .npy files."""
    folder = Path(out_dir) / "timit_11"
    if nested:
        folder = folder / "timit_11"  # as some archives unpack
    lang = make_language(seed)
    rng = np.random.default_rng(seed + 1)
    write_split(
        folder / "train_11.npy", folder / "train_label_11.npy", train_rows, lang, rng, noise
    )
    write_split(folder / "test_11.npy", None, test_rows, lang, rng, noise)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m competitions.timit.generate",
        description="Write TIMIT-like arrays (timit_11/*.npy) for tests and benchmarks.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--size",
        choices=("small", "full"),
        default="small",
        help="small: 20,000 + 5,000 rows; full: the real 1,229,932 + 451,552",
    )
    parser.add_argument("--train-rows", type=int)
    parser.add_argument("--test-rows", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    full = args.size == "full"
    train = args.train_rows or (FULL_TRAIN_ROWS if full else 20_000)
    test = args.test_rows or (FULL_TEST_ROWS if full else 5_000)
    folder = generate(args.out_dir, train, test, seed=args.seed)
    print(f"wrote {train:,} train and {test:,} test rows to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
