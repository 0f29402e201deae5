"""Models: the architecture registry, the Classifier, checkpoints, built folders, batched inference."""
