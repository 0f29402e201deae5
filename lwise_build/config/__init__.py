"""The typed params: schema builder, sections, curriculum presets, cross-section checks."""
