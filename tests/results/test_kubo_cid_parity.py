"""``lilypad.results.cid`` against the real kubo: the CID ``ipfs add`` computes.

The deal's data id is defined as kubo's ``ipfs add -r --cid-version=1`` CID of the
results directory; ``lilypad/results/cid.py`` computes it without a node. Here the real
``ipfs`` binary (built by ``make kubo``, pinned in ``scripts/_toolchain/go/kubo``) adds
varied trees to a throwaway offline repo (``ipfs init --profile test``, ``--offline``,
no daemon, no network) and both CIDs must be equal. kubo is the reference.

The command is exactly what a provider runs: ``ipfs add -r --cid-version=1`` with kubo's
defaults (256 KiB fixed chunks, raw leaves, balanced layout of 174 links, empty
directories kept, symlinks stored as symlink nodes, names starting with ``.`` skipped
unless ``--hidden``). ``make setup`` builds the binary, so the tests fail without it.
"""

from __future__ import annotations

import base64
import json
import os
import random
import subprocess
import tempfile
from pathlib import Path
from typing import Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lilypad.exceptions import CIDError, GoToolMissingError
from lilypad.results.cid import (
    CHUNK_SIZE,
    HAMT_SHARDING_SIZE,
    MAX_LINKS,
    directory_cid,
    path_cid,
)
from lilypad.toolchain import find_go_tool

UNIXFS_DIRECTORY, UNIXFS_SYMLINK, UNIXFS_HAMT_SHARD = 1, 4, 5
EMPTY_DIR = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"

Tree = dict[str, Union[bytes, "Tree"]]


class Kubo:
    """The real ``ipfs`` on a private, offline repository."""

    def __init__(self, binary: Path, repo: Path) -> None:
        self.binary = binary
        self.env = {
            **os.environ,
            "IPFS_PATH": str(repo),
            "IPFS_TELEMETRY": "off",
            "IPFS_CHECK_FOR_UPDATES": "false",
        }
        self.ipfs("init", "--profile", "test")

    def ipfs(self, *args: str) -> str:
        done = subprocess.run(
            [str(self.binary), "--offline", *args],
            check=False, env=self.env, capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise AssertionError(f"ipfs {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def add(self, path: Path, *flags: str, hidden: bool = False) -> str:
        """``ipfs add -r --cid-version=1 [FLAGS] PATH``: the root CID, as a provider would report it."""
        if hidden:
            flags = (*flags, "--hidden")
        return self.ipfs("add", "-r", "--cid-version=1", "--quieter", *flags, str(path)).strip()


@pytest.fixture(scope="module")
def kubo(tmp_path_factory: pytest.TempPathFactory) -> Kubo:
    try:
        binary = find_go_tool("ipfs")
    except GoToolMissingError as exc:  # `make setup` builds it: its absence is a failure
        pytest.fail(f"kubo's ipfs is not built ({exc.path}): run `make setup` (or `make {exc.make_target}`)")
    return Kubo(binary, tmp_path_factory.mktemp("ipfs-repo"))


def unixfs_type(kubo: Kubo, cid: str) -> int:
    """The UnixFS ``Data.Type`` of a dag-pb node (its Data starts with field 1, a varint < 128)."""
    node = json.loads(kubo.ipfs("dag", "get", "--output-codec=dag-json", cid))
    data = base64.b64decode(node["Data"]["/"]["bytes"] + "==")
    assert data[0] == 0x08, data[:4]
    return data[1]


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


def assert_parity(kubo: Kubo, path: Path, *, hidden: bool = False) -> str:
    ours = path_cid(path, hidden=hidden)
    theirs = kubo.add(path, hidden=hidden)
    assert ours == theirs, f"cid.py {ours} != kubo {theirs} for {path} (hidden={hidden})"
    return ours


def test_kubo_is_the_pinned_version(kubo: Kubo) -> None:
    assert kubo.ipfs("version", "--number").strip() == "0.43.1"


def test_empty_directory(kubo: Kubo, tmp_path: Path) -> None:
    assert assert_parity(kubo, make_tree(tmp_path / "empty", {})) == EMPTY_DIR


def test_results_directory_layout(kubo: Kubo, tmp_path: Path) -> None:
    results = make_tree(tmp_path / "deal", {
        "stdout": b" ______\n< moo >\n ------\n",
        "stderr": b"",
        "exitCode": b"0",
        "outputs": {"image-0.png": random_bytes(70_000, 1), "result.json": b'{"ok": true}\n'},
    })
    assert_parity(kubo, results)
    assert_parity(kubo, results / "outputs")


def test_nested_and_empty_directories(kubo: Kubo, tmp_path: Path) -> None:
    tree: Tree = {"leaf": b"bottom", "empty": {}}
    for level in range(30):
        tree = {f"level{level}": tree, "empty": {}, "also-empty": {"nested-empty": {}}, "f": str(level).encode()}
    assert_parity(kubo, make_tree(tmp_path / "deep", tree))


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * 2**20 + 1],
    ids=["0B", "1B", "chunk-1", "chunk", "chunk+1", "3MiB+1"],
)
def test_file_sizes(kubo: Kubo, tmp_path: Path, size: int) -> None:
    data = random_bytes(size, size)
    (tmp_path / "f.bin").write_bytes(data)
    cid = assert_parity(kubo, tmp_path / "f.bin")
    assert cid.startswith("bafkrei" if size <= CHUNK_SIZE else "bafybei")
    assert_parity(kubo, make_tree(tmp_path / "dir", {"f.bin": data}))


@pytest.mark.parametrize("chunks", [MAX_LINKS, MAX_LINKS + 1, 2 * MAX_LINKS + 3], ids=["174", "175", "351"])
def test_files_of_many_chunks(kubo: Kubo, tmp_path: Path, chunks: int) -> None:
    # More than 174 chunks (~46 MB) need a second level of File nodes in the balanced layout.
    data = random_bytes((chunks - 1) * CHUNK_SIZE + 1000, chunks)
    assert_parity(kubo, make_tree(tmp_path / "big", {"big.bin": data, "small": b"s"}))


def test_many_files(kubo: Kubo, tmp_path: Path) -> None:
    tree: Tree = {f"file-{i:04d}.txt": f"content {i}\n".encode() for i in range(1500)}
    tree["sub"] = {f"{i}": bytes([i % 256]) * (i % 7) for i in range(300)}
    assert_parity(kubo, make_tree(tmp_path / "many", tree))


def test_directory_just_below_the_sharding_threshold(kubo: Kubo, tmp_path: Path) -> None:
    # kubo estimates a directory as sum(len(name) + len(cid)); 36-byte CIDv1s here.
    # 1387 * (153 + 36) = 262143 = HAMT_SHARDING_SIZE - 1: still a flat directory.
    root = tmp_path / "wide"
    root.mkdir()
    for i in range(1387):
        (root / f"{i:05d}".ljust(153, "x")).write_bytes(b"")
    assert_parity(kubo, root)


def test_directory_exactly_at_the_sharding_threshold_stays_flat(kubo: Kubo, tmp_path: Path) -> None:
    # kubo (boxo) shards when the estimate *exceeds* the threshold: 1024 * (220 + 36) = 262144.
    root = tmp_path / "wide"
    root.mkdir()
    for i in range(HAMT_SHARDING_SIZE // 256):
        (root / f"{i:05d}".ljust(220, "x")).write_bytes(b"")
    cid = assert_parity(kubo, root)
    assert unixfs_type(kubo, cid) == UNIXFS_DIRECTORY


def test_directory_kubo_shards_is_refused_not_mis_hashed(kubo: Kubo, tmp_path: Path) -> None:
    root = tmp_path / "wider"
    root.mkdir()
    for i in range(HAMT_SHARDING_SIZE // 256):  # 1023 * (220 + 36) + (221 + 36) = 262145
        (root / f"{i:05d}".ljust(221 if i == 0 else 220, "x")).write_bytes(b"")
    assert unixfs_type(kubo, kubo.add(root)) == UNIXFS_HAMT_SHARD
    with pytest.raises(CIDError, match="HAMT"):
        directory_cid(root)


def test_unicode_and_awkward_names(kubo: Kubo, tmp_path: Path) -> None:
    # "\uffff" sorts before "𝒳" in UTF-8 bytes but after it in UTF-16: links sort by bytes.
    names = ["ü.txt", "u.txt", "日本語", "𝒳", "\uffff", "é", "e\u0301", "a b", "Z", "z", "_", "-",
             "tab\there", "quote\"s", "back\\slash", "~", "😀.png", "new\nline"]
    tree: Tree = {name: name.encode() for name in names}
    tree["dir ü"] = {"𝒳": b"inner", "空": {}}
    assert_parity(kubo, make_tree(tmp_path / "names", tree))


def test_hidden_entries_are_skipped_unless_asked(kubo: Kubo, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "h", {
        "visible": b"v", ".hidden": b"h", ".git": {"config": b"c"}, "sub": {".env": b"x", "y": b"y"},
    })
    without = assert_parity(kubo, root)
    with_hidden = assert_parity(kubo, root, hidden=True)
    assert without != with_hidden
    assert without == kubo.add(make_tree(tmp_path / "v", {"visible": b"v", "sub": {"y": b"y"}}))


def test_symlinks_are_stored_not_followed(kubo: Kubo, tmp_path: Path) -> None:
    root = make_tree(tmp_path / "s", {"stdout": b"out", "outputs": {"data": b"1234"}})
    (root / "outputs" / "relative").symlink_to("../stdout")
    (root / "outputs" / "absolute").symlink_to("/etc/hostname")
    (root / "dangling").symlink_to("nowhere")
    (root / "dirlink").symlink_to("outputs")
    (root / "ünï").symlink_to("日本語/𝒳")
    cid = assert_parity(kubo, root)
    listing = kubo.ipfs("ls", "--resolve-type=false", "--size=false", f"{cid}/outputs")
    assert "relative" in listing and "absolute" in listing
    assert kubo.ipfs("cat", f"{cid}/outputs/data") == "1234"


def test_top_level_symlink_is_followed_as_with_dereference_args(kubo: Kubo, tmp_path: Path) -> None:
    # cid.py follows a symlink given as the path itself; kubo does so only with
    # --dereference-args and otherwise stores the argument as a symlink node.
    target = make_tree(tmp_path / "real", {"a": b"1", "inner": {"x": b"2"}})
    (target / "inner-link").symlink_to("inner/x")
    (tmp_path / "link").symlink_to(target)
    followed = kubo.add(target)
    assert directory_cid(tmp_path / "link") == directory_cid(target) == followed
    assert kubo.add(tmp_path / "link", "--dereference-args") == followed
    assert unixfs_type(kubo, kubo.add(tmp_path / "link")) == UNIXFS_SYMLINK


_names = st.text(alphabet=st.sampled_from(list("abcAB_.-é𝒳 0")), min_size=1, max_size=6).filter(
    lambda name: name not in (".", "..")
)
_contents = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=0, max_value=3).map(lambda k: random_bytes(CHUNK_SIZE - 1 + k, k)),
)
_trees: st.SearchStrategy[Tree] = st.recursive(
    st.dictionaries(_names, st.one_of(_contents, st.just({})), max_size=4),
    lambda children: st.dictionaries(_names, st.one_of(_contents, children), max_size=4),
    max_leaves=12,
)


@settings(max_examples=int(os.environ.get("LILYPAD_FUZZ_EXAMPLES", "25")), deadline=None)
@given(tree=_trees, hidden=st.booleans())
def test_random_trees(kubo: Kubo, tree: Tree, hidden: bool) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        assert_parity(kubo, make_tree(Path(workdir) / "root", tree), hidden=hidden)
