"""Model I/O: the config, the model, training, weight files, the model store and importers."""
