"""The counting engine: fvcore traced with attncli's op handles (:mod:`attncli.engine.trace`,
:mod:`attncli.engine.handles`), every counted op given its stage (:mod:`attncli.engine.stages`),
and FlopCounterMode lined up beside it (:mod:`attncli.engine.crosscheck`)."""
