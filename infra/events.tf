resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${var.name_prefix}-schedule"
  description         = "Ticks the producer, which enqueues one window of request descriptors."
  schedule_expression = var.schedule_expression
}

resource "aws_cloudwatch_event_target" "producer" {
  rule      = aws_cloudwatch_event_rule.schedule.name
  target_id = "producer"
  arn       = aws_lambda_function.producer.arn
}

resource "aws_lambda_permission" "producer_from_schedule" {
  statement_id  = "AllowEventBridgeInvokeFromSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.producer.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule.arn
}

resource "aws_cloudwatch_event_rule" "compaction" {
  name                = "${var.name_prefix}-compaction"
  description         = "Ticks the compactor, which merges yesterday's and today's parquet files."
  schedule_expression = var.compaction_schedule_expression
}

resource "aws_cloudwatch_event_target" "compactor" {
  rule      = aws_cloudwatch_event_rule.compaction.name
  target_id = "compactor"
  arn       = aws_lambda_function.compactor.arn
}

resource "aws_lambda_permission" "compactor_from_schedule" {
  statement_id  = "AllowEventBridgeInvokeFromCompaction"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.compactor.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.compaction.arn
}
