"""What a run reads and writes, below every package that reads a file or writes a report:
the checks on input and output paths (:mod:`attncli.io.paths`), stdout and atomic files
(:mod:`attncli.io.streams`), and interrupts while a report is written (:mod:`attncli.io.interrupts`).
Nothing here imports torch or rich."""
