"""Stage 1: clean, deduplicate, quarantine bots, sessionize, build vocabulary and sequences.

Every module here is a set of pure ``DataFrame -> DataFrame`` transforms; reading and
writing happens in :mod:`interest_tracker.prepare.pipeline` through :mod:`interest_tracker.io`.
"""
