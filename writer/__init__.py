"""The writer function: converts what Firehose delivers into parquet on S3."""
