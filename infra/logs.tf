locals {
  firehose_log_group_name = "/aws/kinesisfirehose/${local.delivery_stream_name}"
}

# Created before the functions so that Lambda writes into groups that expire.
resource "aws_cloudwatch_log_group" "lambda" {
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days

  lifecycle {
    postcondition {
      condition     = self.arn == local.arns.lambda_log_groups[each.key]
      error_message = "The ${each.key} log group's ARN is ${self.arn}, not the ${local.arns.lambda_log_groups[each.key]} its function's policy grants on (iam.tf)."
    }
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  name              = local.firehose_log_group_name
  retention_in_days = var.log_retention_days

  lifecycle {
    postcondition {
      condition     = self.arn == local.arns.firehose_log_group
      error_message = "The Firehose log group's ARN is ${self.arn}, not the ${local.arns.firehose_log_group} its role's policy grants on (iam.tf)."
    }
  }
}

resource "aws_cloudwatch_log_stream" "firehose_delivery" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

# Quarantined documents, counted from the functions' own summary lines: the consumer logs
# "batch done" and the writer "converted" once per invocation or raw object, each with the
# number it quarantined (and the consumer with the number it fetched). Counting from logs
# needs no code and no permission beyond writing logs; the metrics are
# <namespace>/Quarantined and <namespace>/Fetched, with a Function dimension.
locals {
  metrics_namespace = var.name_prefix

  log_metrics = {
    consumer_quarantined = { function = "consumer", message = "batch done", metric = "Quarantined", field = "quarantined" }
    writer_quarantined   = { function = "writer", message = "converted", metric = "Quarantined", field = "quarantined" }
    consumer_fetched     = { function = "consumer", message = "batch done", metric = "Fetched", field = "fetched" }
  }
}

resource "aws_cloudwatch_log_metric_filter" "counts" {
  for_each = local.log_metrics

  name           = "${var.name_prefix}-${each.value.function}-${lower(each.value.metric)}"
  log_group_name = aws_cloudwatch_log_group.lambda[each.value.function].name
  # Only lines with a non-zero count: a metric with no data means none happened.
  pattern = "{ ($.message = \"${each.value.message}\") && ($.${each.value.field} > 0) }"

  metric_transformation {
    namespace  = local.metrics_namespace
    name       = each.value.metric
    value      = "$.${each.value.field}"
    unit       = "Count"
    dimensions = { Function = "$.function" }
  }
}
