"""Schemathesis against the running CPMS: for every operation of the served document, generated
valid and invalid requests never get a 5xx, and every answer matches the document (status code,
content type, body schema)."""
from __future__ import annotations

import asyncio

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance, not_a_server_error, response_schema_conformance, status_code_conformance,
)

from shared.app import SETTINGS
from tests.ops.apidoc import served_document
from tests.ops.queues import drained, troubled
from tests.support import ADMIN_TOKEN, GATEWAY_KEY

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 15}


def _key_for(path: str) -> str:
    return GATEWAY_KEY if path.startswith("/v1/gateway/") else ADMIN_TOKEN


def fuzz(document: dict, base_url: str) -> list[str]:
    """Run every operation in both generation modes; returns one line per failing operation."""
    schema = schemathesis.openapi.from_dict(document)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = {"Authorization": f"Bearer {_key_for(operation.path)}"}
        described = document["paths"][operation.path][operation.method.lower()]
        has_input = "parameters" in described or "requestBody" in described
        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and not has_input:
                continue  # nothing to make invalid

            @hypothesis.settings(
                max_examples=examples, deadline=None, database=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def run(case) -> None:
                case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=40)

            try:
                run()
            except Exception as exc:  # the check failures, with the request that caused them
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}")
    return failures


async def test_generated_requests_get_no_5xx_and_conform_to_the_document(make_api):
    api = await make_api()
    document = (await served_document(api)).document
    base_url = str(api.client.make_url("")).rstrip("/")
    failures = await asyncio.to_thread(fuzz, document, base_url)
    assert not failures, "\n\n".join(failures)

    # What was accepted could also be applied: the consumers drain their queues and dead-letter nothing.
    prefix = api.client.app[SETTINGS].amqp_prefix
    depths = await drained(prefix)
    assert all(count == 0 for count in depths.values()), depths
    assert not any(troubled(prefix).values()), troubled(prefix)
