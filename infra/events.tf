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
