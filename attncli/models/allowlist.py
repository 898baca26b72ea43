"""The fields of a ``config.json`` known not to change the attention layer, and why: the allowlist.

attncli reads a config through its family's reader (:mod:`attncli.models.configs`,
:mod:`attncli.models.schedule`, :mod:`attncli.models.kindconfig`). Every other field must be in
one of the groups below, each with the reason it cannot change the attention layer's
multiply-adds, parameters or KV cache, or :func:`attncli.models.guard.refuse_unread` refuses the
config naming it: a field attncli has not read and does not know to be harmless may describe a
different layer (Gemma 4's ``attention_k_eq_v``, MiMo's ``hybrid_layer_pattern``). A field harmless
in one family may matter in another, so families add their own (:data:`FAMILY_HARMLESS`). Field names
and meanings are transformers 5.24's (``models/*/configuration_*.py`` and ``modeling_*.py``). Nothing
here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable

HARMLESS: dict[str, str] = {}
"""Field -> why it does not change the attention layer (filled from the groups below)."""

POSITIONS = "positions, score scales and clamps: elementwise, no multiply-adds"
CONTEXT = "a context limit, not the length counted (--seq, --cache)"
DROPOUT = "training-time dropout: no multiply-adds"
MLP = "the MLP or mixture of experts: outside the attention layer"
VOCAB = "vocabulary, tokens and output heads: outside the attention layer"
DEPTH = "layers beside the stack described: multi-token prediction, an encoder-decoder's decoder"
NUMERICS = "norms' epsilon, precision and storage: the multiply-adds are unchanged (set precision with --dtype)"
INIT = "initialisation: the weights' starting values, not their shapes"
QUANT = "quantization of the stored weights: the multiply-adds are unchanged"
GENERATION = "generation settings (search, sampling, the cache's use): outside one forward pass of the layer"
BOOKKEEPING = "bookkeeping: names, versions and what transformers returns, not the layer"
TOWERS = "a vision or audio tower, or a projector, outside the text model's attention"


def _group(names: Iterable[str], why: str) -> None:
    HARMLESS.update(dict.fromkeys(names, why))


_group(("rope_scaling", "rope_theta", "rope_parameters", "rope_interleave", "partial_rotary_factor", "rotary_pct",
        "rotary_emb_base", "rotary_dim", "rope_type", "rope_local_base_freq", "no_rope_layers",
        "no_rope_layer_interval", "use_mrope", "mrope_section", "alibi", "relative_attention_num_buckets",
        "relative_attention_max_distance", "attn_temperature_tuning", "floor_scale", "attn_scale",
        "query_pre_attn_scalar", "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn",
        "attention_multiplier", "clip_qkv", "rope_pct", "rotary_emb_fraction", "rope_embedding_base"), POSITIONS)
_group(("max_position_embeddings", "original_max_position_embeddings", "n_positions", "n_ctx",
        "initial_context_length", "seq_length", "model_max_length", "max_seq_len", "max_sequence_length"), CONTEXT)
_group(("attention_dropout", "attn_pdrop", "attention_probs_dropout_prob", "hidden_dropout_prob", "resid_pdrop",
        "embd_pdrop", "emb_pdrop", "dropout", "dropout_rate", "classifier_dropout", "summary_first_dropout",
        "hidden_dropout", "activation_dropout", "layerdrop", "drop_path_rate"), DROPOUT)
_group(("intermediate_size", "moe_intermediate_size", "shared_expert_intermediate_size", "intermediate_size_mlp",
        "d_ff", "n_inner", "feed_forward_proj", "hidden_act", "hidden_activation", "activation_function",
        "mlp_bias", "swiglu_limit", "n_routed_experts", "n_shared_experts", "num_experts_per_tok",
        "num_local_experts", "num_experts", "experts_per_token", "moe_layer_freq", "first_k_dense_replace",
        "n_group", "topk_group", "topk_method", "norm_topk_prob", "routed_scaling_factor", "scoring_func",
        "seq_aux", "aux_loss_alpha", "ep_size", "router_aux_loss_coef", "output_router_logits",
        "decoder_sparse_step", "mlp_only_layers", "moe_layers", "interleave_moe_layer_step",
        "router_jitter_noise", "mlp_layer_types", "dense_act_fn", "is_gated_act", "ffn_config",
        "num_experts_per_token", "num_shared_experts", "num_expert_group", "moe_renormalize", "use_grouped_topk",
        "moe_router_activation_func", "route_scale", "num_dense_layers", "router_z_loss_coef",
        "shared_intermediate_size", "use_routing_bias", "moe_shared_expert_intermediate_size",
        "mlp_hidden_act"), MLP)
_group(("vocab_size", "type_vocab_size", "tie_word_embeddings", "pad_token_id", "bos_token_id", "eos_token_id",
        "sep_token_id", "decoder_start_token_id", "summary_activation", "summary_proj_to_labels",
        "summary_type", "summary_use_proj", "id2label", "label2id", "num_labels", "problem_type",
        "ignore_index", "mup_enabled", "scale_embedding", "embedding_multiplier", "logits_scaling"), VOCAB)
_group(("num_nextn_predict_layers", "num_decoder_layers"), DEPTH)
_group(("rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon", "norm_eps", "layernorm_epsilon", "torch_dtype",
        "dtype", "pretraining_tp", "use_bfloat16", "residual_in_fp32"), NUMERICS)
_group(("initializer_range", "initializer_factor", "init_std", "rescale_prenorm_residual"), INIT)
_group(("quantization_config", "for_llm_compressor"), QUANT)
_group(("use_cache", "cache_implementation", "max_length", "min_length", "do_sample", "early_stopping",
        "num_beams", "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p", "typical_p",
        "repetition_penalty", "length_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size",
        "bad_words_ids", "num_return_sequences", "output_scores", "return_dict_in_generate", "forced_bos_token_id",
        "forced_eos_token_id", "remove_invalid_values", "exponential_decay_length_penalty", "suppress_tokens",
        "begin_suppress_tokens", "num_logits_to_keep", "task_specific_params"), GENERATION)
_group(("transformers_version", "_name_or_path", "auto_map", "finetuning_task", "prefix",
        "tf_legacy_loss", "return_dict", "output_hidden_states", "output_attentions", "torchscript",
        "use_return_dict", "chunk_size_feed_forward", "tokenizer_class", "attn_implementation",
        "_attn_implementation", "_attn_implementation_autoset", "_commit_hash", "gradient_checkpointing",
        "tie_encoder_decoder", "cross_attention_hidden_size"), BOOKKEEPING)
_group(("vision_config", "audio_config", "vision_tower_config", "projector_hidden_act", "mm_tokens_per_image",
        "multimodal_projector_bias", "vision_feature_layer", "vision_feature_select_strategy",
        "image_seq_length"), TOWERS)

PLE = "per-layer embeddings added to the residual stream between layers: outside attention"
_PLE = ("hidden_size_per_layer_input", "vocab_size_per_layer_input")

SUFFIXES: tuple[tuple[str, str], ...] = (
    ("_token_id", VOCAB), ("_token_ids", VOCAB), ("_token_index", VOCAB),
    ("_dropout", DROPOUT), ("_dropout_prob", DROPOUT), ("_pdrop", DROPOUT),
)
"""Name endings whose every field is one of the groups (token ids of a multimodal model, dropouts)."""

FAMILY_HARMLESS: dict[str, dict[str, str]] = {
    # NOTE: Qwen3MoeModel applies the window to every layer and reads no max_window_layers (modeling_qwen3_moe.py)
    "qwen3_moe": {"max_window_layers": "not read by transformers' Qwen3MoeModel: the window covers every layer"},
    "kimi_k25": {"use_unified_vision_chunk": TOWERS, "video_placeholder": TOWERS},
    "t5": {"scale_decoder_outputs": "the decoder's output scale: outside the encoder's self-attention described"},
    # NOTE: MiniMaxM2Config defines none of these; MiniMaxM2Attention's q_norm/k_norm span all heads whatever
    # qk_norm_type says, and the multi-token prediction modules are not part of transformers' model.
    "minimax_m2": {"qk_norm_type": "not read by transformers' MiniMaxM2Attention (qk-norm over all heads)",
                   "use_mtp": DEPTH, "num_mtp_modules": DEPTH, "mtp_transformer_layers": DEPTH},
    # NOTE: Gemma3TextConfig and Cohere2Config keep the legacy sliding_window_pattern as a private attribute
    # that to_dict writes and __post_init__ overwrites from the keyword sliding_window_pattern: never read back
    **{fam: {"_sliding_window_pattern": BOOKKEEPING} for fam in ("gemma3_text", "gemma3", "cohere2")},
    # NOTE: DeepseekV4Config (configuration_deepseek_v4.py): fields around the attention layer (attncli/kinds/dsv4)
    "deepseek_v4": {
        **dict.fromkeys(("hc_mult", "hc_sinkhorn_iters", "hc_eps"),
                        "DeepSeek-V4's hyper-connections: the residual streams mixed around each layer, outside "
                        "attention"),
        **dict.fromkeys(("num_hash_layers", "expert_dtype"),
                        "DeepSeek-V4's hash-routed and FP4 experts: the MLP, outside attention"),
        "compress_rope_theta": POSITIONS,
        # NOTE: DeepseekV4Config turns it into partial_rotary_factor: the RoPE part of each head, elementwise
        "qk_rope_head_dim": POSITIONS,
    },
    # NOTE: Gemma4Config/Gemma4TextConfig (configuration_gemma4.py): the MLP or experts, and the per-layer
    # embeddings added to the residual stream between layers (Gemma4TextModel), outside attention
    "gemma4_text": {**dict.fromkeys(("enable_moe_block", "use_double_wide_mlp", "top_k_experts",
                                     "expert_intermediate_size"), MLP), **dict.fromkeys(_PLE, PLE)},
    "gemma4": {"vision_soft_tokens_per_image": TOWERS},
    # NOTE: Gemma3nTextConfig (configuration_gemma3n.py): AltUp, LAuReL and per-layer embeddings act on the
    # residual stream around each layer (Gemma3nTextDecoderLayer), the sparsity on the MLP's activations
    "gemma3n_text": {**dict.fromkeys(("altup_active_idx", "altup_coef_clip", "altup_correct_scale",
                                      "altup_num_inputs"), "AltUp: the residual stream's predict/correct steps "
                                                           "around each layer, outside attention"),
                     "laurel_rank": "LAuReL: a low-rank residual beside the attention layer, outside it",
                     "activation_sparsity_pattern": MLP, **dict.fromkeys(_PLE, PLE)},
    # NOTE: MiMoV2FlashConfig (configuration_mimo_v2_flash.py): it defines no attention_chunk_size (MiMo's
    # layers are full or sliding); its values are scaled and its RoPE theta per type, elementwise
    "mimo_v2_flash": {"attention_chunk_size": "not read by transformers' MiMoV2FlashConfig: no layer is chunked",
                      "attention_value_scale": POSITIONS, "swa_rope_theta": POSITIONS},
    # NOTE: FalconConfig (configuration_falcon.py): the MLP's activation and width, and whether attention and
    # MLP run in parallel from one or two layer norms (FalconDecoderLayer); FalconAttention reads none of them.
    "falcon": {"activation": MLP, "ffn_hidden_size": MLP,
               "parallel_attn": "attention and the MLP side by side in the block: the attention layer is the same",
               "num_ln_in_parallel_attn": NUMERICS},
    # NOTE: NemotronHConfig (configuration_nemotron_h.py) fields NemotronHMamba2Mixer and NemotronHAttention do
    # not size: the mixer's width is mamba_num_heads x mamba_head_dim, its dt clamp and init are elementwise
    "nemotron_h": {
        "expand": "not read by NemotronHMamba2Mixer: its inner width is mamba_num_heads x mamba_head_dim",
        "mamba_proj_bias": "not read by NemotronHMamba2Mixer: in_proj and out_proj take use_bias",
        "mamba_hidden_act": "the conv's activation (silu): elementwise, no multiply-adds",
        "use_mamba_kernels": "which kernels run the scan (deprecated, no effect): the same multiply-adds",
        **dict.fromkeys(("time_step_min", "time_step_max", "time_step_floor", "mamba_dt_min", "mamba_dt_max",
                         "mamba_dt_init_floor"), INIT),
        **dict.fromkeys(("time_step_limit", "mamba_dt_limit"), "the step dt's clamp: elementwise, no multiply-adds"),
        **dict.fromkeys(("moe_latent_size", "moe_shared_expert_overlap"), MLP),
        **dict.fromkeys(("mtp_layers_block_type", "mtp_hybrid_override_pattern"), DEPTH),
    },
    # NOTE: KimiLinearConfig defines no mla_use_nope; KimiLinearAttention (modeling_kimi_linear.py) applies no
    # rotary embedding whatever it says (NoPE: positions, no multiply-adds)
    "kimi_linear": {"mla_use_nope": "not read by transformers' KimiLinearAttention, which rotates nothing (NoPE): "
                                    + POSITIONS},
    # NOTE: Qwen3_5TextConfig / Qwen3_5MoeTextConfig define none of these: the multi-token prediction layers are
    # not part of transformers' model (its checkpoint keys ^mtp.* are ignored on load)
    **{fam: {"mtp_num_hidden_layers": DEPTH, "mtp_use_dedicated_embeddings": DEPTH}
       for fam in ("qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text")},
    # NOTE: GlmMoeDsaConfig defines no indexer_rope_interleave: GlmMoeDsaIndexer always rotates its RoPE part
    # interleaved (apply_rotary_pos_emb_interleave), an elementwise layout
    "glm_moe_dsa": {"indexer_rope_interleave": POSITIONS},
}
"""Fields harmless in these families only, and why."""


def harmless(name: str, family: str | None) -> str | None:
    """Why ``name`` cannot change ``family``'s attention layer, or ``None`` when attncli does not know that."""
    if name in HARMLESS:
        return HARMLESS[name]
    own = FAMILY_HARMLESS.get(family or "", {})
    if name in own:
        return own[name]
    return next((why for end, why in SUFFIXES if name.endswith(end)), None)
