"""Read the tensors of a legacy (pre-zip) PyTorch checkpoint into numpy, without torch.

The voice encoder's weights ship as a `torch.save` file from 2019: a run of pickles (magic
number, protocol, system info, the object, the storage keys) followed by each storage's raw
bytes. Only the few globals such a state dict names are allowed, so the file can rebuild
tensors and ordered dicts and nothing else.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# torch.serialization's MAGIC_NUMBER and PROTOCOL_VERSION for the legacy format.
_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001
_DTYPES = {"FloatStorage": np.dtype("<f4"), "LongStorage": np.dtype("<i8")}


class CheckpointError(ValueError):
    """The file is not a legacy PyTorch checkpoint this reader understands."""


@dataclass
class _Storage:
    """A storage named in the object pickle; its bytes follow the pickles in the file."""

    key: str
    dtype: np.dtype[Any]
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorView:
    """A tensor as the pickle describes it: a strided view into a storage."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        if self.storage.data is None:
            raise CheckpointError(f"storage {self.storage.key} has no data")
        itemsize = self.storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            self.storage.data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
        )
        return np.array(view)  # a contiguous copy, detached from the shared storage


def _rebuild_tensor(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> _TensorView:
    return _TensorView(storage, offset, tuple(size), tuple(stride))


class _StorageType:
    """Stands for `torch.FloatStorage` and kin: only its name (the dtype) is used."""

    def __init__(self, name: str) -> None:
        self.dtype = _DTYPES[name]


class _Unpickler(pickle.Unpickler):
    def __init__(self, handle: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(handle)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return _StorageType(name)
        raise CheckpointError(f"the checkpoint names {module}.{name}, which is not allowed")

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage type, key, location, element count, view metadata)
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise CheckpointError(f"unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype)
        return self.storages[key]


def _arrays(value: Any) -> Any:
    """The loaded object with every tensor view replaced by its numpy array."""
    if isinstance(value, _TensorView):
        return value.to_numpy()
    if isinstance(value, dict):
        return {k: _arrays(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_arrays(v) for v in value)
    return value


def load_legacy_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's top-level dict, with tensors as float32/int64 numpy arrays."""
    storages: dict[str, _Storage] = {}
    try:
        with path.open("rb") as handle:
            # Every pickle goes through the allow-list, the small ones too.
            def load() -> Any:
                return _Unpickler(handle, storages).load()

            if load() != _MAGIC or load() != _PROTOCOL:
                raise CheckpointError(f"{path} is not a legacy PyTorch checkpoint")
            load()  # system info (endianness, type sizes): little-endian here
            obj = load()
            keys = load()
            for key in keys:
                storage = storages[str(key)]
                count = int(np.frombuffer(handle.read(8), dtype="<i8")[0])
                raw = handle.read(count * storage.dtype.itemsize)
                if len(raw) != count * storage.dtype.itemsize:
                    raise CheckpointError(f"{path} ends inside storage {key}")
                storage.data = np.frombuffer(raw, dtype=storage.dtype)
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint: {exc}") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a dict")
    return _arrays(obj)
