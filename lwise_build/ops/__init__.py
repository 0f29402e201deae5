"""The methods: tensors and arrays in, results out; no files, no params sections."""
