"""``attncli.choices``: every choice once, and the CLI offers exactly those."""

from __future__ import annotations

from attncli import choices
from attncli.cli.common import Dtype, Format, Impl, Mask


def test_cli_enums_are_the_choices() -> None:
    assert [m.value for m in Impl] == list(choices.IMPLS)
    assert [m.value for m in Mask] == list(choices.MASKS)
    assert [m.value for m in Format] == list(choices.FORMATS)
    assert [m.value for m in Dtype] == list(choices.DTYPE_BYTES)


def test_every_stage_has_its_labels_and_closed_form() -> None:
    for stage in choices.STAGES:
        assert stage in choices.STAGE_LABELS and stage in choices.SHORT_STAGE_LABELS
        assert stage in choices.STAGE_ABBREVIATIONS and stage in choices.CLOSED_FORMS


def test_dtype_bytes_are_the_ieee_sizes() -> None:
    # IEEE 754 binary32 is 4 bytes (tf32 is a matmul mode over it), binary16 and bfloat16 2; the
    # OCP FP8 formats (E4M3, E5M2) 1.
    assert choices.DTYPE_BYTES == {"float32": 4, "tf32": 4, "float16": 2, "bfloat16": 2, "float8": 1}
