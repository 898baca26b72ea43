"""Real models: Hugging Face config.json files and presets (:mod:`attncli.models.configs`), the
truth guard that refuses what attncli does not model (:mod:`attncli.models.guard`), Hugging Face
attention classes (:mod:`attncli.models.hf`) and the user's own modules, run inside a fence
(:mod:`attncli.models.usermodule`, :mod:`attncli.models.userload`, :mod:`attncli.models.fence`)."""
