"""The pack as the engine runs it: its own process, spoken to over gRPC.

``pulumi preview --policy-pack policy`` starts ``policy/__main__.py``, reads the
port it prints, and calls its Analyze (each resource) and AnalyzeStack (all of
them) with the resources' inputs. Here the test is the engine: it starts the
pack with the policy SDK's real server and sends it what the program declares.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.harness import ROOT, Declared, run_program, site_config


@pytest.fixture(scope="module")
def pack() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    process = subprocess.Popen(
        [sys.executable, "__main__.py"],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline().decode().strip())
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def struct(raw: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(json.loads(json.dumps(raw, default=str)), message)
    return message


def options(resource: Declared) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(protect=resource.protect)


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, resource: Declared) -> list[str]:
    request = analyzer_pb2.AnalyzeRequest(
        type=resource.type,
        properties=struct(resource.raw_inputs),
        urn=resource.urn,
        name=resource.name,
        options=options(resource),
    )
    response = stub.Analyze(request)
    return [f"{d.policyName}: {d.message}" for d in response.diagnostics]


def analyze_stack(stub: analyzer_pb2_grpc.AnalyzerStub, resources: list[Declared]) -> list[str]:
    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            analyzer_pb2.AnalyzerResource(
                type=r.type,
                properties=struct(r.raw_inputs),
                urn=r.urn,
                name=r.name,
                options=options(r),
            )
            for r in resources
        ]
    )
    return [f"{d.policyName}: {d.message}" for d in stub.AnalyzeStack(request).diagnostics]


def test_the_pack_passes_everything_the_program_declares(
    pack: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    program = run_program()
    custom = [r for r in program.declared if not r.type.startswith("hemma:")]
    found = [d for r in custom for d in analyze(pack, r)]
    assert found == []
    assert analyze_stack(pack, custom) == []


def test_the_pack_refuses_a_container_that_breaks_a_guardrail(
    pack: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    program = run_program(site_config())
    grafana = program.container("grafana")
    grafana.raw_inputs = {
        **grafana.raw_inputs,
        "ports": [{"internal": 3000, "external": 3000, "ip": "0.0.0.0"}],
        "restart": "no",
    }
    found = analyze(pack, grafana)
    assert any(
        d.startswith("no-public-ports:") and "grafana publishes 3000 on 0.0.0.0" in d for d in found
    )
    assert any(d.startswith("restart-and-health-check:") for d in found)
    stray = program.container("skriptoteket-web")
    stray.raw_inputs = {**stray.raw_inputs, "networksAdvanced": [{"name": "elsewhere"}]}
    proxy = program.container("nginx-proxy")
    assert any(
        f"{stray.inputs['name']} is routed but shares no network with nginx-proxy" in d
        for d in analyze_stack(pack, [proxy, stray])
    )
