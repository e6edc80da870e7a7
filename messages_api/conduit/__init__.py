"""Harbor's Conduit-compatible API: ``POST /api/<method.name>`` (docs/harbormaster.md §6;
docs/design.md §4.5).

- ``transport``: decodes the three request encodings and writes the envelope.
- ``auth``: API tokens (``__conduit__.token`` / ``api.token``).
- ``params``: the strict type checks Conduit applies to parameters.
- ``registry``: the method table that ``conduit.query`` describes.
- ``search``: the generic ``*.search`` machinery (constraints, cursor, result shape).
- ``methods/``: one module per method group.

The methods adapt their input to the same engine calls the REST API makes.
"""
