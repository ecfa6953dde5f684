output "bucket" {
  description = "Data bucket (raw, parquet and quarantine prefixes)."
  value       = aws_s3_bucket.data.id
}

output "requests_queue_url" {
  description = "URL of the queue of request descriptors."
  value       = aws_sqs_queue.requests.url
}

output "requests_queue_arn" {
  description = "ARN of the queue of request descriptors."
  value       = aws_sqs_queue.requests.arn
}

output "dead_letter_queue_url" {
  description = "URL of the requests queue's dead-letter queue."
  value       = aws_sqs_queue.requests_dead_letter.url
}

output "failed_invocations_queue_url" {
  description = "URL of the on-failure destination of the producer's and writer's asynchronous invocations."
  value       = aws_sqs_queue.failed_invocations.url
}

output "delivery_stream_name" {
  description = "Firehose delivery stream the consumer sends records to."
  value       = aws_kinesis_firehose_delivery_stream.records.name
}

output "producer_function_name" {
  description = "Name of the producer function."
  value       = aws_lambda_function.producer.function_name
}

output "consumer_function_name" {
  description = "Name of the consumer function."
  value       = aws_lambda_function.consumer.function_name
}

output "writer_function_name" {
  description = "Name of the writer function."
  value       = aws_lambda_function.writer.function_name
}

output "schedule_rule_name" {
  description = "EventBridge rule that invokes the producer."
  value       = aws_cloudwatch_event_rule.schedule.name
}

output "raw_prefix" {
  description = "Key prefix of raw Firehose objects."
  value       = var.raw_prefix
}

output "parquet_prefix" {
  description = "Key prefix of parquet objects."
  value       = var.parquet_prefix
}

output "quarantine_prefix" {
  description = "Key prefix of quarantined documents."
  value       = var.quarantine_prefix
}

output "alarm_names" {
  description = "CloudWatch alarms: dead-letter queue depths and the quarantine rate."
  value = concat(
    [for alarm in aws_cloudwatch_metric_alarm.dead_letters : alarm.alarm_name],
    [aws_cloudwatch_metric_alarm.quarantine_rate.alarm_name],
  )
}

output "compactor_function_name" {
  description = "Name of the compactor function."
  value       = aws_lambda_function.compactor.function_name
}

output "compaction_rule_name" {
  description = "Name of the EventBridge rule that ticks the compactor."
  value       = aws_cloudwatch_event_rule.compaction.name
}
