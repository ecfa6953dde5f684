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
}

resource "aws_lambda_function" "producer" {
  function_name = local.function_names.producer
  description   = "Turns a schedule tick or a backfill range into request descriptors on SQS."
  role          = aws_iam_role.producer.arn
  runtime       = "python3.12"
  architectures = [var.architecture]
  handler       = "producer.handler.lambda_handler"
  timeout       = var.producer_timeout_seconds
  memory_size   = var.producer_memory_mb

  filename         = local.packages.producer
  source_code_hash = filebase64sha256(local.packages.producer)

  environment {
    variables = merge(
      {
        FANOUT_QUEUE_URL    = aws_sqs_queue.requests.url
        FANOUT_API_BASE_URL = var.api_base_url
        FANOUT_WINDOW       = var.window
        FANOUT_LOG_LEVEL    = var.log_level
      },
      # Without devices the producer lists them from the API.
      length(var.devices) > 0 ? { FANOUT_DEVICES = join(",", var.devices) } : {},
    )
  }

  tracing_config {
    mode = "Active"
  }

  # The log group must exist first, or Lambda creates one that never expires.
  depends_on = [
    aws_iam_role_policy.producer,
    aws_cloudwatch_log_group.lambda["producer"],
  ]
}

resource "aws_lambda_function" "consumer" {
  function_name = local.function_names.consumer
  description   = "Fetches the documents an SQS batch names, validates them and sends them to Firehose."
  role          = aws_iam_role.consumer.arn
  runtime       = "python3.12"
  architectures = [var.architecture]
  handler       = "consumer.handler.lambda_handler"
  timeout       = var.consumer_timeout_seconds
  memory_size   = var.consumer_memory_mb

  filename         = local.packages.consumer
  source_code_hash = filebase64sha256(local.packages.consumer)

  environment {
    variables = {
      FANOUT_API_BASE_URL      = var.api_base_url
      FANOUT_DELIVERY_STREAM   = aws_kinesis_firehose_delivery_stream.records.name
      FANOUT_BUCKET            = aws_s3_bucket.data.id
      FANOUT_QUARANTINE_PREFIX = var.quarantine_prefix
      FANOUT_FETCH_CONCURRENCY = tostring(var.fetch_concurrency)
      FANOUT_CONNECT_TIMEOUT   = tostring(var.connect_timeout_seconds)
      FANOUT_REQUEST_TIMEOUT   = tostring(var.request_timeout_seconds)
      FANOUT_MAX_BODY_BYTES    = tostring(var.max_body_bytes)
      FANOUT_LOG_LEVEL         = var.log_level
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [
    aws_iam_role_policy.consumer,
    aws_cloudwatch_log_group.lambda["consumer"],
  ]

  lifecycle {
    precondition {
      condition     = var.request_timeout_seconds < var.consumer_timeout_seconds
      error_message = "request_timeout_seconds (${var.request_timeout_seconds}) must be below consumer_timeout_seconds (${var.consumer_timeout_seconds})."
    }
  }
}

resource "aws_lambda_function" "writer" {
  function_name = local.function_names.writer
  description   = "Converts each raw object Firehose delivers into parquet."
  role          = aws_iam_role.writer.arn
  runtime       = "python3.12"
  architectures = [var.architecture]
  handler       = "writer.handler.lambda_handler"
  timeout       = var.writer_timeout_seconds
  memory_size   = var.writer_memory_mb

  filename         = local.packages.writer
  source_code_hash = filebase64sha256(local.packages.writer)

  environment {
    variables = {
      FANOUT_BUCKET            = aws_s3_bucket.data.id
      FANOUT_RAW_PREFIX        = var.raw_prefix
      FANOUT_PARQUET_PREFIX    = var.parquet_prefix
      FANOUT_QUARANTINE_PREFIX = var.quarantine_prefix
      FANOUT_CHUNK_BYTES       = tostring(var.writer_chunk_bytes)
      FANOUT_COMPRESSION       = var.compression
      FANOUT_LOG_LEVEL         = var.log_level
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [
    aws_iam_role_policy.writer,
    aws_cloudwatch_log_group.lambda["writer"],
  ]
}

resource "aws_lambda_function" "compactor" {
  function_name = local.function_names.compactor
  description   = "Merges each recent parquet partition's small files, one row per descriptor."
  role          = aws_iam_role.compactor.arn
  runtime       = "python3.12"
  architectures = [var.architecture]
  handler       = "writer.handler.compact_handler"
  timeout       = var.compactor_timeout_seconds
  memory_size   = var.compactor_memory_mb

  filename         = local.packages.compactor
  source_code_hash = filebase64sha256(local.packages.compactor)

  # Runs on one partition must not overlap (writer/compact.py): one at a time.
  reserved_concurrent_executions = 1

  # One input and one output file of compact_target_bytes sit on local disk at once.
  ephemeral_storage {
    size = max(512, ceil(3 * var.compact_target_bytes / 1048576))
  }

  environment {
    variables = {
      FANOUT_BUCKET               = aws_s3_bucket.data.id
      FANOUT_PARQUET_PREFIX       = var.parquet_prefix
      FANOUT_COMPRESSION          = var.compression
      FANOUT_COMPACT_TARGET_BYTES = tostring(var.compact_target_bytes)
      FANOUT_LOG_LEVEL            = var.log_level
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [
    aws_iam_role_policy.compactor,
    aws_cloudwatch_log_group.lambda["compactor"],
  ]
}

resource "aws_lambda_event_source_mapping" "consumer_requests" {
  event_source_arn = aws_sqs_queue.requests.arn
  # The name, not the ARN: AWS takes either, but moto stores the value as given and
  # ListEventSourceMappings(FunctionName=<name>), which the local runner calls, matches it
  # literally.
  function_name                      = aws_lambda_function.consumer.function_name
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
# then the event
# goes to the failed-invocations queue as an on-failure destination record, which carries
# the request, the error and the attempt count (a dead_letter_config would carry only the
# event). The role's sqs:SendMessage on that queue is checked when this is created.
resource "aws_lambda_function_event_invoke_config" "producer" {
  function_name          = aws_lambda_function.producer.function_name
  maximum_retry_attempts = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_invocations.arn
    }
  }

  depends_on = [aws_iam_role_policy.producer]
}

resource "aws_lambda_function_event_invoke_config" "writer" {
  function_name          = aws_lambda_function.writer.function_name
  maximum_retry_attempts = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_invocations.arn
    }
  }

  depends_on = [aws_iam_role_policy.writer]
}

resource "aws_lambda_function_event_invoke_config" "compactor" {
  function_name          = aws_lambda_function.compactor.function_name
  maximum_retry_attempts = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.failed_invocations.arn
    }
  }

  depends_on = [aws_iam_role_policy.compactor]
}
