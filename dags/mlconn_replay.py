"""mlconn_replay: re-map and load failed or rejected sync records, by hand, with a params form.

See airflow_provider_mlconn/operators/replay.py and docs/BEHAVIOR.md (section S).
"""

from __future__ import annotations

from airflow_provider_mlconn.operators.replay import replay_dag

dag = replay_dag("mlconn_replay")
