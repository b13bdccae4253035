"""How jobs reach a cluster: the one builder of spark-submit command lines.

The submit scripts in ``cluster/``, the Airflow DAG example and the executor image's
entrypoint all call :func:`build_submit_command`, so a command that works from a
developer's shell is the command the scheduler runs.
"""
from .submit import (
    AIRFLOW_RUN_DATE,
    JOBS,
    NO_EXECUTOR_PYTHON,
    PIPELINE,
    SubmitError,
    build_submit_command,
    non_url_paths,
    pipeline_commands,
    read_properties,
    shell_join,
)

__all__ = ["AIRFLOW_RUN_DATE", "JOBS", "NO_EXECUTOR_PYTHON", "PIPELINE", "SubmitError", "build_submit_command", "non_url_paths", "pipeline_commands", "read_properties", "shell_join"]
