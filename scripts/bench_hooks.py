"""Loaded into benchmark workers only (`celery -A project worker -I bench_hooks`).

After each task it adds the task's database queries and seconds to a Redis hash the benchmark
reads, so queries are counted inside the real worker whatever shape the engine's tasks take.
Nothing here changes what a task does.
"""

from __future__ import annotations

import os
import time

import redis
from celery.signals import task_postrun, task_prerun
from django.db import connection

TASKS_KEY = "lxbench:tasks"
_state = {"queries": 0, "started": 0.0}
_client: redis.Redis | None = None


def _count(execute, sql, params, many, context):
    _state["queries"] += 1
    return execute(sql, params, many, context)


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
    return _client


@task_prerun.connect
def _task_started(**kwargs) -> None:
    # The connection wrapper outlives the database connections Celery closes between tasks.
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)
    _state["queries"] = 0
    _state["started"] = time.perf_counter()


@task_postrun.connect
def _task_finished(task=None, **kwargs) -> None:
    name = getattr(task, "name", "?")
    pipe = _redis().pipeline()
    pipe.hincrby(TASKS_KEY, f"{name}|runs", 1)
    pipe.hincrby(TASKS_KEY, f"{name}|queries", _state["queries"])
    pipe.hincrbyfloat(TASKS_KEY, f"{name}|seconds", time.perf_counter() - _state["started"])
    pipe.execute()


def read_task_stats(client: redis.Redis) -> dict[str, dict[str, float]]:
    """{task name: {"runs", "queries", "seconds"}} as the workers recorded them."""
    stats: dict[str, dict[str, float]] = {}
    for raw_key, raw_value in client.hgetall(TASKS_KEY).items():
        name, _, what = raw_key.decode().rpartition("|")
        stats.setdefault(name, {"runs": 0, "queries": 0, "seconds": 0.0})[what] = float(raw_value)
    return stats
