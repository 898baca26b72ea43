"""The standard attention layer itself: closed forms, masks and their visible pairs, tensor
layouts, inputs, and attncli's own implementations (:mod:`attncli.layer.modules` builds and
runs them). The other kinds of layer live in :mod:`attncli.kinds`."""
