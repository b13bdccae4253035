"""Stage 3: score every user into warehouse tables.

``pipeline.score_run`` is the entry point (``jobs/score_users.py`` calls it):
``state`` builds each user's latest events (full or incremental), ``predict`` runs the
model once per Python worker and ``topk`` the blocked top-K, ``tables`` assembles and
atomically publishes ``user_interest``, ``user_recommendations``,
``user_interest_drift`` and ``user_scoring_state``.
"""
