"""The words of the permutation test: why a demonstration does not hold, the verdict, the notes.

Pure functions of the measured cases; no torch.
"""

from __future__ import annotations

from collections.abc import Sequence

from attncli.analyses.permute.results import SHOW_FEATURES, SHOW_TOKENS, Case, MaskCheck, RopeInfo
from attncli.layer.layout import layout_name, sequence_axis
from attncli.spec import AttnSpec


def reasons(spec: AttnSpec, cases: Sequence[Case], tol: float, degenerate: str | None,
             rope: RopeInfo | None) -> tuple[str, ...]:
    """Why the demonstration does not hold; empty when it does."""
    if degenerate is not None:
        return (f"degenerate request: {degenerate}; it proves nothing",)
    reasons: list[str] = []
    base = cases[0]
    if not base.equivariant:
        if spec.window is not None:
            reasons.append(
                f"the sliding window itself breaks the symmetry (no encoding: max diff {base.max_abs_diff:.3g} "
                f"> {tol:.3g}): query slot j may only see slots j-{spec.window - 1}..j, so the window carries "
                "order and the demonstration is no longer about positional encodings; run it without --window")
        elif spec.mask == "causal":
            reasons.append(
                f"the causal mask itself breaks the symmetry (no encoding: max diff {base.max_abs_diff:.3g} "
                f"> {tol:.3g}): query slot j may only see slots 0..j, so the mask carries order and the "
                "demonstration is no longer about positional encodings; run it with --mask none")
        elif spec.mask == "padding":
            reasons.append(
                f"the padding mask itself breaks the symmetry (no encoding: max diff {base.max_abs_diff:.3g} "
                f"> {tol:.3g}): it hides fixed slots, not tokens, so which tokens every query sees "
                "depends on where they sit; the demonstration is no longer about positional "
                "encodings; run it with --mask none")
        else:
            reasons.append(f"without encoding the layer is not equivariant (max diff {base.max_abs_diff:.3g} "
                           f"> tolerance {tol:.3g}); if this is rounding, raise --tolerance or use "
                           "--dtype float64")
    for case in cases[1:]:
        if case.equivariant:
            why = ""
            if case.encoding == "rope" and rope is not None and not rope.acts:
                why = (f": a head of {spec.head_dim} feature has no pair of features to rotate, so "
                       "RoPE is the identity here; give every head at least 2 features "
                       "(--dim >= 2 * --heads)")
            reasons.append(f"{case.encoding} did not break the symmetry (max diff {case.max_abs_diff:.3g} "
                           f"<= {tol:.3g}){why}")
    if rope is not None and rope.stand_in_max_abs_diff is not None and rope.stand_in_max_abs_diff > tol:
        reasons.append(f"the RoPE stand-in does not reproduce nn.MultiheadAttention (max diff "
                       f"{rope.stand_in_max_abs_diff:.3g}); the rope row is not trustworthy")
    return tuple(reasons)


def verdict(cases: Sequence[Case], tol: float, reasons: Sequence[str], fixed: Sequence[int]) -> str:
    if reasons:
        return "The demonstration does not hold: " + "; ".join(reasons) + "."
    base = cases[0]
    kept = ", ".join(f"b{i + 1}" for i in fixed)
    stays = f" A token left in place ({kept}) keeps its output." if fixed else ""
    text = (f"Without positional encoding the layer cannot tell token order: permuting the tokens "
            f"only permutes the outputs (max |f(Px) - P f(x)| = {base.max_abs_diff:.3g} <= "
            f"tolerance {tol:.3g}).{stays}")
    others = cases[1:]
    if others:
        broken = ", ".join(f"{c.encoding} ({c.max_abs_diff:.3g})" for c in others)
        text += (f" Each positional encoding breaks the symmetry (outputs depend on position): max difference "
                 f"{broken}, all above the tolerance.")
    return text


def notes(spec: AttnSpec, source: str, dtype: str, tol: float, show: bool,
           mask_check: MaskCheck | None, rope: RopeInfo | None) -> tuple[str, ...]:
    notes: list[str] = []
    axis = sequence_axis(spec)
    notes.append(f"Tokens are permuted along the sequence axis (axis {axis} of the "
                 f"{layout_name(spec)} input); P x = x[perm], so slot j of P x holds token perm[j].")
    if source == "seed":
        notes.append("These are the tokens of the classic permutation demo: (1, 2), (2, 3), (3, 4). That demo "
                     "fed them as a "
                     "(1, 3, 2) tensor to nn.MultiheadAttention(2, 1), whose default layout is "
                     "sequence-first: one token in three batch items, so its swap moved batch items, "
                     "not tokens, and proved nothing.")
    notes.append(f"Computed in {dtype}: without encoding f(Px) and P f(x) differ only by the order of "
                 f"summation (rounding), far below the tolerance {tol:.3g}; the encodings move outputs "
                 "by orders of magnitude more.")
    if mask_check is not None:
        kind = {"causal": "a causal mask lets slot j see only slots 0..j",
                "window": f"a sliding window lets slot j see only slots j-{(spec.window or 1) - 1}..j"}.get(
                    mask_check.mask, "a key padding mask hides the last slots")
        if mask_check.fixed_max_abs_diff > tol:
            effect = (f"so it is a source of order itself (no encoding, mask on its slots: max diff "
                      f"{mask_check.fixed_max_abs_diff:.3g})")
        else:
            effect = ("but this permutation keeps the tokens of the masked slots within the masked slots, "
                      "so the mask did not break the symmetry here")
        flag = f"--window {spec.window}" if mask_check.mask == "window" else f"--mask {mask_check.mask}"
        notes.append(f"{flag}: {kind}; it belongs to positions, not tokens, {effect}. "
                     f"Permuted together with the tokens the mask keeps the symmetry (max diff "
                     f"{mask_check.moved_max_abs_diff:.3g}).")
    if rope is not None:
        notes.append(f"RoPE is applied through {rope.via}" + (
            f"; without RoPE the stand-in reproduces it within {rope.stand_in_max_abs_diff:.3g}."
            if rope.stand_in_max_abs_diff is not None else "."))
    if spec.add_bias_kv or spec.add_zero_attn:
        notes.append("The extra bias/zero keys sit outside the sequence: they are not permuted and have "
                     "no position (RoPE leaves them unrotated).")
    if show and not spec.unbatched and spec.batch > 1:
        notes.append("Token outputs are shown for batch item 0.")
    if not show:
        notes.append(f"Token outputs are listed only up to {SHOW_TOKENS} tokens of {SHOW_FEATURES} "
                     "features (--format json has the per-token differences).")
    return tuple(notes)
