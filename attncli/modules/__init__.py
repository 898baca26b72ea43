"""``--module``: a layer attncli did not build. Hugging Face attention classes built from their
config (:mod:`attncli.modules.hf`, :mod:`attncli.modules.hfconfig`, :mod:`attncli.modules.hfcall`) and the
user's own modules (:mod:`attncli.modules.usermodule`, :mod:`attncli.modules.userload`), imported and run
inside a fence (:mod:`attncli.modules.fence`), called as their signature asks
(:mod:`attncli.modules.calling`), their masks read at the SDPA call (:mod:`attncli.modules.sdpamask`).
Above :mod:`attncli.analyses` (it counts with the same engine and checks); below ``render`` and ``cli``."""
