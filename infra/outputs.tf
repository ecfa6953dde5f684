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

output "delivery_stream_names" {
  description = "Every Firehose delivery stream (firehose_streams of them); the consumer picks one per record by a hash of its device id."
  value       = aws_kinesis_firehose_delivery_stream.records[*].name
}

output "delivery_stream_name" {
  description = "Firehose delivery stream the consumer sends records to."
  value       = aws_kinesis_firehose_delivery_stream.records[0].name
}

output "producer_function_name" {
  description = "Name of the producer function."
  value       = local.function_names.producer
}

output "consumer_function_name" {
  description = "Name of the consumer function."
  value       = local.function_names.consumer
}

output "writer_function_name" {
  description = "Name of the writer function."
  value       = local.function_names.writer
}

output "schedule_rule_name" {
  description = "EventBridge rule that invokes the producer (with producer_shards, shard 0's)."
  value       = aws_cloudwatch_event_rule.schedule[keys(local.producer_schedules)[0]].name
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
  value       = local.function_names.compactor
}

output "compaction_rule_name" {
  description = "Name of the EventBridge rule that ticks the compactor."
  value       = aws_cloudwatch_event_rule.schedule["compactor"].name
}

# What a local runner needs to play Lambda where the target cannot (functions_run_on_target
# = false), made from the same locals as the Lambda resources, so both agree by construction.
output "functions" {
  description = "Each function's handler, timeout, memory, environment, package and retry policy."
  value = {
    for name, f in local.functions : name => {
      function_name      = local.function_names[name]
      handler            = f.handler
      timeout            = f.timeout
      memory_mb          = f.memory_mb
      environment        = local.environments[name]
      package            = local.packages[name]
      code_sha256        = filebase64sha256(local.packages[name])
      max_retry_attempts = f.asynchronous ? local.max_retry_attempts : null
      on_failure_arn     = f.asynchronous ? aws_sqs_queue.failed_invocations.arn : null
    }
  }
}

output "event_sources" {
  description = "How each function is triggered: the SQS mapping, the bucket notification and the schedules (with the queues that carry them where no functions exist)."
  value = {
    sqs = [{
      function                   = "consumer"
      queue_arn                  = aws_sqs_queue.requests.arn
      queue_url                  = aws_sqs_queue.requests.url
      batch_size                 = var.consumer_batch_size
      window_seconds             = var.consumer_batching_window_seconds
      max_concurrency            = var.consumer_max_concurrency
      report_batch_item_failures = true
    }]
    s3 = [{
      function  = "writer"
      bucket    = aws_s3_bucket.data.id
      events    = ["s3:ObjectCreated:*"]
      prefix    = var.raw_prefix
      queue_url = var.create_functions ? null : aws_sqs_queue.raw_objects[0].url
    }]
    schedules = [
      for name, rule in aws_cloudwatch_event_rule.schedule : {
        function   = local.schedules[name].function
        rule_name  = rule.name
        rule_arn   = rule.arn
        expression = rule.schedule_expression
        queue_url  = var.create_functions ? null : aws_sqs_queue.schedule_ticks[0].url
        input_transformer = local.shard_input_templates[name] == null ? null : {
          input_paths    = local.shard_input_paths
          input_template = local.shard_input_templates[name]
        }
      }
    ]
  }
}
