locals {
  delivery_stream_name = "${var.name_prefix}-records"
}

# Valid records from the consumer, buffered into NDJSON objects under raw_prefix.
resource "aws_kinesis_firehose_delivery_stream" "records" {
  name        = local.delivery_stream_name
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
      condition     = self.arn == local.arns.delivery_stream
      error_message = "The delivery stream's ARN is ${self.arn}, not the ${local.arns.delivery_stream} the consumer's policy grants on (iam.tf)."
    }
  }
}
