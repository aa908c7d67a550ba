"""Checking real responses against the served OpenAPI document."""
from __future__ import annotations

from typing import Any

import jsonschema_rs

from tests.support import Api


class ApiDoc:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def operations(self) -> set[tuple[str, str]]:
        return {(method.upper(), path) for path, item in self.document["paths"].items() for method in item}

    def response_schema(self, method: str, path: str, status: int, content_type: str) -> dict[str, Any]:
        responses = self.document["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path} answered {status}, which the document does not list"
        content = responses[str(status)]["content"]
        assert content_type in content, f"{method} {path} {status} answered {content_type}, the document lists {list(content)}"
        return content[content_type]["schema"]

    def check(self, api: Api, method: str, path_template: str, status: int, body: Any) -> Any:
        """Assert that the last response of `api` (status and body) is what the document promises."""
        response = api.last_response
        assert response.status == status, (response.status, body)
        schema = self.response_schema(method, path_template, status, response.content_type)
        validator = jsonschema_rs.Draft202012Validator(
            {**schema, "components": self.document["components"]}, validate_formats=True
        )
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, f"{method} {path_template} {status}: {errors}"
        return body


async def served_document(api: Api) -> ApiDoc:
    status, document = await api.anonymous("GET", "/openapi.json")
    assert status == 200, document
    return ApiDoc(document)
