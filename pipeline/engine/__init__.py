"""Training engines behind one seam: cross-validation, the plain and fast engines, the
LightningModules they train and the batches they read."""
