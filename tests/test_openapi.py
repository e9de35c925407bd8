"""The OpenAPI document describes every endpoint fully: schemas, examples and problems."""

TITLES = {"zh": "派单", "en": "Paidan"}


def operations(client):
    document = client.get("/api/v1/openapi.json").get_json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield f"{method.upper()} {path}", item.get("parameters", []), operation


def test_every_endpoint_has_schemas_and_examples_for_its_request_and_answer(client):
    found = list(operations(client))
    assert len(found) >= 45
    for name, path_parameters, operation in found:
        assert operation.get("summary") or operation.get("description"), name
        responses = operation["responses"]
        success = [status for status in responses if status.startswith("2")]
        assert success, f"{name}: no success response"
        for status in success:
            content = responses[status].get("content", {}).get("application/json")
            if content is not None:
                assert "schema" in content and "example" in content, (name, status)
        if "requestBody" in operation:
            for media, body in operation["requestBody"]["content"].items():
                assert "schema" in body, (name, media)
                if media == "application/json":
                    assert "example" in body, (name, media)
        for parameter in path_parameters:
            assert "example" in parameter or "example" in parameter.get("schema", {}), (
                name,
                parameter["name"],
            )


def test_every_endpoint_documents_its_problems_as_problem_json(client):
    for name, _, operation in operations(client):
        problems = [status for status in operation["responses"] if status[0] == "4"]
        assert problems, f"{name}: no problem responses documented"
        for status in problems:
            content = operation["responses"][status].get("content", {})
            assert "application/problem+json" in content, (name, status)


def test_the_document_is_served_with_swagger_ui(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert TITLES["zh"] in document["info"]["title"]
    assert client.get("/api/docs").status_code == 200
