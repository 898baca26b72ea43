"""Hostile user modules for ``--module``: each misbehaves in one way attncli must fence."""
