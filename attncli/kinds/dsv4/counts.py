"""DeepSeek-V4 attention counted as transformers 5.25 runs it: dense and effective MACs per stage,
parameters, and the KV cache after a step. Nothing here imports torch.

One layer, B sequences, L new tokens after N cached ones (S = N + L), sizes of
:class:`attncli.kinds.dsv4.sizes.Dsv4Sizes`, m the layer's compression rate:

- every layer (``DeepseekV4Attention.forward``): ``q_a_proj`` E x RQ, ``q_b_proj`` RQ x H*D,
  ``kv_proj`` E x D (one head, read as key and value), the grouped ``o_a_proj`` (G blocks of
  H*D/G x OR: H*D*OR per token) and ``o_b_proj`` G*OR x E. Attention runs over the window tensor
  (``cache.update`` returns the kept min(N, W - 1) keys plus the L new ones; L without a cache) and,
  on a compressed layer, T = floor(S / m) compressed entries concatenated after it:
  QK^T and weights x V are H*D MACs per (query, key) pair each (``eager_attention_forward``;
  ``repeat_kv`` broadcasts the one head to H). Sinks add a logit per head, no multiply-add.
- HCA (m = 128, ``DeepseekV4HCACompressor``; report 2.3.2 eqs. 20-23): ``kv_proj`` and
  ``gate_proj`` E x D each; the softmax-gated pooling of each window is elementwise.
- CSA (m = 4, ``DeepseekV4CSACompressor``; report 2.3.1 eqs. 9-12): ``kv_proj`` and ``gate_proj``
  E x 2D each (two overlapping series); its ``DeepseekV4Indexer`` (eqs. 13-17): its own compressor
  E x 2ID twice, ``q_b_proj`` RQ x IH*ID, ``weights_proj`` E x IH, and the scores q . k over ID for
  each of IH heads and T entries (``DeepseekV4IndexerScorer``: one matmul; the weighted head sum is
  elementwise).

Effective pairs (what each query at absolute position p attends to, the masks as transformers
builds them): the window min(p + 1, W) (``create_sliding_window_causal_mask``); HCA every closed
entry j < floor((p + 1) / m) (``block_bias``); CSA min(K, floor((p + 1) / m)) (the indexer's top-k,
``invalid`` entries dropped); the indexer scores floor((p + 1) / 4) entries per query.
"""

from __future__ import annotations

from attncli.kinds.dsv4.sizes import CSA, HCA, SLIDING, Dsv4Sizes

GATE_BYTES = 4
"""The overlap gates carry ``position_bias``, which transformers keeps in float32
(``_keep_in_fp32_modules_strict``), so ``chunk_gate + position_bias`` and the ``overlap_gate`` a
CSA cache keeps are float32."""


def compressed_entries(sizes: Dsv4Sizes, layer_type: str, s: int) -> int:
    """T: compressed entries after S tokens (one per closed window of m; 0 on a sliding layer)."""
    m = sizes.ratio(layer_type)
    return s // m if m else 0


def window_keys(sizes: Dsv4Sizes, seq: int, cached: int) -> int:
    """Keys of the window tensor attention reads: the kept min(N, W - 1) and the L new ones."""
    return min(cached, sizes.window - 1) + seq


def stages(layer_type: str) -> tuple[str, ...]:
    """The stages of a layer of ``layer_type``, in the order they run."""
    main = ("q_a_proj", "q_b_proj", "kv_proj")
    tail = ("qk", "av", "o_a_proj", "o_b_proj")
    if layer_type == SLIDING:
        return (*main, *tail)
    if layer_type == HCA:
        return (*main, "compressor_proj", *tail)
    return (*main, "compressor_proj", "indexer_proj", "indexer_q_proj", "indexer_weights", "indexer_scores", *tail)


def dense(sizes: Dsv4Sizes, layer_type: str, batch: int, seq: int, cached: int) -> dict[str, int]:
    """Dense MACs per stage, as transformers executes them (every pair of the tensors it multiplies)."""
    z, b, q_len = sizes, batch, seq
    bl, hd = batch * seq, z.heads * z.head_dim
    keys = window_keys(z, seq, cached) + compressed_entries(z, layer_type, cached + seq)
    out = {"q_a_proj": bl * z.hidden * z.q_lora_rank, "q_b_proj": bl * z.q_lora_rank * hd,
           "kv_proj": bl * z.hidden * z.head_dim}
    if layer_type == HCA:
        out["compressor_proj"] = 2 * bl * z.hidden * z.head_dim  # kv_proj and gate_proj, E x D
    if layer_type == CSA:
        t = compressed_entries(z, CSA, cached + seq)
        out["compressor_proj"] = 2 * bl * z.hidden * 2 * z.head_dim  # kv_proj and gate_proj, E x 2D
        out["indexer_proj"] = 2 * bl * z.hidden * 2 * z.index_head_dim  # the indexer's own, E x 2ID
        out["indexer_q_proj"] = bl * z.q_lora_rank * z.index_heads * z.index_head_dim
        out["indexer_weights"] = bl * z.hidden * z.index_heads
        out["indexer_scores"] = b * q_len * t * z.index_heads * z.index_head_dim
    out.update({"qk": b * q_len * keys * hd, "av": b * q_len * keys * hd,
                "o_a_proj": bl * hd * z.o_lora_rank, "o_b_proj": bl * z.o_groups * z.o_lora_rank * z.hidden})
    return out


def _window_sum(x: int, w: int) -> int:
    """sum of min(q, W) for q = 1 .. x."""
    return x * (x + 1) // 2 if x <= w else w * (w + 1) // 2 + (x - w) * w


def _floor_sum(x: int, m: int) -> int:
    """sum of floor(q / m) for q = 1 .. x."""
    a, r = divmod(x, m)
    return m * a * (a - 1) // 2 + a * (r + 1)


def _capped_floor_sum(x: int, m: int, k: int) -> int:
    """sum of min(K, floor(q / m)) for q = 1 .. x."""
    if x < k * m:
        return _floor_sum(x, m)
    return _floor_sum(k * m - 1, m) + k * (x - k * m + 1)


def visible_pairs(sizes: Dsv4Sizes, layer_type: str, seq: int, cached: int) -> dict[str, int]:
    """Per sequence and head: ``window`` (query, key) pairs of the sliding mask, ``compressed`` pairs
    the compressed entries leave (HCA all closed ones, CSA the top-k), ``scored`` the indexer's."""
    s, n = cached + seq, cached
    out = {"window": _window_sum(s, sizes.window) - _window_sum(n, sizes.window), "compressed": 0, "scored": 0}
    m = sizes.ratio(layer_type)
    if layer_type == HCA:
        out["compressed"] = _floor_sum(s, m) - _floor_sum(n, m)
    if layer_type == CSA:
        out["compressed"] = _capped_floor_sum(s, m, sizes.index_topk) - _capped_floor_sum(n, m, sizes.index_topk)
        out["scored"] = _floor_sum(s, m) - _floor_sum(n, m)
    return out


def effective(sizes: Dsv4Sizes, layer_type: str, batch: int, seq: int, cached: int) -> dict[str, int]:
    """The dense count with QK^T and weights x V charged only the visible pairs, and the indexer's
    scores only the entries each query's causal threshold leaves; the projections as they are."""
    out = dense(sizes, layer_type, batch, seq, cached)
    pairs = visible_pairs(sizes, layer_type, seq, cached)
    hd = sizes.heads * sizes.head_dim
    out["qk"] = out["av"] = batch * (pairs["window"] + pairs["compressed"]) * hd
    if layer_type == CSA:
        out["indexer_scores"] = batch * pairs["scored"] * sizes.index_heads * sizes.index_head_dim
    return out


def params(sizes: Dsv4Sizes, layer_type: str) -> dict[str, int]:
    """Parameters by part as ``DeepseekV4Attention`` holds them (no biases; RMSNorm weights and the
    float32 ``sinks`` and ``position_bias`` included), and ``total``."""
    z, hd = sizes, sizes.heads * sizes.head_dim
    out = {"q_a_proj": z.hidden * z.q_lora_rank, "q_a_norm": z.q_lora_rank, "q_b_proj": z.q_lora_rank * hd,
           "kv_proj": z.hidden * z.head_dim, "kv_norm": z.head_dim, "o_a_proj": hd * z.o_lora_rank,
           "o_b_proj": z.o_groups * z.o_lora_rank * z.hidden, "sinks": z.heads}
    m = z.ratio(layer_type)
    if layer_type == HCA:
        out["compressor"] = 2 * z.hidden * z.head_dim + m * z.head_dim + z.head_dim
    if layer_type == CSA:
        out["compressor"] = 2 * z.hidden * 2 * z.head_dim + m * 2 * z.head_dim + z.head_dim
        ix = z.index_head_dim
        out["indexer"] = (2 * z.hidden * 2 * ix + m * 2 * ix + ix + z.q_lora_rank * z.index_heads * ix
                          + z.hidden * z.index_heads)
    out["total"] = sum(out.values())
    return out


def kv_parts(sizes: Dsv4Sizes, layer_type: str, batch: int, s: int, bytes_per_element: int) -> dict[str, int]:
    """Bytes of each distinct tensor the layer's cache holds after S tokens (``DynamicSlidingWindowLayer``
    for a sliding layer, ``DeepseekV4HCACache``/``DeepseekV4CSACache`` for the others):

    - ``window`` the last min(S, W - 1) keys (D each); a compressed layer's values are the same tensor
      (``self.values = self.keys``), a sliding layer's are a second one (``window_values``);
    - ``compressed`` the T = floor(S / m) entries (D each), CSA's ``indexer_keys`` (ID each);
    - ``buffer`` the S mod m tokens of an open window, projected kv and gate (2D each on CSA, D on
      HCA; CSA's indexer 2ID each), at the activations' dtype;
    - ``overlap`` (CSA, once a window closed) the last window's first series, m x D of kv at the
      activations' dtype and of gate in float32, and the indexer's m x ID of each."""
    z, b, n = sizes, batch, bytes_per_element
    out = {"window": b * min(s, z.window - 1) * z.head_dim * n}
    if layer_type == SLIDING:
        out["window_values"] = out["window"]
        return out
    m, t = z.ratio(layer_type), compressed_entries(z, layer_type, s)
    out["compressed"] = b * t * z.head_dim * n
    width = 2 * z.head_dim if layer_type == CSA else z.head_dim
    out["buffer"] = b * (s % m) * width * n * 2
    if layer_type == CSA:
        ix = z.index_head_dim
        out["indexer_keys"] = b * t * ix * n
        out["buffer"] += b * (s % m) * 2 * ix * n * 2
        out["overlap"] = b * m * (z.head_dim + ix) * (n + GATE_BYTES) if t else 0
    return out


def kv_cache_bytes(sizes: Dsv4Sizes, layer_type: str, batch: int, s: int, bytes_per_element: int) -> int:
    """Every distinct tensor of the layer's cache once (:func:`kv_parts`)."""
    return sum(kv_parts(sizes, layer_type, batch, s, bytes_per_element).values())


def kv_long_run(sizes: Dsv4Sizes, layer_type: str, bytes_per_element: int) -> tuple[int, int, int]:
    """(bytes per m tokens, m, fixed bytes per sequence) once S >= W - 1 and S is a multiple of m:
    the compressed entries grow by D (+ ID) every m tokens; the window and overlap stay."""
    m = sizes.ratio(layer_type) or 1
    per = 0 if layer_type == SLIDING else sizes.head_dim * bytes_per_element
    if layer_type == CSA:
        per += sizes.index_head_dim * bytes_per_element
    s = max(sizes.window - 1, m) * m  # a multiple of m past the window
    return per, m, kv_cache_bytes(sizes, layer_type, 1, s, bytes_per_element) - per * (s // m)
