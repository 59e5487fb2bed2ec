"""Viterbi decoding of long sequences in parallel pieces, with the sequential decoder's answer.

The recurrence runs along time, so one sequence of T rows costs T small steps; TIMIT's test
rows are one sequence of 451,552 and its out-of-fold rows 25 of about 49,000. Here each sequence
is cut into pieces of `piece` rows, decoded all at once (one vectorised step advances every
piece), each with `margin` rows of context on both sides. A piece's decisions are kept only when
they cannot depend on what lies outside its context:

- left: the max-plus product of the transitions and emissions over the left margin has rank
  one, so the scores entering the piece are the same, up to a constant, whatever the scores
  before the margin were (the piece's backpointers are then exactly the sequential ones);
- right: the best paths into every state at the end of the right margin all pass through one
  state at the piece's last row (the survivors have merged), so the future beyond the margin
  cannot change the piece's path.

Pieces that fail a check are decoded again with twice the margin, until the margin covers the
whole sequence, which is the sequential decoder itself. Ties go to the lowest class number.
The steps are torch's fused max-with-index over all pieces at once: on a CPU thread about three
times as fast as the row-by-row loop, and on a GPU (`device`) a few thousand small kernels for
the whole test set.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

PIECE = 8192  # rows decoded by one piece
MARGIN = 64  # rows of context on each side (doubled for pieces whose checks fail)
TOLERANCE = 1e-9  # rank one "up to a constant": relative to the scores' size


@dataclass
class _Piece:
    seq: int
    lo: int  # first row of the context
    start: int  # first row kept
    stop: int  # one past the last row kept
    hi: int  # one past the last row of the context


def viterbi(log_emit: np.ndarray, log_trans: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Most likely class path for (T, K) log emission scores and a (K, K) log transition
    matrix (rows: from, columns: to)."""
    return viterbi_runs([log_emit], log_trans, device=device)[0]


def viterbi_runs(
    emits: list[np.ndarray],
    log_trans: np.ndarray,
    piece: int = PIECE,
    margin: int = MARGIN,
    device: str | torch.device = "cpu",
) -> list[np.ndarray]:
    """The Viterbi path of each (T_i, K) sequence of `emits` (independent sequences)."""
    paths = [np.empty(len(e), dtype=np.int64) for e in emits]
    todo = [
        _Piece(i, max(0, a - margin), a, min(len(e), a + piece), min(len(e), a + piece + margin))
        for i, e in enumerate(emits)
        for a in range(0, len(e), piece)
    ]
    trans_t = torch.as_tensor(np.asarray(log_trans, dtype=np.float64).T.copy(), device=device)
    with _one_thread(trans_t.device):
        while todo:
            failed = _decode(todo, emits, trans_t, paths)
            margin *= 2
            todo = [
                _Piece(p.seq, max(0, p.start - margin), p.start, p.stop,
                       min(len(emits[p.seq]), p.stop + margin))
                for p in failed
            ]  # fmt: skip
    return paths


@contextlib.contextmanager
def _one_thread(device: torch.device):
    """Thousands of small steps: on a CPU one thread, since threads that wait for each other
    at every step cost more than they share (1,000x on a busy 2-core machine)."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _decode(pieces, emits, trans_t: torch.Tensor, paths) -> list[_Piece]:
    """Decode the pieces together; write the rows of those whose checks pass into `paths` and
    return the others. trans_t: the transitions as (to, from)."""
    device, K = trans_t.device, trans_t.shape[0]
    n = len(pieces)
    length = max(p.hi - p.lo for p in pieces)
    E = np.zeros((length, n, K))  # time first: each step reads and writes contiguous rows
    for j, p in enumerate(pieces):
        E[: p.hi - p.lo, j] = emits[p.seq][p.lo : p.hi]
    E = torch.from_numpy(E).to(device)
    ends = torch.tensor([p.hi - p.lo - 1 for p in pieces], device=device)  # last rows
    keep = torch.tensor([p.stop - p.lo - 1 for p in pieces], device=device)  # last kept rows
    back = torch.zeros((length, n, K), dtype=torch.int8 if K <= 127 else torch.int32,
                       device=device)  # fmt: skip
    score = E[0].clone()
    final = E[0].clone()
    ending: dict[int, list[int]] = {}
    for j, p in enumerate(pieces):
        ending.setdefault(p.hi - p.lo - 1, []).append(j)
    for t in range(1, length):
        best, back[t] = (score[:, None, :] + trans_t).max(dim=2)  # over the 'from' states
        score = best + E[t]
        if t in ending:
            final[ending[t]] = score[ending[t]]
    rows = torch.arange(n, device=device)
    # every state at each piece's last row, traced back to its last kept row; at a sequence's
    # end only the best final state, where the sequential decoder starts
    at_end = torch.tensor([p.hi == len(emits[p.seq]) for p in pieces], device=device)
    states = torch.where(at_end[:, None], final.argmax(dim=1, keepdim=True),
                         torch.arange(K, device=device)[None, :])  # fmt: skip
    for t in range(length - 1, 0, -1):
        step = ((t <= ends) & (t > keep))[:, None]
        states = torch.where(step, back[t, rows[:, None], states].long(), states)
    merged = (states == states[:, :1]).all(dim=1)
    # the kept rows, traced back from the merged state
    path = torch.zeros((n, length), dtype=torch.long, device=device)
    cur = states[:, 0]
    path[rows, keep] = cur
    for t in range(int(keep.max()), 0, -1):
        step = t <= keep
        cur = torch.where(step, back[t, rows, cur].long(), cur)
        path[:, t - 1] = torch.where(step, cur, path[:, t - 1])
    exact = (merged & _left_exact(pieces, E, trans_t)).cpu().numpy()
    path = path.cpu().numpy()
    for j, p in enumerate(pieces):
        if exact[j]:
            paths[p.seq][p.start : p.stop] = path[j, p.start - p.lo : p.stop - p.lo]
    return [p for j, p in enumerate(pieces) if not exact[j]]


def _left_exact(pieces, E: torch.Tensor, trans_t: torch.Tensor) -> torch.Tensor:
    """Per piece: nothing before its context can change its backpointers: the context starts
    where the sequence does (the sequential decoder's own start), or the left margin's
    max-plus product has rank one."""
    device, K = trans_t.device, trans_t.shape[0]
    ok = torch.tensor([p.lo == p.start or p.lo == 0 for p in pieces], device=device)
    check = torch.nonzero(~ok).flatten()
    if len(check) == 0:
        return ok
    steps = torch.tensor([pieces[j].start - pieces[j].lo for j in check.tolist()], device=device)
    # P[c, i, :]: best scores at the margin's last row of paths that start in state i
    eye = torch.eye(K, dtype=torch.bool, device=device)
    P = torch.where(eye, 0.0, -torch.inf).to(E.dtype)[None] + E[0, check][:, None, :]
    for t in range(1, int(steps.max())):
        nxt = (P[:, :, None, :] + trans_t).amax(dim=3) + E[t, check][:, None, :]
        P = torch.where((steps > t)[:, None, None], nxt, P)
    rel = P - P[:, :1]  # each start state's scores against the first's
    finite = torch.isfinite(rel).all(dim=2).all(dim=1)
    rel = torch.where(torch.isfinite(rel), rel, 0.0)
    spread = (rel.amax(dim=2) - rel.amin(dim=2)).amax(dim=1)
    size = torch.where(torch.isfinite(P), P, 0.0).abs().amax(dim=(1, 2)).clamp(min=1.0)
    ok[check] = finite & (spread <= TOLERANCE * size)
    return ok
