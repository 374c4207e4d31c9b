"""The GE2E speaker encoder as numpy arithmetic: 3 LSTM layers of 256, a linear layer, ReLU.

Its weights are Resemblyzer's `pretrained.pt` (a d-vector model trained with the
generalized end-to-end loss). Running it in numpy needs no torch: a 3 s line is three
160-frame partials run as one batch through 480 small matrix products in sequence.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

LAYERS = 3
HIDDEN = 256
# sigmoid(x) = (1 + tanh(x / 2)) / 2: one tanh over all four gates per step; the cell gate
# (third quarter) takes a plain tanh.
_GATE_SCALE = np.concatenate(
    [np.full(2 * HIDDEN, 0.5), np.ones(HIDDEN), np.full(HIDDEN, 0.5)]
).astype(np.float32)

# The recurrence is 480 small products in sequence: BLAS worker threads only spin between
# them, and on two busy cores one thread ran the encoder 4x faster (0.10 s against 0.43 s
# median for a 3 s line). The limit is process-wide while it holds, so embeddings take
# turns and each restores what it found.
_single_thread = threading.Lock()
_threadpools: list[ThreadpoolController] = []  # found once: the search reads /proc (~5 ms)


def _blas() -> ThreadpoolController:
    if not _threadpools:
        _threadpools.append(ThreadpoolController())
    return _threadpools[0]


@dataclass(frozen=True)
class _LSTMLayer:
    input_weights: np.ndarray  # (inputs, 4 * hidden), gates in PyTorch order i, f, g, o
    hidden_weights: np.ndarray  # (hidden, 4 * hidden)
    bias: np.ndarray  # (4 * hidden,)

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """(batch, time, inputs) -> (batch, time, hidden) outputs of every step."""
        batch, steps, _ = inputs.shape
        gates_in = inputs @ self.input_weights + self.bias  # all steps at once
        hidden = np.zeros((batch, HIDDEN), dtype=np.float32)
        cell = np.zeros((batch, HIDDEN), dtype=np.float32)
        outputs = np.empty((batch, steps, HIDDEN), dtype=np.float32)
        for t in range(steps):
            squashed = np.tanh((gates_in[:, t] + hidden @ self.hidden_weights) * _GATE_SCALE)
            i = 0.5 + 0.5 * squashed[:, :HIDDEN]
            f = 0.5 + 0.5 * squashed[:, HIDDEN : 2 * HIDDEN]
            g = squashed[:, 2 * HIDDEN : 3 * HIDDEN]
            o = 0.5 + 0.5 * squashed[:, 3 * HIDDEN :]
            cell = f * cell + i * g
            hidden = o * np.tanh(cell)
            outputs[:, t] = hidden
        return outputs


@dataclass(frozen=True)
class SpeakerEncoder:
    """Mel partials in, one unit-length 256-d speaker embedding per partial out."""

    layers: tuple[_LSTMLayer, ...]
    projection: np.ndarray  # (hidden, embedding)
    projection_bias: np.ndarray

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SpeakerEncoder:
        """Build from the checkpoint's `model_state` (PyTorch parameter names)."""
        layers = tuple(
            _LSTMLayer(
                input_weights=np.ascontiguousarray(state[f"lstm.weight_ih_l{n}"].T),
                hidden_weights=np.ascontiguousarray(state[f"lstm.weight_hh_l{n}"].T),
                bias=state[f"lstm.bias_ih_l{n}"] + state[f"lstm.bias_hh_l{n}"],
            )
            for n in range(LAYERS)
        )
        return cls(
            layers=layers,
            projection=np.ascontiguousarray(state["linear.weight"].T),
            projection_bias=state["linear.bias"],
        )

    @property
    def parameter_bytes(self) -> int:
        arrays = [self.projection, self.projection_bias]
        for layer in self.layers:
            arrays += [layer.input_weights, layer.hidden_weights, layer.bias]
        return sum(array.nbytes for array in arrays)

    def embed_partials(self, partials: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel power -> (batch, 256) embeddings of unit length."""
        activations = partials.astype(np.float32)
        with _single_thread, _blas().limit(limits=1, user_api="blas"):
            for layer in self.layers:
                activations = layer.run(activations)
        last = activations[:, -1]  # the final hidden state of the top layer
        raw = np.maximum(last @ self.projection + self.projection_bias, 0.0)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        return raw / np.maximum(norms, 1e-12)
