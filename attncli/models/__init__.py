"""Real models: Hugging Face config.json files and presets (:mod:`attncli.models.configs`), the
layer schedule (:mod:`attncli.models.schedule`), the truth guard that refuses what attncli does not
model (:mod:`attncli.models.guard`), and Hub names (:mod:`attncli.models.hub`). A model's own
``--module`` (a Hugging Face class, a user's module) is :mod:`attncli.modules`."""
