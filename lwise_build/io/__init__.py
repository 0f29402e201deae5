"""Files: output paths, images, Parquet tables, staged output, the shard cache, sources, figures."""
