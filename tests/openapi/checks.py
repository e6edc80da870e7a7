"""What the schemathesis tests hold every answer to."""

from schemathesis import checks

# What every answer is held to. Not ``positive_data_acceptance``: a request the schema
# allows may still be refused for what it names (an unknown plan, a message type the
# target cannot take), and that is a 4xx by design.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
