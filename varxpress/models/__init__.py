"""The expression network (its hyperparameters and metadata), its fast paths, imported and ensemble models, and the
bundled models by name."""
