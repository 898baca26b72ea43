"""What attncli tells about a layer, one module per analysis: FLOPs with their cross-checks
(:mod:`attncli.analyses.flops`), shapes, sweeps, the roofline, measured time (bench), budgets and
baselines (checks), the combined report, and the permutation test (:mod:`attncli.analyses.permute`)."""
