"""The ``report``  stage (docs/architecture.md, "Stages"): kept empty so the light spec imports alone."""
