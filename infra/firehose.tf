locals {
  delivery_stream_name = "${var.name_prefix}-records"
  # One stream by default; past one stream's throughput quota, firehose_streams of them,
  # the consumer sending each record to the one a hash of its device id picks.
  delivery_stream_names = [
    for index in range(var.firehose_streams) :
    index == 0 ? local.delivery_stream_name : "${local.delivery_stream_name}-${index}"
  ]
}

# Valid records from the consumer, buffered into NDJSON objects under raw_prefix.
resource "aws_kinesis_firehose_delivery_stream" "records" {
  count = var.firehose_streams

  name        = local.delivery_stream_names[count.index]
  destination = "extended_s3"

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = aws_s3_bucket.data.arn
    prefix              = var.raw_prefix
    error_output_prefix = "${local.firehose_error_prefix}!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/"
    buffering_size      = var.firehose_buffer_size_mb
    buffering_interval  = var.firehose_buffer_interval_seconds
    compression_format  = "UNCOMPRESSED"

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose_delivery.name
    }
  }

  server_side_encryption {
    enabled  = var.firehose_encryption
    key_type = "AWS_OWNED_CMK"
  }

  # Firehose checks it can assume the role and write to the bucket when the stream is created.
  depends_on = [aws_iam_role_policy.firehose]

  lifecycle {
    postcondition {
      condition     = self.arn == local.arns.delivery_streams[count.index]
      error_message = "The delivery stream's ARN is ${self.arn}, not the ${local.arns.delivery_streams[count.index]} the consumer's policy grants on (iam.tf)."
    }
  }
}
