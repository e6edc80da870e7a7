"""The machine's ceilings for the benchmark (bench/perf.py): the least a sendmessage-like
endpoint, a decision-like task and a Celery round trip can cost on this stack.

Installed only by ``bench.settings``, never by Harbor's own settings.
"""
