"""Stage 2: train the interest model.

``loop.train(config_dict)`` is the one function every launcher ships to its workers;
``launchers.launch(TrainConfig, spark)`` picks local, horovod or torch-distributor.
Loaders (petastorm | pyarrow), losses, checkpoints and the artifact writer are the
small modules beside it.
"""
