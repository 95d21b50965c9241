"""UnixFS CIDs of result directories, checked against the JS UnixFS importer.

``cid_oracle.mjs`` runs ``ipfs-unixfs-importer`` (from the repo's
``node_modules``) with kubo's ``ipfs add -r --cid-version=1`` settings. Tests
that need it skip when ``node`` is not installed; the known-value tests run
everywhere.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multiformats import CID, multihash

from lilypad.exceptions import CIDError, LilypadError
from lilypad.results.cid import (
    CHUNK_SIZE,
    HAMT_SHARDING_SIZE,
    MAX_LINKS,
    bytes_cid,
    directory_cid,
    file_cid,
    path_cid,
)

ORACLE_SCRIPT = Path(__file__).with_name("cid_oracle.mjs")
NODE = shutil.which("node")

EMPTY_DIR = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
HELLO_WORLD_NL = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
EMPTY_FILE = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

Tree = dict[str, Union[bytes, "Tree"]]


class Oracle:
    """A long-running ``cid_oracle.mjs --serve`` process (one JSON line per request)."""

    def __init__(self) -> None:
        assert NODE is not None
        self.process = subprocess.Popen(
            [NODE, str(ORACLE_SCRIPT), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )

    def cid(self, path: Path, *, hidden: bool = False) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"path": str(path), "hidden": hidden}) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        if "error" in answer:
            raise RuntimeError(f"oracle failed on {path}: {answer['error']}")
        return str(answer["cid"])

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def oracle() -> Iterator[Oracle]:
    # make setup installs node (the toolchain needs it): a missing one is a broken setup, not a skip
    assert NODE is not None, "node is missing: run `make setup` (the JS UnixFS importer oracle needs it)"
    server = Oracle()
    yield server
    server.close()


def make_tree(root: Path, tree: Tree) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in tree.items():
        if isinstance(content, bytes):
            (root / name).write_bytes(content)
        else:
            make_tree(root / name, content)
    return root


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def assert_matches(oracle: Oracle, path: Path, *, hidden: bool = False) -> str:
    ours = path_cid(path, hidden=hidden)
    assert ours == oracle.cid(path, hidden=hidden)
    return ours


# --------------------------------------------------------------------------
# Known values (no node needed)
# --------------------------------------------------------------------------


def test_known_cids(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "hello").write_bytes(b"hello world\n")
    (tmp_path / "nothing").write_bytes(b"")
    assert directory_cid(tmp_path / "empty") == EMPTY_DIR
    assert file_cid(tmp_path / "hello") == HELLO_WORLD_NL
    assert file_cid(tmp_path / "nothing") == EMPTY_FILE
    assert bytes_cid(b"hello world\n") == HELLO_WORLD_NL
    assert bytes_cid(b"") == EMPTY_FILE


def test_cids_agree_with_the_multiformats_constructor() -> None:
    expected = CID("base32", 1, "raw", multihash.digest(b"hello world\n", "sha2-256"))
    assert bytes_cid(b"hello world\n") == str(expected)
    assert CID.decode(EMPTY_DIR).codec.name == "dag-pb"


def test_known_cids_match_the_oracle(oracle: Oracle, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "hello").write_bytes(b"hello world\n")
    (tmp_path / "nothing").write_bytes(b"")
    assert oracle.cid(tmp_path / "empty") == EMPTY_DIR
    assert oracle.cid(tmp_path / "hello") == HELLO_WORLD_NL
    assert oracle.cid(tmp_path / "nothing") == EMPTY_FILE


def test_cid_shape(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    directory = directory_cid(tmp_path)
    assert directory.startswith("bafybei") and len(directory) == 59  # CIDv1 dag-pb sha2-256, base32
    assert file_cid(tmp_path / "f").startswith("bafkrei")  # CIDv1 raw


# --------------------------------------------------------------------------
# Against the oracle
# --------------------------------------------------------------------------


def test_empty_directory(oracle: Oracle, tmp_path: Path) -> None:
    assert assert_matches(oracle, make_tree(tmp_path / "d", {})) == EMPTY_DIR


def test_results_directory_layout(oracle: Oracle, tmp_path: Path) -> None:
    results = make_tree(tmp_path / "deal", {
        "stdout": b" ______\n< moo >\n ------\n",
        "stderr": b"",
        "exitCode": b"0",
        "outputs": {"image-0.png": random_bytes(70_000, 1), "result.json": b'{"ok": true}\n'},
    })
    assert_matches(oracle, results)
    assert_matches(oracle, results / "outputs")


def test_nested_and_empty_directories(oracle: Oracle, tmp_path: Path) -> None:
    tree: Tree = {"leaf": b"bottom"}
    for level in range(40):
        tree = {f"level{level}": tree, "empty": {}, "file": str(level).encode()}
    assert_matches(oracle, make_tree(tmp_path / "deep", tree))


@pytest.mark.parametrize(
    "size",
    [1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2**20, 3 * 2**20, 3 * 2**20 + 1],
    ids=["1B", "chunk-1", "chunk", "chunk+1", "1MiB", "3MiB", "3MiB+1"],
)
def test_file_sizes(oracle: Oracle, tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(random_bytes(size, size))
    cid = assert_matches(oracle, path)
    assert cid.startswith("bafkrei" if size <= CHUNK_SIZE else "bafybei")
    assert_matches(oracle, make_tree(tmp_path / "dir", {"f.bin": path.read_bytes()}))


@pytest.mark.parametrize("chunks", [MAX_LINKS, MAX_LINKS + 1], ids=["174-chunks", "175-chunks"])
def test_file_spanning_a_second_tree_level(oracle: Oracle, tmp_path: Path, chunks: int) -> None:
    # 175 chunks (~46 MB) need a second level of File nodes in the balanced layout.
    path = tmp_path / "big.bin"
    path.write_bytes(random_bytes((chunks - 1) * CHUNK_SIZE + 1000, chunks))
    started = time.monotonic()
    assert_matches(oracle, path)
    assert time.monotonic() - started < 5


def test_unicode_and_awkward_names(oracle: Oracle, tmp_path: Path) -> None:
    # "\uffff" sorts before "𝒳" in UTF-8 bytes but after it in UTF-16: links sort by bytes.
    names = ["ü.txt", "u.txt", "日本語", "𝒳", "\uffff", "é", "e\u0301", "a b", "Z", "z", "_", "-",
             "tab\there", "quote\"s", "back\\slash", "~", "😀.png"]
    tree: Tree = {name: name.encode() for name in names}
    tree["dir ü"] = {"𝒳": b"inner"}
    assert_matches(oracle, make_tree(tmp_path / "names", tree))


def test_hidden_entries_are_skipped_unless_asked(oracle: Oracle, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "h", {"visible": b"v", ".hidden": b"h", ".git": {"config": b"c"}})
    without = assert_matches(oracle, root)
    with_hidden = assert_matches(oracle, root, hidden=True)
    assert without != with_hidden
    assert without == directory_cid(make_tree(tmp_path / "v", {"visible": b"v"}))


def test_symlinks_are_stored_not_followed(oracle: Oracle, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "s", {"stdout": b"out", "outputs": {"data": b"1234"}})
    (root / "outputs" / "relative").symlink_to("../stdout")
    (root / "outputs" / "absolute").symlink_to("/etc/hostname")
    (root / "dangling").symlink_to("nowhere")
    (root / "dirlink").symlink_to("outputs")
    assert_matches(oracle, root)


def test_directory_just_below_the_sharding_threshold(oracle: Oracle, tmp_path: Path) -> None:
    # kubo estimates a directory as sum(len(name) + len(cid)); 36-byte CIDv1s here.
    # 1387 * (153 + 36) = 262143 = HAMT_SHARDING_SIZE - 1: still a flat directory.
    root = tmp_path / "wide"
    root.mkdir()
    for i in range(1387):
        (root / f"{i:05d}".ljust(153, "x")).write_bytes(b"")
    assert_matches(oracle, root)


def test_directory_exactly_at_the_sharding_threshold_stays_flat(oracle: Oracle, tmp_path: Path) -> None:
    # kubo (boxo) and the JS importer shard only when the estimate *exceeds* the threshold:
    # 1024 * (220 + 36) = 262144 = HAMT_SHARDING_SIZE is still a flat directory.
    root = tmp_path / "wide"
    root.mkdir()
    for i in range(HAMT_SHARDING_SIZE // 256):
        (root / f"{i:05d}".ljust(220, "x")).write_bytes(b"")
    assert_matches(oracle, root)


def test_directory_needing_sharding_is_rejected(tmp_path: Path) -> None:
    root = tmp_path / "wider"
    root.mkdir()
    for i in range(HAMT_SHARDING_SIZE // 256):  # 1023 * (220 + 36) + (221 + 36) = 262145
        (root / f"{i:05d}".ljust(221 if i == 0 else 220, "x")).write_bytes(b"")
    with pytest.raises(CIDError, match="HAMT") as info:
        directory_cid(root)
    assert info.value.path == str(root)


# --------------------------------------------------------------------------
# Errors and API details
# --------------------------------------------------------------------------


def test_special_files_are_rejected(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(CIDError, match="not a regular file") as info:
        directory_cid(tmp_path)
    assert info.value.path.endswith("pipe")


def test_undecodable_names_are_rejected(tmp_path: Path) -> None:
    (Path(os.fsdecode(bytes(tmp_path) + b"/bad\xff"))).write_bytes(b"")
    with pytest.raises(CIDError, match="UTF-8"):
        directory_cid(tmp_path)


def test_wrong_kind_or_missing_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(CIDError, match="not a directory"):
        directory_cid(tmp_path / "f")
    with pytest.raises(CIDError):
        file_cid(tmp_path)
    with pytest.raises(LilypadError, match="No such file"):
        file_cid(tmp_path / "missing")
    with pytest.raises(CIDError):
        path_cid(tmp_path / "missing")


def test_top_level_symlink_is_followed(tmp_path: Path) -> None:
    target = make_tree(tmp_path / "real", {"a": b"1"})
    (tmp_path / "link").symlink_to(target)
    assert directory_cid(tmp_path / "link") == directory_cid(target)


def test_path_cid_dispatches(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"hello world\n")
    assert path_cid(tmp_path / "f") == HELLO_WORLD_NL
    assert path_cid(tmp_path) == directory_cid(tmp_path)


def test_content_and_names_change_the_cid(tmp_path: Path) -> None:
    a = directory_cid(make_tree(tmp_path / "a", {"x": b"1"}))
    assert a == directory_cid(make_tree(tmp_path / "same", {"x": b"1"}))
    assert a != directory_cid(make_tree(tmp_path / "b", {"x": b"2"}))
    assert a != directory_cid(make_tree(tmp_path / "c", {"y": b"1"}))


# --------------------------------------------------------------------------
# Property: random small trees
# --------------------------------------------------------------------------

_names = st.text(alphabet=st.sampled_from(list("abcAB_.-é𝒳 0")), min_size=1, max_size=6).filter(
    lambda name: name not in (".", "..")
)
_contents = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=0, max_value=3).map(lambda k: random_bytes(CHUNK_SIZE - 1 + k, k)),
)
_trees: st.SearchStrategy[Tree] = st.recursive(
    st.dictionaries(_names, _contents, max_size=4),
    lambda children: st.dictionaries(_names, st.one_of(_contents, children), max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None)
@given(tree=_trees, hidden=st.booleans())
def test_random_trees_match_the_oracle(oracle: Oracle, tree: Tree, hidden: bool) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        root = make_tree(Path(workdir) / "root", tree)
        assert_matches(oracle, root, hidden=hidden)
