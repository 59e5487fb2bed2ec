"""Cross-validation and the training engines: the splits, the engine choice, the plain and
fast engines, the LightningModules they train and the batches they read."""
