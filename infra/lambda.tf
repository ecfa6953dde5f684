locals {
  package_dir = coalesce(var.package_dir, "${path.module}/../build/lambda")

  function_names = {
    for function in local.lambda_function_names : function => "${var.name_prefix}-${function}"
  }

  # Uploaded directly (Lambda takes up to 50 MiB zipped this way; `make package` prints each
  # zip's size against that limit and fails above it). The hash is the zip's, so a function
  # is updated exactly when its package's bytes change, and package.py builds them
  # reproducibly.
  packages = {
    for function in local.lambda_function_names :
    function => "${local.package_dir}/${lookup(local.package_of, function, function)}.zip"
  }
  # The compactor is the writer's code with another handler.
  package_of = { compactor = "writer" }

  roles = {
    producer  = aws_iam_role.producer.arn
    consumer  = aws_iam_role.consumer.arn
    writer    = aws_iam_role.writer.arn
    compactor = aws_iam_role.compactor.arn
  }

  # Every function, once: the Lambda resources below are made from it, and so is the
  # `functions` output a local runner reads where the target cannot run code.
  functions = {
    producer = {
      description = "Turns a schedule tick or a backfill range into request descriptors on SQS."
      handler     = "producer.handler.lambda_handler"
      timeout     = var.producer_timeout_seconds
      memory_mb   = var.producer_memory_mb
      environment = merge(
        {
          FANOUT_QUEUE_URL    = aws_sqs_queue.requests.url
          FANOUT_API_BASE_URL = var.api_base_url
          FANOUT_WINDOW       = var.window
          FANOUT_SEND_THREADS = tostring(var.producer_send_threads)
          FANOUT_LOG_LEVEL    = var.log_level
        },
        # Without devices the producer lists them from the API.
        length(var.devices) > 0 ? { FANOUT_DEVICES = join(",", var.devices) } : {},
      )
      reserved_concurrency = null
      ephemeral_storage_mb = 512
      asynchronous         = true
    }
    consumer = {
      description = "Fetches the documents an SQS batch names, validates them and sends them to Firehose."
      handler     = "consumer.handler.lambda_handler"
      timeout     = var.consumer_timeout_seconds
      memory_mb   = var.consumer_memory_mb
      environment = {
        FANOUT_API_BASE_URL      = var.api_base_url
        FANOUT_DELIVERY_STREAM   = join(",", aws_kinesis_firehose_delivery_stream.records[*].name)
        FANOUT_BUCKET            = aws_s3_bucket.data.id
        FANOUT_QUARANTINE_PREFIX = var.quarantine_prefix
        FANOUT_FETCH_CONCURRENCY = tostring(var.fetch_concurrency)
        FANOUT_CONNECT_TIMEOUT   = tostring(var.connect_timeout_seconds)
        FANOUT_REQUEST_TIMEOUT   = tostring(var.request_timeout_seconds)
        FANOUT_MAX_BODY_BYTES    = tostring(var.max_body_bytes)
        FANOUT_LOG_LEVEL         = var.log_level
      }
      reserved_concurrency = null
      ephemeral_storage_mb = 512
      asynchronous         = false
    }
    writer = {
      description = "Converts each raw object Firehose delivers into parquet."
      handler     = "writer.handler.lambda_handler"
      timeout     = var.writer_timeout_seconds
      memory_mb   = var.writer_memory_mb
      environment = {
        FANOUT_BUCKET            = aws_s3_bucket.data.id
        FANOUT_RAW_PREFIX        = var.raw_prefix
        FANOUT_PARQUET_PREFIX    = var.parquet_prefix
        FANOUT_QUARANTINE_PREFIX = var.quarantine_prefix
        FANOUT_CHUNK_BYTES       = tostring(var.writer_chunk_bytes)
        FANOUT_COMPRESSION       = var.compression
        FANOUT_LOG_LEVEL         = var.log_level
      }
      reserved_concurrency = null
      ephemeral_storage_mb = 512
      asynchronous         = true
    }
    compactor = {
      description = "Merges each recent parquet partition's small files, one row per descriptor."
      handler     = "writer.handler.compact_handler"
      timeout     = var.compactor_timeout_seconds
      memory_mb   = var.compactor_memory_mb
      environment = {
        FANOUT_BUCKET               = aws_s3_bucket.data.id
        FANOUT_PARQUET_PREFIX       = var.parquet_prefix
        FANOUT_COMPRESSION          = var.compression
        FANOUT_COMPACT_TARGET_BYTES = tostring(var.compact_target_bytes)
        FANOUT_LOG_LEVEL            = var.log_level
      }
      # Runs on one partition must not overlap (writer/compact.py): one at a time.
      reserved_concurrency = 1
      # One input and one output file of compact_target_bytes sit on local disk at once.
      ephemeral_storage_mb = max(512, ceil(3 * var.compact_target_bytes / 1048576))
      asynchronous         = true
    }
  }

  # Set on every function, beside its own environment.
  common_environment = {
    FANOUT_METRICS_NAMESPACE = "${var.name_prefix}/pipeline"
  }
  environments = { for name, f in local.functions : name => merge(f.environment, local.common_environment) }

  # Where the target cannot even create functions (LocalStack without Docker), none are.
  deployed_functions = var.create_functions ? local.functions : {}
  # Invoked asynchronously (schedules, S3): two retries, then the on-failure destination.
  asynchronous_functions = { for name, f in local.deployed_functions : name => f if f.asynchronous }
  max_retry_attempts     = 2
}

resource "aws_lambda_function" "function" {
  for_each = local.deployed_functions

  function_name = local.function_names[each.key]
  description   = each.value.description
  role          = local.roles[each.key]
  runtime       = "python3.12"
  architectures = [var.architecture]
  handler       = each.value.handler
  timeout       = each.value.timeout
  memory_size   = each.value.memory_mb

  filename         = local.packages[each.key]
  source_code_hash = filebase64sha256(local.packages[each.key])

  reserved_concurrent_executions = each.value.reserved_concurrency

  ephemeral_storage {
    size = each.value.ephemeral_storage_mb
  }

  environment {
    variables = local.environments[each.key]
  }

  tracing_config {
    mode = "Active"
  }

  # The log group must exist first, or Lambda creates one that never expires; the role's
  # policy too, since Lambda checks it can use what the function is wired to.
  depends_on = [
    aws_iam_role_policy.producer,
    aws_iam_role_policy.consumer,
    aws_iam_role_policy.writer,
    aws_iam_role_policy.compactor,
    aws_cloudwatch_log_group.lambda,
  ]

  lifecycle {
    precondition {
      condition     = var.request_timeout_seconds < var.consumer_timeout_seconds
      error_message = "request_timeout_seconds (${var.request_timeout_seconds}) must be below consumer_timeout_seconds (${var.consumer_timeout_seconds})."
    }
  }
}

resource "aws_lambda_event_source_mapping" "consumer_requests" {
  count = var.create_functions ? 1 : 0

  event_source_arn = aws_sqs_queue.requests.arn
  # The name, not the ARN: AWS takes either, but moto stores the value as given and
  # ListEventSourceMappings(FunctionName=<name>), which the local runner calls, matches it
  # literally.
  function_name                      = aws_lambda_function.function["consumer"].function_name
  batch_size                         = var.consumer_batch_size
  maximum_batching_window_in_seconds = var.consumer_batching_window_seconds
  function_response_types            = ["ReportBatchItemFailures"]

  # Disabled where the target cannot run function code: see functions_run_on_target.
  enabled = var.functions_run_on_target

  scaling_config {
    maximum_concurrency = var.consumer_max_concurrency
  }

  # Lambda checks the role may receive from the queue when the mapping is created.
  depends_on = [aws_iam_role_policy.consumer]

  lifecycle {
    precondition {
      condition     = var.consumer_batch_size <= 10 || var.consumer_batching_window_seconds >= 1
      error_message = "consumer_batching_window_seconds must be at least 1 when consumer_batch_size is over 10 (an SQS event source rule)."
    }
  }
}

# Asynchronous invocations (schedules -> producer and compactor, S3 -> writer): two retries,
# then the event goes to the failed-invocations queue as an on-failure destination record,
# which carries the request, the error and the attempt count (a dead_letter_config would
# carry only the event). The role's sqs:SendMessage on that queue is checked when this is
# created.
resource "aws_lambda_function_event_invoke_config" "function" {
  for_each = local.asynchronous_functions

  function_name          = aws_lambda_function.function[each.key].function_name
  maximum_retry_attempts = local.max_retry_attempts

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_invocations.arn
    }
  }
}
