# Alarms. Each notifies var.alarm_actions (none by default) when it fires and when it clears.

locals {
  # Every queue that holds what failed for good: the requests queue's dead-letter queue (SQS
  # redrive) and the on-failure destination of the asynchronously invoked functions.
  dead_letter_queues = {
    requests_dead_letter = aws_sqs_queue.requests_dead_letter.name
    failed_invocations   = aws_sqs_queue.failed_invocations.name
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each = local.dead_letter_queues

  alarm_name        = "${each.value}-not-empty"
  alarm_description = "Messages in ${each.value}: work that failed for good and waits for an operator (inspect, fix, then redrive)."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions  = { QueueName = each.value }
  statistic   = "Maximum"
  period      = 300

  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  # SQS stops sending metrics for a queue that has been empty and idle for six hours.
  treat_missing_data = "notBreaching"

  alarm_actions = var.alarm_actions
  ok_actions    = var.alarm_actions
}

# The share of fetched documents that went to quarantine (the consumer's terminal failures
# plus the writer's corrupt lines), from the log metric filters in logs.tf.
resource "aws_cloudwatch_metric_alarm" "quarantine_rate" {
  alarm_name        = "${var.name_prefix}-quarantine-rate"
  alarm_description = "More than ${var.quarantine_rate_alarm_percent}% of the documents fetched in five minutes went to quarantine (s3://${aws_s3_bucket.data.id}/${var.quarantine_prefix}): the API or the record contract changed."

  comparison_operator = "GreaterThanThreshold"
  threshold           = var.quarantine_rate_alarm_percent
  evaluation_periods  = 1
  # No documents fetched: nothing to judge.
  treat_missing_data = "notBreaching"

  metric_query {
    id          = "rate"
    expression  = "100 * (FILL(consumer, 0) + FILL(writer, 0)) / fetched"
    label       = "Quarantined per 100 documents fetched"
    return_data = true
  }

  metric_query {
    id = "fetched"

    metric {
      namespace   = local.metrics_namespace
      metric_name = "Fetched"
      dimensions  = { Function = "consumer" }
      stat        = "Sum"
      period      = 300
    }
  }

  dynamic "metric_query" {
    for_each = ["consumer", "writer"]

    content {
      id = metric_query.value

      metric {
        namespace   = local.metrics_namespace
        metric_name = "Quarantined"
        dimensions  = { Function = metric_query.value }
        stat        = "Sum"
        period      = 300
      }
    }
  }

  alarm_actions = var.alarm_actions
  ok_actions    = var.alarm_actions
}
