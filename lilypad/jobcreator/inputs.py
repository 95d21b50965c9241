"""The job creator's input files: ``lilypad run --inputs-path DIR``.

:func:`check_inputs_path` checks the directory before anything is offered (the
module's required files are there, every file at most 10 MB, no links, no
hidden names, the overall cap: :mod:`lilypad.protocol.inputs`) and gives its CID,
which the job offer signs as ``inputs_cid``. After the offer is posted,
:func:`upload_inputs` sends the directory to the solver for that offer, signed
by the job creator; the solver matches the offer only once it has them, and
the provider verifies what it downloads against the signed CID.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lilypad.exceptions import InputFilesError, SolverRequestError
from lilypad.protocol.inputs import MAX_INPUT_FILE_BYTES, InputLimits, check_input_tree

if TYPE_CHECKING:
    from lilypad.client import StoredInputs

__all__ = ["MAX_INPUT_FILE_BYTES", "check_inputs_path", "upload_inputs"]


def check_inputs_path(path: Path | None, required: tuple[str, ...] = (),
                      limits: InputLimits = InputLimits()) -> str | None:
    """The CID of the input directory ``path`` (``None`` when no directory is
    given or it is empty: nothing to send). Raises
    :class:`~lilypad.exceptions.InputFilesError` when a file the module
    requires is missing, or the tree breaks a rule or a limit."""
    from lilypad.results.cid import directory_cid

    if path is None:
        if required:
            raise InputFilesError("--inputs-path", f"the module requires input files {list(required)}")
        return None
    root = Path(path)
    if not root.is_dir():
        raise InputFilesError(root, "not a directory")
    count, _ = check_input_tree(root, limits)
    missing = [name for name in required if not (root / name).is_file()]
    if missing:
        raise InputFilesError(root, f"the module requires {missing}, which are not there")
    return directory_cid(root) if count else None


def upload_inputs(client: Any, offer_id: str, path: Path, signer: Any, echo: Callable[[str], None] | None = None,
                  limits: InputLimits = InputLimits()) -> StoredInputs:
    """Upload the input directory ``path`` for job offer ``offer_id``, signed by
    ``signer`` (the job creator's key or ape account); the solver's answer.
    A refusal becomes :class:`~lilypad.exceptions.InputFilesError`."""
    try:
        answer = client.upload_inputs(offer_id, path, signer, limits)
    except SolverRequestError as exc:
        raise InputFilesError(path, f"the solver refused them ({exc.status} {exc.code}: {exc.detail})") from None
    if echo is not None:
        echo(f"input files {answer.cid} uploaded ({answer.size} bytes packed)")
    return answer
