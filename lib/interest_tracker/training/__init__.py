"""Stage 2: train the interest model.

``loop.train(config_dict)`` is the one function every launcher ships to its workers;
``launchers.launch(TrainConfig, spark)`` picks local, horovod or torch-distributor.
Loaders (petastorm | pyarrow), losses, checkpoints and the artifact writer are the
small modules beside it. Torch is imported inside the modules that need it, so the
driver can validate a ``TrainConfig`` without it.
"""
