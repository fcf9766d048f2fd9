"""The pure domain of data-analysis: no I/O, no clock reads, no logging setup.

Everything here is driven by its caller: it is told records, the time and completions, and
answers with work to do. Only the standard library and attrs are imported.
"""
