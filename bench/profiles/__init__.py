"""Synthetic functions of known shape for bench/recommend_accuracy.py; each module exposes ``handler(event, context)``.

Their true behaviour is not assumed: the benchmark establishes it with a large sweep in the sandbox.
"""
