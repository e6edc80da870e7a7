"""The SQL that a block of code ran, as tests read it."""

from harbor import named_reads


def statements_run(captured) -> list[str]:
    """The SQL of each query in ``captured`` (a ``CaptureQueriesContext``), in order, each
    named read (an ``EXECUTE`` of a prepared statement) as the statement it executes; call
    it on the connection that ran them (``named_reads.statement_of``)."""
    return [named_reads.statement_of(query["sql"]) for query in captured]
