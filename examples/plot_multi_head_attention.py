"""
============================================
Multi-head attention with the functional API
============================================

:mod:`skattn.functional` has the attention operations of the deep-learning
literature as plain NumPy forward passes. This example builds a small causal
self-attention layer by hand: three heads whose projections are chosen (not
learned) so that each looks for something different in the same sequence, one
for the previous position, one for earlier occurrences of the same token, one for
everything seen so far. Their weight maps show how multi-head attention pools the
same values in several ways at once.
"""

# SPDX-License-Identifier: BSD-3-Clause

# %%
# Positions and tokens
# --------------------
# Each position of a sequence of 24 tokens (drawn from a vocabulary of 4) is a
# vector: the sinusoidal encoding of its position (16 dimensions) next to a one-hot
# encoding of its token (4 dimensions). In the positional encoding, each pair of
# columns is a sine and a cosine of the position at one frequency.
import matplotlib.pyplot as plt
import numpy as np
from scipy.linalg import block_diag

from skattn.functional import (
    masked_softmax,
    multi_head_attention,
    sinusoidal_positional_encoding,
)

n, d_pos, vocabulary = 24, 16, 4
rng = np.random.default_rng(0)
tokens = rng.integers(vocabulary, size=n)
position = sinusoidal_positional_encoding(n, d_pos, base=100.0)
x = np.hstack([position, np.eye(vocabulary)[tokens]])

fig, ax = plt.subplots(figsize=(6, 3))
image = ax.imshow(position.T, cmap="RdBu", aspect="auto")
ax.set(xlabel="position", ylabel="encoding dimension")
fig.colorbar(image, ax=ax)
fig.tight_layout()

# %%
# Three heads
# -----------
# With :math:`H` heads of width :math:`d_h`, head :math:`h` scores query :math:`i`
# against key :math:`j` by :math:`(x_i W_q)_h \cdot (x_j W_k)_h / \sqrt{d_h}`. The
# projections pick what each head compares:
#
# * **previous position**: the sine and cosine at frequency :math:`\omega` of
#   position :math:`p - 1` are a rotation by :math:`-\omega` of those of :math:`p`,
#   so the query rotates its positional encoding back by one step, and matches the
#   key one position earlier (position 0 has no earlier key and attends to itself);
# * **same token**: query and key keep only the token's one-hot encoding;
# * **running average**: a zero query projection scores every key equally.
#
# A causal mask (``mask[i, j] = j <= i``, True where a key takes part) stops each
# position from looking ahead. The values are the inputs themselves.
d_in = x.shape[1]
d_head = d_in
frequencies = 100.0 ** (-np.arange(0, d_pos, 2) / d_pos)
rotate_back = block_diag(
    *[[[np.cos(w), np.sin(w)], [-np.sin(w), np.cos(w)]] for w in frequencies]
)
sharpness = 8.0 * np.sqrt(d_head)  # undoes the 1/sqrt(d_head) and sharpens


def head(position_block, token_block):
    return block_diag(position_block, token_block)


zeros_pos, zeros_tok = np.zeros((d_pos, d_pos)), np.zeros((vocabulary, vocabulary))
eye_pos, eye_tok = np.eye(d_pos), np.eye(vocabulary)
W_q = np.hstack(
    [
        sharpness * head(rotate_back, zeros_tok),  # previous position
        sharpness * head(zeros_pos, eye_tok),  # same token
        head(zeros_pos, zeros_tok),  # running average
    ]
)
W_k = np.hstack(
    [head(eye_pos, zeros_tok), head(zeros_pos, eye_tok), head(zeros_pos, zeros_tok)]
)
W_v = np.hstack([np.eye(d_in)] * 3)
W_o = np.vstack([np.eye(d_in)] * 3) / 3  # the output averages the heads' values
causal = np.tril(np.ones((n, n), dtype=bool))

output, weights = multi_head_attention(
    x, x, x, W_q, W_k, W_v, W_o, num_heads=3, mask=causal, return_weights=True
)
print("output", output.shape, "weights", weights.shape)

titles = ["previous position", "same token", "running average"]
fig, axes = plt.subplots(1, 3, figsize=(12, 4.6), sharey=True, layout="constrained")
for ax, w, title in zip(axes, weights, titles, strict=True):
    ax.imshow(w, cmap="Reds", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels=tokens, fontsize=6)
    ax.set(title=title, xlabel="key position (tick labels: the key's token)")
axes[0].set_ylabel("query position")

# %%
# The "same token" head pools the earlier occurrences of the query's token; its
# weight on a key is :math:`1/c` where :math:`c` is how often the token has
# appeared so far. Pooling the token one-hot encodings with those weights returns
# the query's own token, which this checks:
token_part = slice(d_pos, d_in)
same_token_pooled = weights[1] @ x[:, token_part]
print(
    "same-token head recovers each query's token:",
    np.array_equal(same_token_pooled.argmax(axis=1), tokens),
)

# %%
# Padding with valid lengths
# --------------------------
# Batches of sequences of unequal length are padded to one length, and the padding
# must get no attention. :func:`~skattn.functional.masked_softmax` takes Dive into
# Deep Learning's ``valid_lens``: here a batch of two sequences, of 24 and 15
# valid positions. The second sequence's queries give zero weight to keys 15 to
# 23, and a query whose keys are all masked would get all-zero weights rather than
# NaN.
scores = rng.normal(size=(2, n, n))
padded = masked_softmax(scores, valid_lens=np.array([24, 15]))
print("weight on padding:", padded[1, :, 15:].sum())
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8), sharey=True)
for ax, w, length in zip(axes, padded, [24, 15], strict=True):
    ax.imshow(w, cmap="Reds")
    ax.set(title=f"valid length {length}", xlabel="key position")
axes[0].set_ylabel("query position")
fig.tight_layout()
plt.show()
