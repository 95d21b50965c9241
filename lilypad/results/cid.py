"""The IPFS CID of a job's results: UnixFS, exactly as ``ipfs add -r --cid-version=1``.

The data id of a deal is the CID that kubo's ``ipfs add -r --cid-version=1``
gives the results directory (``stdout``, ``stderr``, ``exitCode``,
``outputs/``). This module computes it without an IPFS node, with kubo's
defaults for CIDv1:

* files are cut into fixed 262144-byte chunks, each stored as a *raw* leaf
  (codec ``raw``); a file of one chunk (or an empty file) *is* its raw leaf;
* larger files are dag-pb UnixFS ``File`` nodes over their chunks in kubo's
  balanced layout, at most 174 links per node, each node recording its
  ``filesize`` and its children's ``blocksizes``;
* directories are dag-pb UnixFS ``Directory`` nodes whose links are sorted by
  the bytes of their UTF-8 names and carry each child's cumulative size;
* symbolic links inside the tree are stored as UnixFS ``Symlink`` nodes (not
  followed); a symlink given as the top-level path itself is followed, as
  ``ipfs add --dereference-args`` does (kubo 0.43 without that flag stores the
  argument as a symlink node: add a directory by its real path);
* names starting with ``.`` are skipped, as kubo does without ``--hidden``
  (pass ``hidden=True`` for ``ipfs add -r --hidden``);
* sha2-256 multihashes, CIDv1, printed in base32 (``bafy...``/``bafk...``).

Directories that kubo would turn into HAMT shards (when the sum of their
links' name and CID lengths exceeds 256 KiB, several thousand entries) are
rejected with :class:`~lilypad.exceptions.CIDError` instead of getting a CID
that would not match. File modes and mtimes are not stored (kubo's default).
The multicodec and multihash codes, varints and the final multibase text come
from the ``multiformats`` package; the two small protobuf messages (dag-pb
``PBNode``/``PBLink`` and UnixFS ``Data``) are encoded here, in the canonical
field order kubo and js-ipfs use.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from multiformats import CID, multicodec, multihash, varint

from lilypad.exceptions import CIDError

__all__ = [
    "CHUNK_SIZE",
    "HAMT_SHARDING_SIZE",
    "MAX_LINKS",
    "bytes_cid",
    "directory_cid",
    "file_cid",
    "path_cid",
]

CHUNK_SIZE = 262_144
"""kubo's default chunker, ``size-262144``."""
MAX_LINKS = 174
"""kubo's balanced layout: the most links a file node holds."""
HAMT_SHARDING_SIZE = 262_144
"""kubo shards a directory once its links' estimated size exceeds this (boxo: ``>``)."""

# UnixFS Data.DataType values
_DIRECTORY, _FILE, _SYMLINK = 1, 2, 4

# Binary CIDv1 prefixes: <version><codec><multihash code><digest length>. Building
# CIDs as bytes keeps large trees fast (the multiformats CID constructor validates
# every argument, ~1 ms a call); multiformats supplies the codes and the final text.
_SHA2_256 = multihash.get("sha2-256")
_PREFIX = {
    codec: varint.encode(1) + varint.encode(multicodec.get(codec).code)
    + varint.encode(_SHA2_256.code) + varint.encode(32)
    for codec in ("raw", "dag-pb")
}


@dataclass(frozen=True)
class _Node:
    cid: bytes  # binary CID
    tsize: int  # cumulative size: the block plus everything below it (a link's Tsize)
    filesize: int = 0  # bytes of file content (a parent's blocksizes entry)


# --------------------------------------------------------------------------
# Protobuf encoding (dag-pb and UnixFS)
# --------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes_field(number: int, data: bytes) -> bytes:
    return _varint((number << 3) | 2) + _varint(len(data)) + data


def _unixfs_data(kind: int, data: bytes | None = None, filesize: int | None = None,
                 blocksizes: Sequence[int] = ()) -> bytes:
    """A UnixFS ``Data`` message (fields 1 Type, 2 Data, 3 filesize, 4 blocksizes, unpacked)."""
    out = _varint_field(1, kind)
    if data is not None:
        out += _bytes_field(2, data)
    if filesize is not None:
        out += _varint_field(3, filesize)
    for size in blocksizes:
        out += _varint_field(4, size)
    return out


def _dag_pb(data: bytes, links: Sequence[tuple[bytes, bytes, int]] = ()) -> bytes:
    """A dag-pb ``PBNode``: links (field 2: Hash, Name, Tsize) first, then Data (field 1)."""
    out = b"".join(
        _bytes_field(2, _bytes_field(1, cid) + _bytes_field(2, name) + _varint_field(3, tsize))
        for cid, name, tsize in links
    )
    return out + _bytes_field(1, data)


def _make_cid(codec: str, block: bytes) -> bytes:
    return _PREFIX[codec] + hashlib.sha256(block).digest()


def _to_text(cid: bytes) -> str:
    """A binary CID as kubo prints a CIDv1: multibase base32 (``b...``)."""
    return str(CID.decode(cid).encode("base32"))


def _dag_pb_node(data: bytes, links: Sequence[tuple[bytes, bytes, int]] = ()) -> tuple[bytes, int]:
    block = _dag_pb(data, links)
    return _make_cid("dag-pb", block), len(block) + sum(tsize for _, _, tsize in links)


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Fixed-size chunks; an empty stream yields one empty chunk."""
    first = True
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if chunk or first:
            yield chunk
        first = False
        if len(chunk) < CHUNK_SIZE:
            return


def _file_node(children: Sequence[_Node]) -> _Node:
    sizes = [child.filesize for child in children]
    data = _unixfs_data(_FILE, filesize=sum(sizes), blocksizes=sizes)
    cid, tsize = _dag_pb_node(data, [(child.cid, b"", child.tsize) for child in children])
    return _Node(cid, tsize, sum(sizes))


def _file(stream: BinaryIO) -> _Node:
    level = [_Node(_make_cid("raw", chunk), len(chunk), len(chunk)) for chunk in _chunks(stream)]
    while len(level) > 1:  # balanced layout: group, then group the groups
        level = [_file_node(level[i:i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
    return level[0]


# --------------------------------------------------------------------------
# Directories and symlinks
# --------------------------------------------------------------------------


def _symlink(path: str) -> _Node:
    target = os.fsencode(os.readlink(path))
    cid, tsize = _dag_pb_node(_unixfs_data(_SYMLINK, data=target))
    return _Node(cid, tsize)


@dataclass
class _OpenDir:
    path: str
    name: bytes
    pending: list[tuple[bytes, os.DirEntry[str]]]
    links: list[tuple[bytes, _Node]] = field(default_factory=list)


def _list_dir(path: str, hidden: bool) -> list[tuple[bytes, os.DirEntry[str]]]:
    entries = []
    with os.scandir(path) as iterator:
        for entry in iterator:
            if not hidden and entry.name.startswith("."):
                continue
            try:
                name = entry.name.encode("utf-8")
            except UnicodeEncodeError:
                raise CIDError(entry.path, "the name is not valid UTF-8") from None
            entries.append((name, entry))
    entries.sort(key=lambda item: item[0], reverse=True)  # popped from the end, in name order
    return entries


def _close_dir(frame: _OpenDir) -> _Node:
    estimate = sum(len(name) + len(node.cid) for name, node in frame.links)
    if estimate > HAMT_SHARDING_SIZE:
        raise CIDError(
            frame.path,
            f"the directory has {len(frame.links)} entries; kubo would store it as a HAMT shard "
            f"(links of {estimate} bytes > {HAMT_SHARDING_SIZE}), which is not supported",
        )
    links = [(node.cid, name, node.tsize) for name, node in frame.links]
    cid, tsize = _dag_pb_node(_unixfs_data(_DIRECTORY), links)
    return _Node(cid, tsize)


def _directory(path: str, hidden: bool) -> _Node:
    """Post-order walk with an explicit stack, so deep trees cannot overflow Python's."""
    stack = [_OpenDir(path, b"", _list_dir(path, hidden))]
    while True:
        frame = stack[-1]
        if not frame.pending:
            node = _close_dir(stack.pop())
            if not stack:
                return node
            stack[-1].links.append((frame.name, node))
            continue
        name, entry = frame.pending.pop()
        if entry.is_symlink():
            frame.links.append((name, _symlink(entry.path)))
        elif entry.is_dir(follow_symlinks=False):
            stack.append(_OpenDir(entry.path, name, _list_dir(entry.path, hidden)))
        elif entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as stream:
                frame.links.append((name, _file(stream)))
        else:
            raise CIDError(entry.path, "not a regular file, directory or symbolic link")


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def bytes_cid(data: bytes) -> str:
    """The CID of a file holding ``data`` (``ipfs add --cid-version=1``)."""
    return _to_text(_file(io.BytesIO(data)).cid)


def file_cid(path: str | os.PathLike[str]) -> str:
    """The CID of the regular file at ``path`` (``ipfs add --cid-version=1 PATH``)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise CIDError(path, "not a regular file")
            return _to_text(_file(stream).cid)
    except OSError as exc:
        raise CIDError(path, exc.strerror or str(exc)) from None


def directory_cid(path: str | os.PathLike[str], *, hidden: bool = False) -> str:
    """The CID of the directory at ``path`` (``ipfs add -r --cid-version=1 PATH``).

    ``hidden=True`` includes names starting with ``.`` (kubo's ``--hidden``).
    """
    path = os.fspath(path)
    try:
        if not os.path.isdir(path):
            raise CIDError(path, "not a directory")
        return _to_text(_directory(path, hidden).cid)
    except OSError as exc:
        raise CIDError(exc.filename or path, exc.strerror or str(exc)) from None


def path_cid(path: str | os.PathLike[str], *, hidden: bool = False) -> str:
    """:func:`directory_cid` or :func:`file_cid`, whichever ``path`` is."""
    return directory_cid(path, hidden=hidden) if os.path.isdir(path) else file_cid(path)
