"""Renderers: the only part of attncli that imports rich.

Each report has one module here with a ``table`` (rich renderable) and a ``markdown`` (str)
function; its JSON comes from the report's own ``to_json``. :func:`emit` writes whichever the
user asked for to stdout or ``--output``.
"""

from attncli.render.common import emit, human, md_table

__all__ = ["emit", "human", "md_table"]
