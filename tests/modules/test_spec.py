"""The module spec: parsing the rendered JSON, and render_spec end to end."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lilypad.exceptions import InputError, SpecError, SpecJSONError, TemplateError
from lilypad.modules.spec import (
    DockerSpec,
    ModuleSpec,
    check_runnable,
    parse_bytes,
    parse_cpu,
    parse_gpu,
    parse_spec,
    render_spec,
)

DIGEST = "sha256:" + "ab" * 32

# Shaped like lilypad-module-cowsay (Spec.Docker, inputFiles, tolerated extras).
COWSAY_TEMPLATE = """{
  "machine": {"gpu": 0, "cpu": 1000, "ram": 100},
  "inputFiles": {"required": ["cat.jpg"], "optional": ["cat_facts.txt"]},
  "job": {
    "APIVersion": "V1beta1",
    "Spec": {
      "Deal": {"Concurrency": 1},
      "Docker": {
        "Entrypoint": ["cowsay", {{if .Message}}{{.Message}}{{else}}"Pass me a Message"{{end}}],
        "Image": "grycap/cowsay:latest@%s"
      },
      "Engine": "Docker",
      "Network": {"Type": "None"},
      "PublisherSpec": {"Type": "IPFS"},
      "Resources": {"GPU": ""},
      "Timeout": 1800,
      "Verifier": "Noop"
    }
  }
}
""".replace("%s", DIGEST)

# Shaped like lilypad-module-ollama-pipeline: an empty "Docker" plus an EngineSpec,
# subst inside EnvironmentVariables, "Entrypoint": null.
ENGINE_SPEC_TEMPLATE = """{
  "machine": {"gpu": 1, "cpu": 1000, "ram": 8000},
  "job": {
    "APIVersion": "V1beta1",
    "Metadata": {"CreatedAt": "0001-01-01T00:00:00Z", "Requester": {}},
    "Spec": {
      "Deal": {"Concurrency": 1},
      "Docker": {},
      "EngineSpec": {
        "Params": {
          "Entrypoint": null,
          "EnvironmentVariables": [
            {{- /* optional inputs */ -}}
            {{ if .Prompt }}"{{ subst "PROMPT=%s" .Prompt }}"{{ else }}"PROMPT=default"{{ end }},
            {{ if .Seed }}"{{ subst "SEED=%s" .Seed }}",{{ end }}
            "HF_HUB_OFFLINE=1"
          ],
          "Image": "zorlin/sdxl:v1.0-refiner-lilypad4",
          "Parameters": [],
          "WorkingDirectory": ""
        },
        "Type": "docker"
      },
      "Network": {"Type": "None"},
      "Outputs": [{"Name": "outputs", "Path": "/outputs"}],
      "PublisherSpec": {"Type": "ipfs"},
      "Resources": {"GPU": "1"},
      "Timeout": 1800,
      "Wasm": {"EntryModule": {}}
    }
  }
}
"""


def minimal(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Docker": {"Image": "img:1"}}
    body.update(spec)
    return {"job": {"APIVersion": "V1beta1", "Spec": body}}


# --------------------------------------------------------------------------
# Real module shapes
# --------------------------------------------------------------------------


def test_cowsay_shape_renders_and_parses() -> None:
    spec = render_spec(COWSAY_TEMPLATE, {"Message": "moo"})
    assert isinstance(spec, ModuleSpec)
    assert spec.machine.cpu == 1000 and spec.machine.ram == 100 and spec.machine.gpu == 0
    assert spec.docker.image == f"grycap/cowsay:latest@{DIGEST}"
    assert spec.docker.is_pinned
    assert spec.docker.entrypoint == ("cowsay", "moo")
    assert spec.job.spec.network.type == "None"
    assert spec.job.spec.timeout == 1800
    assert spec.job.spec.resources.gpu_count is None
    assert spec.input_files.required == ("cat.jpg",)
    assert spec.input_files.optional == ("cat_facts.txt",)


def test_cowsay_shape_cannot_be_injected() -> None:
    evil = 'moo"], "Image": "evil:latest", "x": ["'
    spec = render_spec(COWSAY_TEMPLATE, {"Message": evil})
    assert spec.docker.entrypoint == ("cowsay", evil)
    assert spec.docker.image.startswith("grycap/cowsay")


def test_cowsay_shape_without_input_uses_else_branch() -> None:
    assert render_spec(COWSAY_TEMPLATE, {}).docker.entrypoint == ("cowsay", "Pass me a Message")


def test_engine_spec_shape_is_normalised_to_docker() -> None:
    spec = render_spec(ENGINE_SPEC_TEMPLATE, {"Prompt": 'a "quoted" cat', "Seed": "7"})
    docker = spec.docker
    assert isinstance(docker, DockerSpec)
    assert docker.image == "zorlin/sdxl:v1.0-refiner-lilypad4"
    assert docker.entrypoint == ()
    assert docker.environment_variables == ('PROMPT=a "quoted" cat', "SEED=7", "HF_HUB_OFFLINE=1")
    assert docker.environment == {"PROMPT": 'a "quoted" cat', "SEED": "7", "HF_HUB_OFFLINE": "1"}
    assert [(o.name, o.path) for o in spec.job.spec.outputs] == [("outputs", "/outputs")]
    assert spec.job.spec.resources.gpu_count == 1
    assert spec.machine.gpu == 1


def test_engine_spec_shape_defaults() -> None:
    spec = render_spec(ENGINE_SPEC_TEMPLATE, {})
    assert spec.docker.environment_variables == ("PROMPT=default", "HF_HUB_OFFLINE=1")


def test_docker_and_engine_spec_shapes_give_the_same_docker_spec() -> None:
    params = {
        "Image": "repo/img@" + DIGEST,
        "Entrypoint": ["python", "run.py"],
        "EnvironmentVariables": ["A=1"],
        "Parameters": ["--x"],
        "WorkingDirectory": "/work",
    }
    from_docker = parse_spec(minimal(Docker=params))
    from_engine = parse_spec(minimal(Docker=None, EngineSpec={"Type": "docker", "Params": params}))
    assert from_docker.docker == from_engine.docker
    assert from_docker.docker.working_directory == "/work"
    assert from_docker.docker.parameters == ("--x",)


def test_identical_docker_and_engine_spec_are_accepted() -> None:
    params = {"Image": "img:1", "Entrypoint": ["a"]}
    spec = parse_spec(minimal(Docker=params, EngineSpec={"Type": "docker", "Params": params}))
    assert spec.docker.entrypoint == ("a",)


def test_go_style_case_insensitive_keys_and_vram_in_machine() -> None:
    # Public modules write "outputs"/"path" in lower case and "vram" directly in machine.
    data = {
        "machine": {"gpu": 1, "vram": 24000, "CPU": 8000, "ram": 16000},
        "job": {"APIVersion": "V1beta1", "spec": {
            "docker": {"image": "img:1", "entrypoint": ["/app/run", "x"]},
            "engine": "docker",
            "outputs": [{"Name": "outputs", "StorageSource": "IPFS", "path": "/outputs"}],
            "Resources": {"GPU": "1", "CPU": "8", "Memory": "16Gb"},
        }},
    }
    spec = parse_spec(json.dumps(data))
    assert spec.machine.cpu == 8000
    assert spec.machine.max_vram == 24000
    assert spec.docker.entrypoint == ("/app/run", "x")
    assert spec.job.spec.outputs[0].path == "/outputs"
    resources = spec.job.spec.resources
    assert (resources.cpu_millis, resources.memory_bytes, resources.gpu_count) == (8000, 16 * 10**9, 1)


def test_gpus_list() -> None:
    spec = parse_spec({"machine": {"gpu": 1, "gpus": [{"name": "A100", "vendor": "nvidia", "vram": 40000},
                                                      {"vram": 24000}]}, **minimal()})
    assert spec.machine.gpus[0].name == "A100"
    assert spec.machine.gpus[1].vendor == ""
    assert spec.machine.max_vram == 40000


def test_network_types() -> None:
    assert parse_spec(minimal(Network={"Type": "full"})).job.spec.network.type == "Full"
    http = parse_spec(minimal(Network={"Type": "HTTP", "Domains": ["example.com"]})).job.spec.network
    assert (http.type, http.domains) == ("HTTP", ("example.com",))
    assert parse_spec(minimal()).job.spec.network.type == "None"


def test_execution_timeout_seconds() -> None:
    assert parse_spec({**minimal(), "executionTimeoutSeconds": 60}).execution_timeout_seconds == 60
    assert parse_spec(minimal()).execution_timeout_seconds is None


# --------------------------------------------------------------------------
# Resource strings
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "millis"),
    [("1", 1000), ("0.5", 500), ("8", 8000), ("1000m", 1000), ("250m", 250), (" 2 ", 2000),
     ("0.0001", 1), (".5", 500), (2, 2000), (1.5, 1500), ("", None), (None, None)],
)
def test_parse_cpu(text: object, millis: int | None) -> None:
    assert parse_cpu(text) == millis


@pytest.mark.parametrize(
    ("text", "size"),
    [("16Gb", 16 * 10**9), ("512mb", 512 * 10**6), ("24000MB", 24 * 10**9), ("2GiB", 2 * 2**30),
     ("1Gi", 2**30), ("8", 8), ("100 kb", 100_000), ("1.5G", 1_500_000_000), ("3b", 3), ("1TB", 10**12),
     ("", None)],
)
def test_parse_bytes(text: str, size: int | None) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize(("text", "count"), [("1", 1), ("0", 0), (" 2", 2), ("", None), ("all", "all"), ("ALL", "all")])
def test_parse_gpu(text: str, count: int | None) -> None:
    assert parse_gpu(text) == count


@pytest.mark.parametrize(
    ("function", "text", "message"),
    [(parse_cpu, "lots", "invalid CPU quantity"), (parse_cpu, "-1", "invalid CPU quantity"),
     (parse_cpu, "1k", "invalid CPU quantity"), (parse_cpu, True, "boolean"),
     (parse_bytes, "16 parsecs", "invalid byte size"), (parse_bytes, "-5mb", "invalid byte size"),
     (parse_gpu, "0.5", "invalid GPU count"), (parse_gpu, "one", "invalid GPU count"),
     (parse_gpu, [1], "must be a string")],
)
def test_resource_strings_reject_garbage(function: Any, text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        function(text)


def test_bad_resource_names_its_field() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(minimal(Resources={"CPU": "1", "Memory": "lots"}))
    assert info.value.path == "job.Spec.Resources.Memory"
    assert "lots" in str(info.value)


# --------------------------------------------------------------------------
# inputFiles
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/etc/passwd", "../x", "a\\b", "x\x00"])
def test_input_files_must_be_plain_names(name: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({**minimal(), "inputFiles": {"required": ["ok.txt", name]}})
    assert info.value.path == "inputFiles.required"


def test_input_files_reject_duplicates_and_overlap() -> None:
    with pytest.raises(SpecError, match="unique"):
        parse_spec({**minimal(), "inputFiles": {"optional": ["a", "a"]}})
    with pytest.raises(SpecError, match="both required and optional"):
        parse_spec({**minimal(), "inputFiles": {"required": ["a"], "optional": ["a"]}})


def test_input_files_accept_plain_names() -> None:
    spec = parse_spec({**minimal(), "inputFiles": {"required": ["cat.jpg", ".hidden", "a b.txt"]}})
    assert spec.input_files.required == ("cat.jpg", ".hidden", "a b.txt")
    assert parse_spec(minimal()).input_files.required == ()


# --------------------------------------------------------------------------
# Errors name their field
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({}, "job", "missing"),
        ({"job": {}}, "job.Spec", "missing"),
        (minimal(Docker={"Image": "x", "Entrypoint": ["a", 1]}), "job.Spec.Docker.Entrypoint[1]", "string"),
        (minimal(Engine="Wasm"), "job.Spec.Engine", "only Docker"),
        (minimal(EngineSpec={"Type": "wasm", "Params": {}}), "job.Spec.EngineSpec.Type", "only docker"),
        (minimal(Docker={"Image": "a"}, EngineSpec={"Type": "docker", "Params": {"Image": "b"}}),
         "job.Spec", "disagree"),
        (minimal(Network={"Type": "Bridge"}), "job.Spec.Network.Type", "unknown network type"),
        (minimal(Network={"Type": "None", "Domains": ["x.com"]}), "job.Spec.Network", "Domains"),
        (minimal(Outputs=[{"Path": "/o"}]), "job.Spec.Outputs[0].Name", "missing"),
        (minimal(Outputs=[{"Name": "o", "Path": "/a"}, {"Name": "o", "Path": "/b"}]), "job.Spec.Outputs",
         "unique"),
        (minimal(Timeout="soon"), "job.Spec.Timeout", "number"),
        (minimal(Timeout=-1), "job.Spec.Timeout", "greater than or equal"),
        ({"machine": {"gpu": -1}, **minimal()}, "machine.gpu", "greater than or equal"),
        ({"machine": {"cpu": "1000"}, **minimal()}, "machine.cpu", "integer"),
        ({"machine": {"gpus": [{"vram": "big"}]}, **minimal()}, "machine.gpus[0].vram", "integer"),
        ({"executionTimeoutSeconds": -1, **minimal()}, "executionTimeoutSeconds", "greater than or equal"),
    ],
)
def test_spec_errors_name_the_field_path(data: dict[str, Any], path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert info.value.path == path
    assert fragment in info.value.reason
    assert path in str(info.value)


# What the original loads and finds out only when the job runs: it loads here too, and
# check_runnable (called when a job is offered, agreed to or run) says what is wrong.
@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        (minimal(Docker={}), "job.Spec.Docker.Image", "no container image"),
        ({"job": {"Spec": {"EngineSpec": {"Type": "docker", "Params": {"Entrypoint": ["x"]}}}}},
         "job.Spec.EngineSpec.Params.Image", "no container image"),
        (minimal(Docker={"Image": "a b"}), "job.Spec.Docker.Image", "invalid image"),
        (minimal(Docker={"Image": "x", "EnvironmentVariables": ["=value"]}),
         "job.Spec.Docker.EnvironmentVariables[0]", "needs a name"),
        (minimal(Docker={"Image": "x", "EnvironmentVariables": ["A=1", "B=\x00"]}),
         "job.Spec.Docker.EnvironmentVariables[1]", "NUL"),
        (minimal(Docker={"Image": "x", "Parameters": ["a\x00"]}), "job.Spec.Docker.Parameters[0]", "NUL"),
        (minimal(Docker={"Image": "x", "WorkingDirectory": "rel"}), "job.Spec.Docker.WorkingDirectory",
         "absolute"),
        (minimal(Outputs=[{"Name": "o", "Path": "relative"}]), "job.Spec.Outputs[0].Path", "absolute"),
        (minimal(Outputs=[{"Name": "o", "Path": "/a/../etc"}]), "job.Spec.Outputs[0].Path", "'..'"),
        (minimal(Docker={"WorkingDirectory": "rel"}), "job.Spec.Docker.Image", "(and 1 more problem)"),
    ],
)
def test_run_time_problems_load_and_are_named_by_check_runnable(data: dict[str, Any], path: str,
                                                                fragment: str) -> None:
    spec = parse_spec(data)
    with pytest.raises(SpecError) as info:
        check_runnable(spec)
    assert info.value.path == path
    assert fragment in info.value.reason


def test_loads_what_the_original_loads() -> None:
    spec = parse_spec({**minimal(Docker={"Image": "x", "EnvironmentVariables": ["hello", "A=1=2", "A=3"]},
                                 Resources={"GPU": "all"}), "executionTimeoutSeconds": 0})
    assert spec.docker.environment == {"hello": "", "A": "3"}  # no '=': empty, never the provider's value
    assert spec.job.spec.resources.gpu_count == "all"
    assert spec.execution_timeout_seconds == 0
    check_runnable(spec)
    dumped = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["job"]["Spec"]["Resources"]["GPU"] == "all"


def test_spec_must_be_an_object() -> None:
    with pytest.raises(SpecError, match="JSON object"):
        parse_spec("[1, 2]")


def test_json_errors_report_line_and_column() -> None:
    text = '{\n  "job": {\n    "Spec": {"Docker": {"Image": "x"},}\n  }\n}'
    with pytest.raises(SpecJSONError) as info:
        parse_spec(text)
    assert (info.value.line, info.value.column) == (3, 39)
    assert "line 3, column 39" in str(info.value)
    assert '"Spec"' in info.value.excerpt


def test_non_json_constants_are_rejected() -> None:
    with pytest.raises(SpecJSONError, match="NaN"):
        parse_spec('{"job": {"Spec": {"Docker": {"Image": "x"}, "Timeout": NaN}}}')


def test_bytes_input_is_decoded() -> None:
    assert parse_spec(json.dumps(minimal()).encode()).docker.image == "img:1"
    with pytest.raises(SpecError, match="UTF-8"):
        parse_spec(b"\xff{}")


def test_render_spec_reports_each_layer() -> None:
    with pytest.raises(TemplateError):
        render_spec("{{range .X}}{{end}}", {})
    with pytest.raises(InputError):
        render_spec(COWSAY_TEMPLATE, {"bad key": "x"})
    with pytest.raises(SpecJSONError) as info:
        render_spec('{\n"job": {{.Message}} {{.Message}}}', {"Message": "x"})
    assert info.value.line == 2
    with pytest.raises(SpecError) as spec_info:
        render_spec('{"job": {"Spec": {"Docker": {"Image": "x"}, "Timeout": {{.T}}}}}', {"T": "10"})
    assert spec_info.value.path == "job.Spec.Timeout"


def test_models_are_immutable() -> None:
    spec = parse_spec(minimal())
    with pytest.raises(Exception, match="frozen"):
        spec.machine = spec.machine  # type: ignore[misc]
