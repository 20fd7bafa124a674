"""The only module that knows file formats.

Every write is atomic (a temporary file in the same folder, fsync, rename), so a run killed at
any moment leaves either the old file or the new one, never half of one (and perhaps the
temporary file, which ``remove_stale_temporaries`` clears). Binary state files (checkpoints,
parameter snapshots) are msgpack envelopes that carry a SHA-256 of their payload: a truncated or
corrupted file is detected on read and reported with its path. Text results are checked by
parsing: undecodable bytes, invalid JSON or YAML, a CSV table cut mid-line, or a missing or
non-finite value in a column the reader requires, all raise CorruptFileError naming the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import yaml

SUMMARY_VERSION = 1
"""Layout version of a run's summary.json; readers refuse other versions with a clear message."""

ENVELOPE_FORMAT = "vitnqs-state-1"
"""Tag of the checksummed msgpack envelope; bump it when the layout changes."""


class CorruptFileError(RuntimeError):
    """A result or state file that cannot be read back as written; names the path."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        super().__init__(f"{self.path}: {reason}")


TEMPORARY_SUFFIX = ".tmp"
"""Suffix of the temporary files of ``write_atomic``, which are named .{name}.{random}.tmp."""


_UMASK = os.umask(0)
os.umask(_UMASK)
"""The process's umask (read once: os.umask can only be read by setting it)."""


def write_atomic(path: Path | str, data: bytes) -> None:
    """Write bytes to path so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would create it (mkstemp's is 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(folder: Path | str) -> list[Path]:
    """Delete the temporary files that a process killed inside ``write_atomic`` left in folder.

    Call it only where no other process writes (a run directory is trained by one process).
    """
    stale = sorted(Path(folder).glob(f".*{TEMPORARY_SUFFIX}"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


# --- checksummed binary state ---------------------------------------------------------------
def write_state(path: Path | str, payload: bytes) -> None:
    """Write a msgpack payload inside a checksummed envelope."""
    envelope = {
        "format": ENVELOPE_FORMAT,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "payload": payload,
    }
    write_atomic(path, msgpack.packb(envelope, use_bin_type=True))


def read_state(path: Path | str) -> bytes:
    """Read an envelope written by ``write_state``; raise CorruptFileError if it does not check."""
    path = Path(path)
    try:
        envelope = msgpack.unpackb(path.read_bytes(), raw=False)
    except FileNotFoundError:
        raise
    except Exception as error:  # msgpack raises several types on truncated data
        raise CorruptFileError(path, f"not a readable state file ({error})") from None
    if not isinstance(envelope, dict) or envelope.get("format") != ENVELOPE_FORMAT:
        raise CorruptFileError(path, f"not a {ENVELOPE_FORMAT} file")
    payload = envelope.get("payload")
    if (not isinstance(payload, bytes)
            or hashlib.sha256(payload).hexdigest() != envelope.get("sha256")):
        raise CorruptFileError(path, "checksum mismatch: the file is truncated or corrupted")
    return payload


def write_parameters(path: Path | str, params, dtype: str | None = None) -> None:
    """Save a parameter pytree (optionally cast to dtype) in a checksummed envelope."""
    from flax import serialization

    if dtype is not None:
        params = _cast_tree(params, np.dtype(dtype))
    write_state(path, serialization.msgpack_serialize(serialization.to_state_dict(params)))


def read_parameters(path: Path | str, target=None, dtype: str | None = None):
    """Load parameters saved by ``write_parameters``; restore into target's structure if given."""
    from flax import serialization

    state = serialization.msgpack_restore(read_state(path))
    if target is not None:
        state = serialization.from_state_dict(target, state)
    if dtype is not None:
        state = _cast_tree(state, np.dtype(dtype))
    return state


def _cast_tree(tree, dtype: np.dtype):
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=dtype), tree)


# --- text results -----------------------------------------------------------------------------
def write_json(path: Path | str, data: dict[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=2, sort_keys=False, default=_json_default)
                        + "\n").encode())


def read_json(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptFileError(path, f"not valid JSON ({error})") from None


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_yaml(path: Path | str, data: dict[str, Any]) -> None:
    write_atomic(path, yaml.safe_dump(data, sort_keys=False).encode())


def read_yaml(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise CorruptFileError(path, f"not valid YAML ({error})") from None
    return {} if data is None else data


def write_csv(path: Path | str, frame: pd.DataFrame) -> None:
    write_atomic(path, frame.to_csv(index=False, float_format="%.10g").encode())


def read_csv(path: Path | str, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """A table written by ``write_csv``; every required column present, filled and finite."""
    path = Path(path)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        raise CorruptFileError(path, "the table ends mid-line: the file is truncated")
    try:
        frame = pd.read_csv(BytesIO(data))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise CorruptFileError(path, f"not a readable CSV table ({error})") from None
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise CorruptFileError(path, f"missing column(s) {missing}")
    unfilled = [column for column in required if not _filled_and_finite(frame[column])]
    if unfilled:
        raise CorruptFileError(path, f"empty or non-finite values in column(s) {unfilled}")
    return frame


def _filled_and_finite(column: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(column):
        return bool(np.isfinite(column.to_numpy(dtype=float)).all())
    return bool(column.notna().all())


# --- arrays -----------------------------------------------------------------------------------
def write_npz(path: Path | str, arrays: dict[str, Any]) -> None:
    """Save named arrays (numbers or strings, no objects) as a compressed .npz file."""
    from io import BytesIO

    buffer = BytesIO()
    np.savez_compressed(buffer, **{name: np.asarray(value) for name, value in arrays.items()})
    write_atomic(path, buffer.getvalue())


def read_npz(path: Path | str, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array of an .npz file written by ``write_npz`` (no pickled objects)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except Exception as error:  # zipfile, zlib, numpy's header parser: each has its own types
        raise CorruptFileError(path, f"not a readable .npz file ({error})") from None
    missing = [name for name in required if name not in arrays]
    if missing:
        raise CorruptFileError(path, f"missing array(s) {missing}")
    return arrays
