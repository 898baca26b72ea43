"""attncli: build attention layers from flags and tell the truth about them.

Shapes, parameters, FLOPs and the permutation behaviour that makes positional encoding
necessary. The package is split into a pure core (``spec``, ``modules``, ``shapes``,
``flops``, ``permute``) that returns frozen dataclasses, renderers (``render``) that turn
them into a rich table, JSON or Markdown, and thin Typer commands (``cli``).
"""

__version__ = "0.1.0"
