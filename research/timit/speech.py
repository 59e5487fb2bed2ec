"""Speech features and frame labels computed the way the ml2021spring-hw2 files were made.

The competition's rows are 11 spliced frames of 39 MFCC features; this module turns audio and a
phone segmentation into exactly that, with numpy/scipy only:

- `features(signal, rate)`: resample to 16 kHz, `mfcc` (13 coefficients, c0 included), `deltas`
  twice (39 per frame), per-utterance `cmvn`;
- `splice(frames)`: frames t-5..t+5 side by side, frame-major, edge frames repeated (429
  columns), the layout `competitions.timit.generate` writes and the loader expects;
- `frame_labels(segments, n_frames)`: the class of the phone under each frame's centre, with
  Festival's phone names folded to the 39 TIMIT classes (`PHONE_TO_CLASS`, `CLASSES`).

MFCC recipe (HTK/Kaldi-like): pre-emphasis 0.97 on the whole signal; 25 ms Hamming windows every
10 ms, only whole windows (frame i covers samples i*160 .. i*160+399 at 16 kHz, so its centre is
at i*10 ms + 12.5 ms); power spectrum of a 512-point FFT; 26 triangular mel filters (HTK mel
scale) from 0 Hz to 8 kHz; natural log; orthonormal DCT-II keeping coefficients 0..12 (c0, not
log-energy). No cepstral liftering: it scales each coefficient by a constant, which the
per-utterance normalisation removes anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
from scipy.fft import dct
from scipy.signal import resample_poly

RATE = 16_000  # Hz: the rate features are computed at
WINDOW = 0.025  # s
HOP = 0.010  # s
N_FFT = 512
N_MELS = 26
N_CEPS = 13
PREEMPHASIS = 0.97
DELTA_WIDTH = 2  # frames either side in the delta regression
CONTEXT = 11  # frames per spliced row

# The 39 TIMIT classes of Lee & Hon (1989): silence first (class 0, the most frequent, as in
# competitions.timit.generate), then the other 38 in alphabetical order. The label written for a
# frame is the index into this tuple.
CLASSES: tuple[str, ...] = (
    "sil",
    "aa",
    "ae",
    "ah",
    "aw",
    "ay",
    "b",
    "ch",
    "d",
    "dh",
    "dx",
    "eh",
    "er",
    "ey",
    "f",
    "g",
    "hh",
    "ih",
    "iy",
    "jh",
    "k",
    "l",
    "m",
    "n",
    "ng",
    "ow",
    "oy",
    "p",
    "r",
    "s",
    "sh",
    "t",
    "th",
    "uh",
    "uw",
    "v",
    "w",
    "y",
    "z",
)

# Lee & Hon's folding of TIMIT's 61 phones to 39, applied to Festival's US "radio" phone set
# (the one kal_diphone and cmu_us_slt_arctic_hts both use): ao->aa, ax->ah, axr->er, hv->hh,
# el->l, em->m, en/nx->n, zh->sh; Festival's silences pau, h# and brth (breath) -> sil. TIMIT's
# closures, epi and q do not exist in Festival's output; Festival emits no flaps, so class dx
# stays empty in synthesised data.
_FOLD = {
    "ao": "aa",
    "ax": "ah",
    "axr": "er",
    "hv": "hh",
    "el": "l",
    "em": "m",
    "en": "n",
    "nx": "n",
    "zh": "sh",
    "pau": "sil",
    "h#": "sil",
    "brth": "sil",
}
FESTIVAL_PHONES: tuple[str, ...] = (
    "aa",
    "ae",
    "ah",
    "ao",
    "aw",
    "ax",
    "axr",
    "ay",
    "b",
    "ch",
    "d",
    "dh",
    "dx",
    "eh",
    "el",
    "em",
    "en",
    "er",
    "ey",
    "f",
    "g",
    "hh",
    "hv",
    "ih",
    "iy",
    "jh",
    "k",
    "l",
    "m",
    "n",
    "nx",
    "ng",
    "ow",
    "oy",
    "p",
    "r",
    "s",
    "sh",
    "t",
    "th",
    "uh",
    "uw",
    "v",
    "w",
    "y",
    "z",
    "zh",
    "pau",
    "h#",
    "brth",
)
PHONE_TO_CLASS: dict[str, int] = {
    phone: CLASSES.index(_FOLD.get(phone, phone)) for phone in FESTIVAL_PHONES
}
SILENCE = CLASSES.index("sil")


class UnknownPhoneError(ValueError):
    """A phone name that PHONE_TO_CLASS does not map to a TIMIT class."""


def resample(signal: np.ndarray, rate: float, target: int = RATE) -> np.ndarray:
    """`signal` sampled at `rate` Hz, resampled to `target` Hz (polyphase, anti-aliased).

    `rate` may be a non-integer: playing audio "as if" it were recorded at rate*a scales every
    frequency (pitch and formants) by a and every duration by 1/a.
    """
    ratio = Fraction(target) / Fraction(rate).limit_denominator(1000)
    ratio = ratio.limit_denominator(2000)
    x = np.asarray(signal, dtype=np.float64)
    if ratio == 1:
        return x.copy()
    return resample_poly(x, ratio.numerator, ratio.denominator)


def n_frames(n_samples: int, rate: int = RATE) -> int:
    """How many whole 25 ms windows, 10 ms apart, fit in `n_samples` samples."""
    window, hop = round(WINDOW * rate), round(HOP * rate)
    return 0 if n_samples < window else 1 + (n_samples - window) // hop


def mel_filterbank(
    n_mels: int = N_MELS, n_fft: int = N_FFT, rate: int = RATE, low: float = 0.0
) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular filters equally spaced on the HTK mel scale."""

    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def to_hz(mel):
        return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)

    edges = to_hz(np.linspace(to_mel(low), to_mel(rate / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lo) / (mid - lo)
    falling = (hi - bins) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling))


def mfcc(
    signal: np.ndarray, rate: int = RATE, n_mels: int = N_MELS, n_ceps: int = N_CEPS
) -> np.ndarray:
    """(n_frames, n_ceps) MFCC of a mono signal (see the module docstring for the recipe)."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"mfcc expects a mono signal (1-D array); got shape {x.shape}.")
    window, hop = round(WINDOW * rate), round(HOP * rate)
    n_fft = max(N_FFT, 1 << (window - 1).bit_length())
    count = n_frames(len(x), rate)
    if count == 0:
        return np.zeros((0, n_ceps))
    x = np.append(x[:1], x[1:] - PREEMPHASIS * x[:-1])
    frames = np.lib.stride_tricks.sliding_window_view(x, window)[::hop][:count]
    power = np.abs(np.fft.rfft(frames * np.hamming(window), n_fft)) ** 2 / n_fft
    energies = power @ mel_filterbank(n_mels, n_fft, rate).T
    logs = np.log(np.maximum(energies, np.finfo(np.float64).tiny))
    return dct(logs, type=2, norm="ortho", axis=1)[:, :n_ceps]


def deltas(frames: np.ndarray, width: int = DELTA_WIDTH) -> np.ndarray:
    """Regression deltas over +-width frames, first/last frame repeated:
    d_t = sum_n n (c_{t+n} - c_{t-n}) / (2 sum_n n^2)."""
    frames = np.asarray(frames, dtype=np.float64)
    t = len(frames)
    padded = np.pad(frames, ((width, width), (0, 0)), mode="edge")
    out = np.zeros_like(frames)
    for n in range(1, width + 1):
        out += n * (padded[width + n : width + n + t] - padded[width - n : width - n + t])
    return out / (2 * sum(n * n for n in range(1, width + 1)))


def cmvn(frames: np.ndarray, floor: float = 1e-8) -> np.ndarray:
    """Each column shifted to mean 0 and scaled to variance 1 over the utterance."""
    frames = np.asarray(frames, dtype=np.float64)
    std = frames.std(axis=0)
    return (frames - frames.mean(axis=0)) / np.maximum(std, floor)


def features(signal: np.ndarray, rate: float = RATE) -> np.ndarray:
    """(n_frames, 39) float32: 13 MFCC + deltas + delta-deltas of a 16 kHz version of
    `signal`, normalised per utterance."""
    audio = resample(signal, rate) if rate != RATE else np.asarray(signal, dtype=np.float64)
    static = mfcc(audio)
    d1 = deltas(static)
    full = np.hstack([static, d1, deltas(d1)])
    return cmvn(full).astype(np.float32)


def splice(frames: np.ndarray, context: int = CONTEXT) -> np.ndarray:
    """(T, d) frames -> (T, context*d) rows: row t holds frames t-h..t+h (h = context//2) one
    after the other (columns f*d..f*d+d-1 hold frame t-h+f), edge frames repeated."""
    if context < 1 or context % 2 == 0:
        raise ValueError(f"context must be an odd number >= 1; got {context}.")
    frames = np.asarray(frames)
    t, d = frames.shape
    half = context // 2
    index = np.clip(np.arange(t)[:, None] + np.arange(-half, half + 1)[None, :], 0, t - 1)
    return frames[index].reshape(t, context * d)


def phone_class(phone: str) -> int:
    """The TIMIT class index of one Festival phone name."""
    try:
        return PHONE_TO_CLASS[phone]
    except KeyError:
        raise UnknownPhoneError(
            f"Festival phone {phone!r} has no TIMIT class; add it to PHONE_TO_CLASS in "
            "research/timit/speech.py (known: " + " ".join(sorted(PHONE_TO_CLASS)) + ")."
        ) from None


def frame_labels(
    segments: Sequence[tuple[float, str]], n_frames: int, hop: float = HOP, window: float = WINDOW
) -> np.ndarray:
    """(n_frames,) class indices: for frame i, the phone whose segment holds its centre
    i*hop + window/2.

    `segments` are (end time in seconds, phone) in order, as Festival's Segment relation gives
    them; a segment runs from the previous end (0 for the first) to its own end. Centres after
    the last end take the last phone (Festival's audio can run a few ms past it).
    """
    if not segments:
        raise ValueError("frame_labels needs at least one segment.")
    ends = np.array([end for end, _ in segments], dtype=np.float64)
    if np.any(np.diff(ends) < 0):
        raise ValueError("segment end times must not decrease.")
    classes = np.array([phone_class(phone) for _, phone in segments], dtype=np.int64)
    centres = np.arange(n_frames) * hop + window / 2
    index = np.minimum(np.searchsorted(ends, centres, side="left"), len(ends) - 1)
    return classes[index]


def median_f0(signal: np.ndarray, rate: int = RATE, low: float = 60.0, high: float = 400.0):
    """A rough median pitch (Hz) of the voiced 40 ms frames, by autocorrelation; None when no
    frame looks voiced. For describing speakers, not for features."""
    x = np.asarray(signal, dtype=np.float64)
    size, hop = round(0.040 * rate), round(HOP * rate)
    if len(x) < size:
        return None
    frames = np.lib.stride_tricks.sliding_window_view(x, size)[::hop]
    frames = frames - frames.mean(axis=1, keepdims=True)
    power = (frames**2).mean(axis=1)
    frames = frames[power > 0.1 * np.median(power[power > 0])] if np.any(power > 0) else frames[:0]
    if len(frames) == 0:
        return None
    spectrum = np.fft.rfft(frames, 2 * size)
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[:, :size]
    lo, hi = int(rate / high), min(int(rate / low), size - 1)
    lag = lo + np.argmax(ac[:, lo:hi], axis=1)
    voiced = ac[np.arange(len(ac)), lag] > 0.5 * ac[:, 0]
    if not voiced.any():
        return None
    return float(np.median(rate / lag[voiced]))
