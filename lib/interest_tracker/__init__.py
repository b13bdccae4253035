"""interest-tracker: follow how each user's interests move over time.

Three spark-submit stages share this package:

* :mod:`interest_tracker.prepare`  - clean, deduplicate, sessionize, build sequences (PySpark)
* :mod:`interest_tracker.training` - train the recurrent interest model (PyTorch + Horovod)
* :mod:`interest_tracker.scoring`  - score every user into warehouse tables (PySpark)
"""
__version__ = "0.1.0"
