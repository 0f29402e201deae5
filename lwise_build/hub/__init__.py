"""The Hugging Face dataset folder: configs, card, citation, provenance; publish and pull."""
