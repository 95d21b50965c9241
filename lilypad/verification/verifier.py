"""The verifier container: a module's own check of whether two results are equivalent.

A module whose honest results vary in ways only it understands declares
``{"type": "verifier", "context": "verifier", "timeoutSeconds": 60}``. The
``context`` directory of the module's checkout holds a ``Dockerfile``; it is
built like the job image (content-tagged, reused, no registry:
:func:`lilypad.executor.docker_runner.ensure_image`) and run by
:func:`lilypad.executor.docker_runner.run_sandboxed`, in the job sandbox:

* both result directories mounted read-only at ``/results/a`` and ``/results/b``
  (nothing else is mounted; a write fails with a read-only file system);
* ``--network none``, every capability dropped, a read-only root file system,
  :data:`VERIFIER_LIMITS` for memory, CPU, processes and output (stdout and
  stderr are each capped at 64 KiB: a verifier that floods them cannot fill a disk);
* killed at ``timeoutSeconds``.

Exit status 0 means equivalent; anything else, a timeout or running out of
memory means "not equivalent" with a reason saying which. What stops the
verifier from running at all is raised instead: a context outside the module
(:class:`~lilypad.exceptions.VerifierContextError`), a failed build
(:class:`~lilypad.exceptions.ImageBuildError`), an engine that does not answer.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from lilypad.exceptions import VerifierContextError
from lilypad.executor.docker_runner import (
    ExecutorLimits,
    docker_client,
    ensure_image,
    module_image_tag,
    run_sandboxed,
)
from lilypad.executor.gpu import MIB
from lilypad.verification.comparators import Comparison
from lilypad.verification.spec import MAX_VERIFIER_TIMEOUT_S, VerifierComparator

__all__ = ["MOUNT_A", "MOUNT_B", "VERIFIER_LIMITS", "build_verifier", "run_verifier", "verifier_context"]

MOUNT_A = "/results/a"
MOUNT_B = "/results/b"
VERIFIER_LIMITS = ExecutorLimits(
    max_timeout=float(MAX_VERIFIER_TIMEOUT_S),
    max_output_bytes=1 * MIB,
    max_log_bytes=64 * 1024,
    default_memory_bytes=512 * MIB,
    default_cpu_millis=1000,
    pids_limit=128,
    tmpfs_bytes=64 * MIB,
)
"""The sandbox limits of a verifier container (its timeout is the spec's)."""

_REASON_CHARS = 200


def verifier_context(comparator: VerifierComparator, module_dir: Path | None) -> Path:
    """The verifier's build context: ``module_dir / context``, resolved, which must
    stay inside ``module_dir`` (symbolic links included) and hold a ``Dockerfile``."""
    if module_dir is None:
        raise VerifierContextError(comparator.context, "no module directory was given to build it from")
    root = Path(module_dir).resolve()
    context = (root / comparator.context).resolve()
    if context != root and root not in context.parents:
        raise VerifierContextError(comparator.context, f"it resolves outside the module directory {root}")
    if not (context / "Dockerfile").is_file():
        raise VerifierContextError(comparator.context, f"{context} has no Dockerfile")
    return context


def build_verifier(comparator: VerifierComparator, module_dir: Path | None, client: Any = None) -> str:
    """The verifier's image tag, built now unless this content was built before."""
    context = verifier_context(comparator, module_dir)
    return ensure_image(module_image_tag(context), context, client or docker_client())


def _tail(path: Path) -> str:
    try:
        text = path.read_bytes()[-4096:].decode("utf-8", errors="replace").strip()
    except OSError:
        return ""
    last = text.splitlines()[-1] if text else ""
    return last[:_REASON_CHARS]


def run_verifier(comparator: VerifierComparator, a: Path, b: Path, *, module_dir: Path | None,
                 client: Any = None, limits: ExecutorLimits = VERIFIER_LIMITS) -> Comparison:
    """Run the module's verifier on result directories ``a`` and ``b`` (see the module docstring)."""
    client = client or docker_client()
    image = build_verifier(comparator, module_dir, client)
    work_dir = Path(tempfile.mkdtemp(prefix="lilypad-verifier-"))
    try:
        run = run_sandboxed(image, work_dir=work_dir / "run", read_only_mounts={MOUNT_A: Path(a), MOUNT_B: Path(b)},
                            timeout=comparator.timeout_seconds, limits=limits, client=client)
        if run.timed_out:
            return Comparison(False, f"not equivalent: the verifier failed (killed at its "
                                     f"{comparator.timeout_seconds}s timeout)")
        if run.oom_killed:
            return Comparison(False, "not equivalent: the verifier failed (out of memory)")
        said = _tail(work_dir / "run" / "stderr") or _tail(work_dir / "run" / "stdout")
        if run.exit_code == 0:
            return Comparison(True, "the verifier container says equivalent" + (f": {said}" if said else ""))
        return Comparison(False, f"not equivalent: the verifier exited with status {run.exit_code}"
                                 + (f": {said}" if said else ""))
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
