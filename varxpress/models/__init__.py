"""The expression network, its fast paths, imported and ensemble models, and the bundled models by name."""
