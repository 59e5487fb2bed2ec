"""The one map between a regression target and what the network learns.

    y_model = (y - offset - shift) / scale          y = y_model * scale + shift + offset

`offset` is a raw column the network predicts the change from (COVID: day 2's value), zero when
there is none; `shift` and `scale` standardise the rest, fitted on a fold's training rows
(features.scale_target). Both functions take numpy arrays and torch tensors alike, so the
preprocessor, both engines and the references apply the same arithmetic in the same order.
"""

from __future__ import annotations


def to_model(y, offset, shift, scale):
    """The target in the space the network learns."""
    return (y - offset - shift) / scale


def from_model(z, offset, shift, scale):
    """Model-space values back on the competition's scale."""
    return z * scale + shift + offset
