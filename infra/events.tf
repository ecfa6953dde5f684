locals {
  # The producer's rules: one, or with producer_shards = N a rule per shard, each of whose
  # ticks carries "shard": i, "shards": N so that invocation enqueues only its share of the
  # devices (producer/produce.py). Every shard fires at the same time, in parallel.
  producer_schedules = var.producer_shards == 1 ? {
    producer = {
      name        = "${var.name_prefix}-schedule"
      description = "Ticks the producer, which enqueues one window of request descriptors."
      expression  = var.schedule_expression
      function    = "producer"
      shard       = null
    }
    } : {
    for shard in range(var.producer_shards) : "producer-${shard}" => {
      name        = "${var.name_prefix}-schedule-${shard}"
      description = "Ticks the producer for shard ${shard} of ${var.producer_shards} of the devices."
      expression  = var.schedule_expression
      function    = "producer"
      shard       = shard
    }
  }

  # The scheduled functions and their rules.
  schedules = merge(local.producer_schedules, {
    compactor = {
      name        = "${var.name_prefix}-compaction"
      description = "Ticks the compactor, which merges yesterday's and today's parquet files."
      expression  = var.compaction_schedule_expression
      function    = "compactor"
      shard       = null
    }
  })

  # A sharded tick: the Scheduled Event's own time and rule, and the shard. Written as a
  # string, not jsonencode(), which would escape the placeholders' angle brackets.
  shard_input_paths = { time = "$.time", rule = "$.resources[0]" }
  shard_input_templates = {
    for key, schedule in local.schedules : key => schedule.shard == null ? null : (
      "{\"detail-type\": \"Scheduled Event\", \"source\": \"aws.events\", \"time\": \"<time>\", \"resources\": [\"<rule>\"], \"shard\": ${schedule.shard}, \"shards\": ${var.producer_shards}}"
    )
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
  arn       = aws_lambda_function.function[each.value.function].arn

  dynamic "input_transformer" {
    for_each = each.value.shard == null ? [] : [local.shard_input_templates[each.key]]
    content {
      input_paths    = local.shard_input_paths
      input_template = input_transformer.value
    }
  }
}

resource "aws_lambda_permission" "from_schedule" {
  for_each = var.create_functions ? local.schedules : {}

  statement_id  = "AllowEventBridgeInvokeFrom${title(each.key)}Schedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.value.function].function_name
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

  dynamic "input_transformer" {
    for_each = each.value.shard == null ? [] : [local.shard_input_templates[each.key]]
    content {
      input_paths    = local.shard_input_paths
      input_template = input_transformer.value
    }
  }
}
