"""The synthesised TIMIT stand-in: DSP and labelling (always), Festival end to end (when the
voices are installed: .ci/festival.sh)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from competitions.timit import generate as generated
from research.timit import speech, synth

# Every phone kal_diphone and cmu_us_slt_arctic_hts emitted reading all 1,113 sentences the
# default text yields (both voices emit the same 40).
FESTIVAL_EMITS = (
    "aa",
    "ae",
    "ah",
    "ao",
    "aw",
    "ax",
    "ay",
    "b",
    "ch",
    "d",
    "dh",
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
    "pau",
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
)


# ---------------------------------------------------------------- DSP


def test_mfcc_frame_count_and_39_features_per_frame():
    rng = np.random.default_rng(0)
    t = np.arange(16_000) / 16_000
    signal = np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=t.size)
    static = speech.mfcc(signal)
    assert static.shape == (1 + (16_000 - 400) // 160, 13) == (98, 13)
    assert speech.n_frames(399) == 0 and speech.mfcc(signal[:399]).shape == (0, 13)
    full = speech.features(signal)
    assert full.shape == (98, 39) and full.dtype == np.float32
    # the same second of audio at 32 kHz gives the same frames (resampled to 16 kHz first)
    t32 = np.arange(32_000) / 32_000
    assert speech.features(np.sin(2 * np.pi * 220 * t32), 32_000).shape == (98, 39)


def test_mfcc_follows_the_spectrum():
    """A low tone and a high tone differ in the low cepstra; silence-level noise has low c0."""
    t = np.arange(8_000) / 16_000
    low = speech.mfcc(np.sin(2 * np.pi * 300 * t))
    high = speech.mfcc(np.sin(2 * np.pi * 3_000 * t))
    quiet = speech.mfcc(1e-4 * np.random.default_rng(0).normal(size=t.size))
    assert low[:, 1].mean() > high[:, 1].mean() + 1  # c1: spectral tilt
    assert quiet[:, 0].mean() < low[:, 0].mean() - 10


def test_deltas_use_the_regression_formula_with_repeated_edges():
    ramp = np.arange(10.0)[:, None] * np.array([[1.0, -2.0]])
    d = speech.deltas(ramp)
    np.testing.assert_allclose(d[2:-2], np.tile([1.0, -2.0], (6, 1)))
    # first frame: padded c_{-1} = c_{-2} = c_0, so (1*(c1-c0) + 2*(c2-c0)) / 10 = 0.5
    np.testing.assert_allclose(d[0], [0.5, -1.0])
    np.testing.assert_allclose(d[-1], [0.5, -1.0])


def test_cmvn_gives_zero_mean_unit_variance_per_column():
    x = np.random.default_rng(1).normal(loc=[3.0, -7.0, 0.0], scale=[5.0, 0.1, 2.0], size=(300, 3))
    x[:, 2] = 4.0  # a constant column stays finite (zero)
    out = speech.cmvn(x)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:, :2].std(axis=0), 1.0)
    assert np.all(out[:, 2] == 0.0)


def test_splice_is_frame_major_with_repeated_edges():
    frames = np.array([[0, 1], [10, 11], [20, 21], [30, 31]])
    expected = np.array(
        [
            [0, 1, 0, 1, 10, 11],  # t=0: frames -1 (edge: 0), 0, 1
            [0, 1, 10, 11, 20, 21],
            [10, 11, 20, 21, 30, 31],
            [20, 21, 30, 31, 30, 31],  # t=3: frame 4 repeats the last frame
        ]
    )
    np.testing.assert_array_equal(speech.splice(frames, context=3), expected)
    # 11 frames of 39, as in the competition files: the same layout generate.py writes
    x = np.random.default_rng(2).normal(size=(17, 39)).astype(np.float32)
    rows = speech.splice(x)
    assert rows.shape == (17, 429)
    np.testing.assert_array_equal(rows, generated.splice(x))
    np.testing.assert_array_equal(rows[8, 5 * 39 : 6 * 39], x[8])  # centre frame
    np.testing.assert_array_equal(rows[0, :39], x[0])  # t-5 at the start: the first frame
    np.testing.assert_array_equal(rows[16, 10 * 39 :], x[16])
    with pytest.raises(ValueError):
        speech.splice(x, context=4)


def test_frame_labels_take_the_phone_at_the_frame_centre():
    c = speech.PHONE_TO_CLASS
    segments = [(0.05, "pau"), (0.10, "ax"), (0.20, "t")]
    labels = speech.frame_labels(segments, 21)
    # frame i's centre: i*10 ms + 12.5 ms; frames 0-3 end before 50 ms, 4-8 before 100 ms
    expected = [c["pau"]] * 4 + [c["ax"]] * 5 + [c["t"]] * 12  # the last centres run past 0.2
    np.testing.assert_array_equal(labels, expected)
    assert c["ax"] == speech.CLASSES.index("ah")
    with pytest.raises(speech.UnknownPhoneError, match="'qq'.*PHONE_TO_CLASS"):
        speech.frame_labels([(0.1, "pau"), (0.2, "qq")], 5)


def test_the_phone_map_covers_festival_and_folds_to_39_classes():
    assert len(speech.CLASSES) == 39 == len(set(speech.CLASSES))
    assert speech.CLASSES[0] == "sil" == speech.CLASSES[speech.SILENCE]
    assert sorted(speech.CLASSES[1:]) == list(speech.CLASSES[1:])
    assert set(FESTIVAL_EMITS) <= set(speech.PHONE_TO_CLASS)
    assert set(speech.PHONE_TO_CLASS.values()) == set(range(39))  # every class reachable
    name = {p: speech.CLASSES[k] for p, k in speech.PHONE_TO_CLASS.items()}
    folds = {"ao": "aa", "ax": "ah", "axr": "er", "zh": "sh", "en": "n", "nx": "n", "hv": "hh"}
    assert {p: name[p] for p in folds} == folds
    assert name["pau"] == name["h#"] == "sil" and name["iy"] == "iy"


# ---------------------------------------------------------------- text, speakers, command


DICTIONARY = """\
00-database-short
     The Devil's Dictionary

ABSURDITY, n.  A statement or belief manifestly
inconsistent.

ACADEME, n.  An ancient school where morality was taught.

    Hail, high Excess -- especially in wine,
        To thee in worship do I bend the knee

ADMIRATION, n.  Our polite recognition of resemblance.  It costs 2 dollars.

BORE, n.  A person who talks when you wish him to listen, a nuisance of the first
order, and a thing to avoid at _dinner_.
"""


def test_sentences_come_from_prose_without_headwords_or_verse():
    assert synth.extract_sentences(DICTIONARY) == [
        "A statement or belief manifestly inconsistent.",
        "An ancient school where morality was taught.",
        "Our polite recognition of resemblance.",
        # a long sentence: runs of whole clauses of at most 12 words
        "A person who talks when you wish him to listen.",
        "A nuisance of the first order.",
        "And a thing to avoid at dinner.",
    ]


def test_speakers_are_deterministic_balanced_and_read_disjoint_sentences():
    a, b = synth.make_speakers(6, 4, seed=3), synth.make_speakers(6, 4, seed=3)
    assert a == b and a != synth.make_speakers(6, 4, seed=4)
    assert [s.number for s in a] == list(range(10))
    for split, count in (("train", 6), ("test", 4)):
        voices = [s.voice for s in a if s.split == split]
        assert len(voices) == count and voices.count("kal_diphone") == count // 2
    assert all((s.f0_mean is None) == (s.voice != "kal_diphone") for s in a)
    pool = [f"sentence number {i} is here." for i in range(100)]
    scripts = synth.assign_sentences(pool, a, 8, seed=3)
    read = [s for spk in a for s in scripts[spk.number]]
    assert len(read) == len(set(read)) == 80
    # a small pool: train speakers share, test speakers still read their own block
    scripts = synth.assign_sentences(pool[:50], a, 8, seed=3)
    train = {s for spk in a[:6] for s in scripts[spk.number]}
    test = {s for spk in a[6:] for s in scripts[spk.number]}
    assert not train & test and len(test) == 32
    with pytest.raises(synth.SynthError, match="lower --sentences"):
        synth.assign_sentences(pool[:20], a, 8)


def test_missing_festival_is_one_readable_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    assert synth.main([str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: festival is not installed: run .ci/festival.sh (Debian packages festival "
        "festvox-kallpc16k festvox-us-slt-hts)\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_failed_run_leaves_nothing_behind(monkeypatch, tmp_path):
    monkeypatch.setattr(synth, "check_festival", lambda: "festival")
    monkeypatch.setattr(synth, "read_text", lambda path: "")
    monkeypatch.setattr(
        synth, "extract_sentences", lambda text: [f"sentence {i} of the pool." for i in range(9)]
    )

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synth, "synth_speaker", broken)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path / "out", n_train=2, n_test=1, sentences=2)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- Festival end to end


def _festival_ready() -> bool:
    if shutil.which("festival") is None or not synth.DEFAULT_TEXT.is_file():
        return False
    return set(synth.VOICES) <= synth.festival_voices()


needs_festival = pytest.mark.skipif(
    not _festival_ready(), reason="festival not installed (run .ci/festival.sh)"
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "tiny"
    info = synth.generate(out, n_train=2, n_test=1, sentences=2, seed=0)
    return out, info


@needs_festival
def test_a_tiny_run_writes_the_competition_files(tiny):
    from competitions.timit import competition

    out, info = tiny
    folder = out / "timit_11"
    X, X_test = np.load(folder / "train_11.npy"), np.load(folder / "test_11.npy")
    raw = np.load(folder / "train_label_11.npy")
    assert X.dtype == X_test.dtype == np.float32
    assert X.shape[1] == X_test.shape[1] == 429 and len(X) > 300 and len(X_test) > 150
    assert raw.dtype.kind == "U" and len(raw) == len(X)
    labels = raw.astype(int)
    assert labels.min() >= 0 and labels.max() < 39 and (labels == speech.SILENCE).any()
    assert np.isfinite(X).all() and np.isfinite(X_test).all()
    # rows are consecutive frames: neighbours share 10 of 11 frames inside an utterance
    utt = np.load(folder / "train_utterance.npy")
    inside = utt[1:] == utt[:-1]
    np.testing.assert_array_equal(X[1:][inside, : 10 * 39], X[:-1][inside, 39:])
    assert sorted(set(utt.tolist())) == [0, 1, 2, 3]
    # the split is by speaker
    train_spk = np.load(folder / "train_speaker.npy")
    test_spk = np.load(folder / "test_speaker.npy")
    assert len(train_spk) == len(X) and len(test_spk) == len(X_test)
    assert set(train_spk.tolist()) == {0, 1} and set(test_spk.tolist()) == {2}
    assert info["test_sentences_disjoint"]
    # answers and sample submission
    answers = pd.read_csv(out / "answers.csv")
    sample = pd.read_csv(out / "sampleSubmission.csv")
    assert list(answers.columns) == list(sample.columns) == ["Id", "Class"]
    assert len(answers) == len(sample) == len(X_test)
    assert answers["Id"].tolist() == list(range(len(X_test))) and (sample["Class"] == 0).all()
    assert answers["Class"].between(0, 38).all()
    assert "cmu_us_slt_arctic_hts" in (out / "SOURCE.md").read_text()
    assert sum(info["splits"]["train"]["class_counts"]) == len(X)
    # the competition's loader takes the folder as it is
    train, test = competition.load_train(out), competition.load_test(out)
    assert train.X.shape == X.shape and np.array_equal(train.y, labels)
    assert test.X.shape == X_test.shape
    # nothing left beside OUT
    assert [p.name for p in out.parent.iterdir()] == ["tiny"]


@needs_festival
def test_runs_are_deterministic_and_out_is_not_overwritten(tiny, tmp_path):
    out, _ = tiny
    with pytest.raises(synth.SynthError, match="already exists"):
        synth.generate(out, n_train=2, n_test=1, sentences=2)
    again = tmp_path / "again"
    synth.generate(again, n_train=2, n_test=1, sentences=2, seed=0, jobs=1)
    for name in ("train_11.npy", "train_label_11.npy", "test_11.npy", "test_speaker.npy"):
        a, b = np.load(out / "timit_11" / name), np.load(again / "timit_11" / name)
        np.testing.assert_array_equal(a, b)
