"""Helpers shared by the tests (and the benchmarks) that run against the real emulator.

One module per thing they own: the emulator process, tokens, device codes, configs, PATs, what
the sinks hold, and what the emulator issued.
"""
