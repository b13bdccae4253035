"""The one filesystem layer for Python processes: training ranks, scoring workers, driver-side Python.

Every URL is resolved with ``pyarrow.fs`` (``file``, ``hdfs``, ``s3``/``s3a``, ``gs``,
``abfs``), so no caller has a local-only branch: a path without a scheme becomes a
``file://`` URL, and everything else goes to the filesystem its scheme names.

S3 settings come from the standard AWS environment variables, so the same code runs
against AWS and against an S3-compatible server: ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL`` (e.g. ``http://127.0.0.1:9000``), ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, and the credentials chain (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, profiles, instance metadata).

Small writes are atomic where the filesystem allows it: a temporary file in the same
directory and a rename on file systems with rename (local, HDFS); a single PUT on object
stores, where an object becomes visible whole or not at all.
"""
from __future__ import annotations

import json
import logging
import os
import posixpath
import threading
import uuid
from urllib.parse import urlparse

import pyarrow.fs as pafs

log = logging.getLogger(__name__)

OBJECT_STORE_SCHEMES = ("s3", "s3a", "s3n", "gs", "gcs")
_cache: dict[tuple, pafs.FileSystem] = {}
_lock = threading.Lock()


def to_url(path: str) -> str:
    """Local paths become ``file://`` URLs; URLs pass through unchanged."""
    path = str(path)
    if "://" in path:
        return path
    if path.startswith("file:"):  # Hadoop's 'file:/x'
        return "file://" + path[len("file:"):]
    return "file://" + os.path.abspath(path)


def local_path(url: str) -> str | None:
    """The local path of a ``file://`` URL (or of a plain path); None for any other filesystem."""
    u = urlparse(to_url(url))
    return u.path if u.scheme == "file" else None


def join(base: str, *parts: str) -> str:
    """``base/part/...`` for URLs and paths (no normalisation of the base's scheme)."""
    return "/".join([str(base).rstrip("/")] + [str(p).strip("/") for p in parts])


def scheme(url: str) -> str:
    return urlparse(to_url(url)).scheme.lower()


def is_object_store(url: str) -> bool:
    """True where a directory cannot be renamed atomically (S3, GCS): commit points are single objects."""
    return scheme(url) in OBJECT_STORE_SCHEMES


def _s3(netloc_and_path: str) -> tuple[pafs.FileSystem, str]:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    key = (endpoint, region, os.environ.get("AWS_ACCESS_KEY_ID"))
    with _lock:
        fs = _cache.get(("s3",) + key)
        if fs is None:
            kw: dict = {}
            if endpoint:
                ep = urlparse(endpoint)
                kw["endpoint_override"] = ep.netloc or ep.path
                kw["scheme"] = ep.scheme or "https"
            if region:
                kw["region"] = region
            fs = pafs.S3FileSystem(**kw)
            _cache[("s3",) + key] = fs
    return fs, netloc_and_path


def resolve(url: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for ``url``; the filesystem is cached per process."""
    url = to_url(url)
    u = urlparse(url)
    sch = u.scheme.lower()
    if sch == "file":
        return pafs.LocalFileSystem(), u.path
    if sch in ("s3", "s3a", "s3n"):
        return _s3((u.netloc + u.path).rstrip("/"))
    with _lock:
        cache_key = (sch, u.netloc)
        fs = _cache.get(cache_key)
        if fs is None:
            try:
                fs, _ = pafs.FileSystem.from_uri(f"{sch}://{u.netloc}/")
            except Exception as e:  # noqa: BLE001 - re-raised with the setting to fix
                raise ValueError(f"cannot open {url!r} ({e}); supported: file://, hdfs://, s3://, gs://, abfs:// "
                                 "(hdfs needs libhdfs and HADOOP_HOME/CLASSPATH on this machine)") from e
            _cache[cache_key] = fs
    path = u.path if sch in ("hdfs", "viewfs") else (u.netloc + u.path)
    return fs, path.rstrip("/") or "/"


def exists(url: str) -> bool:
    fs, path = resolve(url)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_dir(url: str) -> bool:
    fs, path = resolve(url)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def is_file(url: str) -> bool:
    fs, path = resolve(url)
    return fs.get_file_info(path).type == pafs.FileType.File


def makedirs(url: str) -> None:
    fs, path = resolve(url)
    fs.create_dir(path, recursive=True)


def list_names(url: str) -> list[str]:
    """Names directly under ``url`` (empty when it does not exist), sorted."""
    fs, path = resolve(url)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    return sorted(posixpath.basename(i.path.rstrip("/"))
                  for i in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)))


def delete(url: str) -> None:
    """Delete a file or a directory tree; absent is fine."""
    fs, path = resolve(url)
    t = fs.get_file_info(path).type
    if t == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif t == pafs.FileType.File:
        fs.delete_file(path)


def read_bytes(url: str) -> bytes:
    fs, path = resolve(url)
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{url} not found") from e


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` so a reader sees the old file or the new one, never a part (see module doc)."""
    fs, path = resolve(url)
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    if is_object_store(url):
        with fs.open_output_stream(path) as f:  # one PUT: the object appears whole
            f.write(data)
        return
    tmp = posixpath.join(parent, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex[:12]}")
    try:
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, path)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except Exception:  # noqa: BLE001 - the original error matters; a stray hidden tmp file is harmless
            pass
        raise


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def write_text(url: str, text: str) -> None:
    write_bytes(url, text.encode("utf-8"))


def read_json(url: str):
    return json.loads(read_text(url))


def write_json(url: str, obj) -> None:
    write_text(url, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def rename_dir(src: str, dst: str) -> None:
    """Rename a directory (local, HDFS). Object stores have no directory rename: callers use pointers there."""
    if is_object_store(src):
        raise ValueError(f"{src}: object stores cannot rename a directory atomically")
    fs, s = resolve(src)
    _, d = resolve(dst)
    fs.move(s, d)
