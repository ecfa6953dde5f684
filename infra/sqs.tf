locals {
  # AWS's guidance for a queue that feeds a Lambda function: at least six times the function's
  # timeout, so a batch still being retried by Lambda does not reappear to another poller.
  queue_visibility_timeout_seconds = coalesce(var.queue_visibility_timeout_seconds, 6 * var.consumer_timeout_seconds)

  four_days_seconds     = 4 * 24 * 3600
  fourteen_days_seconds = 14 * 24 * 3600
}

# Request descriptors from the producer, consumed by the consumer's event source mapping.
resource "aws_sqs_queue" "requests" {
  name                       = "${var.name_prefix}-requests"
  visibility_timeout_seconds = local.queue_visibility_timeout_seconds
  message_retention_seconds  = local.four_days_seconds
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.requests_dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })

  lifecycle {
    precondition {
      # Lambda refuses an SQS event source whose visibility timeout is below the function's.
      condition     = local.queue_visibility_timeout_seconds >= var.consumer_timeout_seconds
      error_message = "queue_visibility_timeout_seconds (${local.queue_visibility_timeout_seconds}) must be at least consumer_timeout_seconds (${var.consumer_timeout_seconds})."
    }
  }
}

# Descriptors that failed max_receive_count times; kept as long as SQS allows.
resource "aws_sqs_queue" "requests_dead_letter" {
  name                      = "${var.name_prefix}-requests-dlq"
  message_retention_seconds = local.fourteen_days_seconds
  sqs_managed_sse_enabled   = true
}

# Events that the asynchronously invoked functions (producer, writer) still failed after
# Lambda's retries: their on-failure destination.
resource "aws_sqs_queue" "failed_invocations" {
  name                      = "${var.name_prefix}-failed-invocations"
  message_retention_seconds = local.fourteen_days_seconds
  sqs_managed_sse_enabled   = true
}
