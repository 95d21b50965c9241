"""The module spec: the JSON a rendered ``lilypad_module.json.tmpl`` must hold.

The shape is the original's: a ``machine`` block (what a provider must offer),
a Bacalhau ``V1beta1`` ``job`` (what to run), and optionally ``inputFiles``
and ``executionTimeoutSeconds``::

    {"machine": {"gpu": 1, "cpu": 1000, "ram": 8000, "gpus": [{"vram": 24000}]},
     "job": {"APIVersion": "V1beta1",
             "Spec": {"Engine": "Docker",
                      "Docker": {"Image": "repo/image@sha256:...", "Entrypoint": [...],
                                 "EnvironmentVariables": ["K=V"], "Parameters": [],
                                 "WorkingDirectory": ""},
                      "Network": {"Type": "None"},
                      "Outputs": [{"Name": "outputs", "Path": "/outputs"}],
                      "Resources": {"CPU": "1", "Memory": "16Gb", "GPU": "1"},
                      "Timeout": 1800}},
     "inputFiles": {"required": ["cat.jpg"], "optional": []},
     "executionTimeoutSeconds": 900,
     "verification": {"comparator": {"type": "exact", "ignore": ["outputs/time.txt"]}}}

``verification`` is a lilypad extension (the original ignores it as an unknown
key): how two results of the module are compared and what an instruction is;
see :mod:`lilypad.verification.spec`.

Compatibility with the original's Go JSON decoding, which public modules rely
on: object keys match field names case-insensitively (``"outputs"``/``"path"``
work as ``Outputs``/``Path``), ``null`` means "absent", unknown keys
(``PublisherSpec``, ``Deal``, ``Verifier``, ``Wasm``, ``Metadata``, ...) are
ignored, and numbers for integer fields must be JSON integers. The container is
given either as ``Spec.Docker`` or as ``Spec.EngineSpec {Type: "docker",
Params: {...}}``; both are normalised to one :class:`DockerSpec`
(:attr:`JobSpecBody.docker`).

Loading accepts what the original loads; what the original finds out only
when the job runs is checked by :func:`check_runnable` when a job is offered,
agreed to or run: an empty or malformed image, a relative or ``..`` output
path, a relative working directory, an environment entry with an empty name,
NUL characters. An environment entry without ``=`` (``"hello"``) loads and
runs as the variable ``hello`` with an empty value (:attr:`DockerSpec.environment`),
never as Docker's ``-e NAME``, which would copy the provider's own variable.
``executionTimeoutSeconds: 0`` means "not set" (the default applies).

Units: ``machine.cpu`` is milli-CPUs, ``ram``/``disk``/``vram`` are MB.
``Spec.Resources`` strings follow Bacalhau: CPU as a Kubernetes quantity
(``"1"``, ``"0.5"``, ``"1000m"``) parsed to milli-CPUs, Memory/Disk as byte
sizes in go-humanize style (``"16Gb"`` = 16x10^9, ``"16GiB"`` = 16x2^30,
``"512mb"``; a bare number is bytes), GPU as a whole count or ``"all"`` (every
GPU of the machine that runs it, at least one); ``""`` means unset.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from lilypad.exceptions import SpecError, SpecJSONError
from lilypad.modules.gojson import GoModel, json_number
from lilypad.modules.inputs import validate_inputs
from lilypad.modules.template import render_template
from lilypad.verification.spec import VerificationSpec

__all__ = [
    "DockerSpec",
    "EngineSpec",
    "GPUSpec",
    "InputFilesSpec",
    "JobSpec",
    "JobSpecBody",
    "MachineSpec",
    "ModuleSpec",
    "NetworkSpec",
    "OutputSpec",
    "ResourcesSpec",
    "check_runnable",
    "parse_bytes",
    "parse_cpu",
    "parse_gpu",
    "parse_spec",
    "render_spec",
]

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_CPU_RE = re.compile(rf"\s*{_NUMBER}\s*(m?)\s*")
_BYTES_RE = re.compile(rf"\s*{_NUMBER}\s*([A-Za-z]*)\s*")
_GPU_RE = re.compile(r"\s*(\d+)\s*")
_BYTE_UNITS: dict[str, int] = {"": 1, "b": 1}
for _i, _prefix in enumerate("kmgtpe", start=1):
    _BYTE_UNITS.update({_prefix: 1000**_i, _prefix + "b": 1000**_i,
                        _prefix + "i": 1024**_i, _prefix + "ib": 1024**_i})


# --------------------------------------------------------------------------
# Resource strings
# --------------------------------------------------------------------------


def _resource_text(value: object, what: str) -> str | None:
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError(f"{what} must be a string such as \"1\", not a boolean")
    if isinstance(value, (int, float)):
        value = repr(value)
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    return value.strip() or None


def parse_cpu(value: object) -> int | None:
    """A CPU quantity (``"1"``, ``"0.5"``, ``"250m"``) in milli-CPUs, rounded
    up as Kubernetes does; ``None`` for ``""``/``None``. Raises ``ValueError``."""
    text = _resource_text(value, "CPU")
    if text is None:
        return None
    match = _CPU_RE.fullmatch(text)
    if not match:
        raise ValueError(f"invalid CPU quantity {text!r} (examples: \"1\", \"0.5\", \"500m\")")
    amount = Decimal(match.group(1))
    return math.ceil(amount if match.group(2) else amount * 1000)


def parse_bytes(value: object) -> int | None:
    """A byte size (``"16Gb"``, ``"512mb"``, ``"2GiB"``, ``"100"``) in bytes;
    ``None`` for ``""``/``None``. Raises ``ValueError``."""
    text = _resource_text(value, "size")
    if text is None:
        return None
    match = _BYTES_RE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _BYTE_UNITS:
        raise ValueError(f"invalid byte size {text!r} (examples: \"512mb\", \"16Gb\", \"2GiB\")")
    try:
        return int(Decimal(match.group(1)) * _BYTE_UNITS[unit])
    except InvalidOperation:  # pragma: no cover - the pattern only admits decimals
        raise ValueError(f"invalid byte size {text!r}") from None


def parse_gpu(value: object) -> int | Literal["all"] | None:
    """A whole GPU count (``"1"``), or ``"all"`` (any case; Docker's ``--gpus all``:
    every GPU of the machine that runs the job); ``None`` for ``""``/``None``.
    Raises ``ValueError``."""
    text = _resource_text(value, "GPU")
    if text is None:
        return None
    if text.lower() == "all":
        return "all"
    match = _GPU_RE.fullmatch(text)
    if not match:
        raise ValueError(f"invalid GPU count {text!r} (a whole number such as \"1\", or \"all\")")
    return int(match.group(1))


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------


_Count = Annotated[StrictInt, Field(ge=0)]
_Seconds = Annotated[float, BeforeValidator(json_number), Field(ge=0)]


class GPUSpec(GoModel):
    """One GPU a job needs; ``vram`` in MB (0: any)."""

    name: StrictStr = ""
    vendor: StrictStr = ""
    vram: _Count = 0


class MachineSpec(GoModel):
    """What a provider must offer to run the module."""

    gpu: _Count = 0
    gpus: tuple[GPUSpec, ...] = ()
    cpu: _Count = 0  # milli-CPUs
    ram: _Count = 0  # MB
    disk: _Count = 0  # MB
    vram: _Count | None = None  # MB; some modules put it here instead of in gpus

    @property
    def max_vram(self) -> int:
        """The largest VRAM (MB) any listed GPU, or ``machine.vram``, asks for (0: none)."""
        return max([gpu.vram for gpu in self.gpus] + [self.vram or 0])


class DockerSpec(GoModel):
    """The container to run (Bacalhau's ``Spec.Docker`` or ``EngineSpec.Params``)."""

    image: StrictStr = Field("", alias="Image")
    entrypoint: tuple[StrictStr, ...] = Field((), alias="Entrypoint")
    environment_variables: tuple[StrictStr, ...] = Field((), alias="EnvironmentVariables")
    parameters: tuple[StrictStr, ...] = Field((), alias="Parameters")
    working_directory: StrictStr = Field("", alias="WorkingDirectory")

    @property
    def is_pinned(self) -> bool:
        """Whether the image is pinned by digest (``image@sha256:...``)."""
        return "@sha256:" in self.image

    @property
    def environment(self) -> dict[str, str]:
        """``EnvironmentVariables`` as a dict: ``KEY=VALUE`` split on the first
        ``=``; an entry without ``=`` is ``KEY`` with an empty value (never the
        provider's own variable of that name); a later duplicate wins, as in Docker."""
        return dict(item.partition("=")[::2] for item in self.environment_variables)

    def problems(self, where: str) -> list[tuple[str, str]]:
        """``(field path, reason)`` for everything that stops this container from
        running (what the original finds out only when it runs); ``where`` is
        this section's path (``job.Spec.Docker``)."""
        found: list[tuple[str, str]] = []
        image = self.image
        if not image:
            found.append((where + ".Image", "no container image: set Docker.Image or EngineSpec.Params.Image"))
        elif image != image.strip() or any(char.isspace() or char == "\x00" for char in image):
            found.append((where + ".Image", f"invalid image reference {image!r}"))
        for index, item in enumerate(self.environment_variables):
            if not item.partition("=")[0] or "\x00" in item:
                found.append((f"{where}.EnvironmentVariables[{index}]",
                              f"an environment variable needs a name and no NUL characters, got {item[:60]!r}"))
        for name, values in (("Entrypoint", self.entrypoint), ("Parameters", self.parameters)):
            for index, item in enumerate(values):
                if "\x00" in item:
                    found.append((f"{where}.{name}[{index}]", "arguments must not contain NUL characters"))
        if self.working_directory and not self.working_directory.startswith("/"):
            found.append((where + ".WorkingDirectory",
                          f"WorkingDirectory must be an absolute path, got {self.working_directory!r}"))
        return found


class EngineSpec(GoModel):
    """Bacalhau's ``Spec.EngineSpec``: ``{"Type": "docker", "Params": {...}}``."""

    type: StrictStr = Field("", alias="Type")
    params: DockerSpec = Field(default_factory=lambda: DockerSpec.model_validate({}), alias="Params")

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value.lower() not in ("", "docker"):
            raise ValueError(f"unsupported engine {value!r} (only docker)")
        return value


class NetworkSpec(GoModel):
    """Network access of the container: ``None`` (default), ``Full`` or ``HTTP``."""

    type: Literal["None", "Full", "HTTP"] = Field("None", alias="Type")
    domains: tuple[StrictStr, ...] = Field((), alias="Domains")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        if isinstance(value, str):
            canonical = {"": "None", "none": "None", "full": "Full", "http": "HTTP"}
            if value.lower() not in canonical:
                raise ValueError(f"unknown network type {value!r} (None, Full or HTTP)")
            return canonical[value.lower()]
        return value

    @model_validator(mode="after")
    def _domains(self) -> NetworkSpec:
        if self.type == "None" and self.domains:
            raise ValueError("Domains given but network Type is None")
        return self


class OutputSpec(GoModel):
    """A directory of the container collected as a result (``Name`` and ``Path``)."""

    name: StrictStr = Field(alias="Name", min_length=1)
    path: StrictStr = Field(alias="Path")

    @property
    def runnable_path(self) -> bool:
        """Whether ``Path`` can be mounted: absolute, without ``..`` (checked at run time)."""
        return self.path.startswith("/") and ".." not in self.path.split("/")


class ResourcesSpec(GoModel):
    """``Spec.Resources``, parsed: milli-CPUs, bytes and a GPU count (``None``: unset)."""

    cpu_millis: int | None = Field(None, alias="CPU")
    memory_bytes: int | None = Field(None, alias="Memory")
    disk_bytes: int | None = Field(None, alias="Disk")
    gpu_count: int | Literal["all"] | None = Field(None, alias="GPU")

    @field_validator("cpu_millis", mode="before")
    @classmethod
    def _cpu(cls, value: object) -> int | None:
        return parse_cpu(value)

    @field_validator("memory_bytes", "disk_bytes", mode="before")
    @classmethod
    def _bytes(cls, value: object) -> int | None:
        return parse_bytes(value)

    @field_validator("gpu_count", mode="before")
    @classmethod
    def _gpu(cls, value: object) -> int | Literal["all"] | None:
        return parse_gpu(value)


class JobSpecBody(GoModel):
    """Bacalhau V1beta1 ``Spec``; read the container from :attr:`docker`."""

    engine: StrictStr = Field("", alias="Engine")
    docker_section: DockerSpec | None = Field(None, alias="Docker")
    engine_spec: EngineSpec | None = Field(None, alias="EngineSpec")
    network: NetworkSpec = Field(default_factory=lambda: NetworkSpec.model_validate({}), alias="Network")
    outputs: tuple[OutputSpec, ...] = Field((), alias="Outputs")
    resources: ResourcesSpec = Field(default_factory=lambda: ResourcesSpec.model_validate({}), alias="Resources")
    timeout: _Seconds | None = Field(None, alias="Timeout")
    _docker: DockerSpec = PrivateAttr()

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if value.lower() not in ("", "docker"):
            raise ValueError(f"unsupported Engine {value!r} (only Docker)")
        return value

    @field_validator("outputs")
    @classmethod
    def _unique_outputs(cls, value: tuple[OutputSpec, ...]) -> tuple[OutputSpec, ...]:
        names = [output.name for output in value]
        if len(set(names)) != len(names):
            raise ValueError(f"output names must be unique, got {names}")
        return value

    @model_validator(mode="after")
    def _normalise_docker(self) -> JobSpecBody:
        empty = DockerSpec.model_validate({})
        section = self.docker_section or empty
        params = self.engine_spec.params if self.engine_spec else empty
        if section != empty and params != empty and section != params:
            raise ValueError("Docker and EngineSpec.Params both describe a container and disagree")
        self._docker = section if section != empty else params
        return self

    @property
    def docker(self) -> DockerSpec:
        """The container, from ``Docker`` or ``EngineSpec.Params`` (whichever is given)."""
        return self._docker

    @property
    def docker_path(self) -> str:
        """Where :attr:`docker` was given: ``job.Spec.Docker`` or ``job.Spec.EngineSpec.Params``."""
        if self.engine_spec is not None and self._docker is self.engine_spec.params:
            return "job.Spec.EngineSpec.Params"
        return "job.Spec.Docker"


class JobSpec(GoModel):
    """The ``job`` block: a Bacalhau V1beta1 job."""

    api_version: StrictStr = Field("V1beta1", alias="APIVersion")
    spec: JobSpecBody = Field(alias="Spec")


def _plain_file_names(value: tuple[str, ...]) -> tuple[str, ...]:
    for name in value:
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise ValueError(f"input file names must be plain file names (no '/', '..' or empty), got {name!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"input file names must be unique, got {list(value)}")
    return value


class InputFilesSpec(GoModel):
    """Files the job creator must (``required``) or may (``optional``) supply; mounted at ``/inputs``."""

    required: tuple[StrictStr, ...] = ()
    optional: tuple[StrictStr, ...] = ()

    @field_validator("required", "optional")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _plain_file_names(value)

    @model_validator(mode="after")
    def _disjoint(self) -> InputFilesSpec:
        both = sorted(set(self.required) & set(self.optional))
        if both:
            raise ValueError(f"files listed as both required and optional: {both}")
        return self


class ModuleSpec(GoModel):
    """A rendered module: machine requirements, the job, input files, timeout, and
    how its results are verified (``verification``, :mod:`lilypad.verification.spec`)."""

    machine: MachineSpec = Field(default_factory=MachineSpec)
    job: JobSpec
    input_files: InputFilesSpec = Field(default_factory=InputFilesSpec, alias="inputFiles")
    execution_timeout_seconds: Annotated[StrictInt, Field(ge=0)] | None = Field(
        None, alias="executionTimeoutSeconds"
    )  # 0: not set, as in the original (its default applies)
    verification: VerificationSpec = Field(default_factory=VerificationSpec)  # a lilypad extension

    @property
    def docker(self) -> DockerSpec:
        """Shortcut for ``job.spec.docker``."""
        return self.job.spec.docker


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path


def _spec_error(error: ValidationError) -> SpecError:
    errors = error.errors(include_url=False)
    first = errors[0]
    reason = str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if first["type"] == "missing":
        reason = "required field is missing"
    if len(errors) > 1:
        reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return SpecError(_loc_to_path(tuple(first["loc"])), reason)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _load_json(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        excerpt = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        raise SpecJSONError(exc.lineno, exc.colno, exc.msg, excerpt) from None
    except ValueError as exc:
        raise SpecJSONError(1, 1, str(exc)) from None


def parse_spec(source: str | bytes | Mapping[str, Any]) -> ModuleSpec:
    """Parse a module spec from JSON text or an already-decoded dict.

    Raises :class:`SpecJSONError` for malformed JSON (with line and column) and
    :class:`SpecError` naming the offending field's path otherwise.
    """
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError("", f"the spec is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    data = _load_json(source) if isinstance(source, str) else source
    if not isinstance(data, Mapping):
        raise SpecError("", f"the spec must be a JSON object, not {type(data).__name__}")
    try:
        return ModuleSpec.model_validate(data)
    except ValidationError as exc:
        raise _spec_error(exc) from None


def check_runnable(spec: ModuleSpec) -> None:
    """Raise :class:`SpecError` (naming the field) if ``spec``'s job cannot run:
    the checks the original makes only when the job runs, made here when a job
    is offered, agreed to or run (see the module docstring)."""
    body = spec.job.spec
    problems = body.docker.problems(body.docker_path)
    for index, output in enumerate(body.outputs):
        if not output.runnable_path:
            problems.append((f"job.Spec.Outputs[{index}].Path",
                             f"output Path must be an absolute path without '..', got {output.path!r}"))
    if problems:
        path, reason = problems[0]
        if len(problems) > 1:
            reason += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        raise SpecError(path, reason)


def render_spec(template_text: str, inputs: Mapping[str, str]) -> ModuleSpec:
    """Render a module template with ``inputs`` and parse the result.

    Raises :class:`~lilypad.exceptions.InputError`, :class:`~lilypad.exceptions.TemplateError`,
    :class:`SpecJSONError` or :class:`SpecError`.
    """
    return parse_spec(render_template(template_text, validate_inputs(inputs)))
