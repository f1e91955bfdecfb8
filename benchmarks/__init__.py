"""``make bench``: performance figures, printed, never asserted.

Each section is a module with ``async def run(report)``; ``python -m benchmarks [SECTION...]``
runs the named sections (all by default). Sections that need a real server they cannot start
say so and skip.
"""
