locals {
  # AWS's guidance for a queue that feeds a Lambda function: at least six times the function's
  # timeout, so a batch still being retried by Lambda does not reappear to another poller.
  queue_visibility_timeout_seconds = coalesce(var.queue_visibility_timeout_seconds, 6 * var.consumer_timeout_seconds)

  queue_names = {
    requests           = "${var.name_prefix}-requests"
    requests_dlq       = "${var.name_prefix}-requests-dlq"
    failed_invocations = "${var.name_prefix}-failed-invocations"
  }

  four_days_seconds     = 4 * 24 * 3600
  fourteen_days_seconds = 14 * 24 * 3600
}

# Request descriptors from the producer, consumed by the consumer's event source mapping.
resource "aws_sqs_queue" "requests" {
  name                       = local.queue_names.requests
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

    postcondition {
      condition     = self.arn == local.arns.requests_queue
      error_message = "The requests queue's ARN is ${self.arn}, not the ${local.arns.requests_queue} the policies grant on (iam.tf)."
    }
  }
}

# Descriptors that failed max_receive_count times; kept as long as SQS allows.
resource "aws_sqs_queue" "requests_dead_letter" {
  name                      = local.queue_names.requests_dlq
  message_retention_seconds = local.fourteen_days_seconds
  sqs_managed_sse_enabled   = true
}

# Events that the asynchronously invoked functions (producer, writer) still failed after
# Lambda's retries: their on-failure destination.
resource "aws_sqs_queue" "failed_invocations" {
  name                      = local.queue_names.failed_invocations
  message_retention_seconds = local.fourteen_days_seconds
  sqs_managed_sse_enabled   = true

  lifecycle {
    postcondition {
      condition     = self.arn == local.arns.failed_invocations_queue
      error_message = "The failed-invocations queue's ARN is ${self.arn}, not the ${local.arns.failed_invocations_queue} the policies grant on (iam.tf)."
    }
  }
}

# Where no functions exist (create_functions = false): the bucket's notifications of raw
# objects, and the schedules' ticks, go to queues the local runner reads and delivers to the
# writer, the producer and the compactor as S3 and EventBridge would.
resource "aws_sqs_queue" "raw_objects" {
  count = var.create_functions ? 0 : 1

  name                       = "${var.name_prefix}-raw-objects"
  visibility_timeout_seconds = var.writer_timeout_seconds
  message_retention_seconds  = local.four_days_seconds
  sqs_managed_sse_enabled    = true
}

resource "aws_sqs_queue_policy" "raw_objects" {
  count = var.create_functions ? 0 : 1

  queue_url = aws_sqs_queue.raw_objects[0].url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "FromDataBucket"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.raw_objects[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = aws_s3_bucket.data.arn } }
    }]
  })
}

resource "aws_sqs_queue" "schedule_ticks" {
  count = var.create_functions ? 0 : 1

  name                      = "${var.name_prefix}-schedule-ticks"
  message_retention_seconds = local.four_days_seconds
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue_policy" "schedule_ticks" {
  count = var.create_functions ? 0 : 1

  queue_url = aws_sqs_queue.schedule_ticks[0].url
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "FromSchedules"
      Effect    = "Allow"
      Principal = { Service = "events.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = aws_sqs_queue.schedule_ticks[0].arn
      Condition = { ArnEquals = { "aws:SourceArn" = [for rule in aws_cloudwatch_event_rule.schedule : rule.arn] } }
    }]
  })
}
