"""Benchmarks of the gateway on devstack: cold start, warm overhead, memory, AWS cost, throughput.

``make bench`` (``python -m bench``) runs every figure against a baseline measured in the same
run, prints a table and writes ``bench/results.json``, ``bench/RESULTS.md`` and the "What it
costs and how fast it is" section of docs/performance.md. Modules: ``coldstart``, ``overhead``,
``memory``, ``costrun`` (counted AWS requests per task), ``throughput``; ``cost`` + ``prices``
are the pure cost model; ``counting`` records the AWS and HTTP calls each in-process Lambda makes.
"""
