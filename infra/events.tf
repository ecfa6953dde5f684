locals {
  # The scheduled functions and their rules.
  schedules = {
    producer = {
      name        = "${var.name_prefix}-schedule"
      description = "Ticks the producer, which enqueues one window of request descriptors."
      expression  = var.schedule_expression
    }
    compactor = {
      name        = "${var.name_prefix}-compaction"
      description = "Ticks the compactor, which merges yesterday's and today's parquet files."
      expression  = var.compaction_schedule_expression
    }
  }
}

resource "aws_cloudwatch_event_rule" "schedule" {
  for_each = local.schedules

  name                = each.value.name
  description         = each.value.description
  schedule_expression = each.value.expression
}

resource "aws_cloudwatch_event_target" "function" {
  for_each = var.create_functions ? local.schedules : {}

  rule      = aws_cloudwatch_event_rule.schedule[each.key].name
  target_id = each.key
  arn       = aws_lambda_function.function[each.key].arn
}

resource "aws_lambda_permission" "from_schedule" {
  for_each = var.create_functions ? local.schedules : {}

  statement_id  = "AllowEventBridgeInvokeFrom${title(each.key)}Schedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[each.key].arn
}

# Where no functions exist (create_functions = false), the rules tick into a queue instead,
# and the local runner delivers each tick to the function the rule names.
resource "aws_cloudwatch_event_target" "ticks" {
  for_each = var.create_functions ? {} : local.schedules

  rule      = aws_cloudwatch_event_rule.schedule[each.key].name
  target_id = "${each.key}-ticks"
  arn       = aws_sqs_queue.schedule_ticks[0].arn
}
