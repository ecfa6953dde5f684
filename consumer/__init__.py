"""The consumer function: fetches an SQS batch of descriptors, validates, delivers to Firehose."""
