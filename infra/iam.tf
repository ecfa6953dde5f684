data "aws_iam_policy_document" "lambda_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "firehose_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }

    # Only Firehose acting for this account may assume the role (confused-deputy guard).
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

locals {
  # The ARNs the policies grant on, built from the resources' names rather than read from the
  # resources, so that every policy is known at plan time: `terraform plan` shows each role's
  # complete permissions before anything exists, and the plan test checks them without an
  # apply. A postcondition on each resource checks its real ARN is the one built here.
  arn_prefix = "arn:${data.aws_partition.current.partition}"
  arns = {
    bucket                   = "${local.arn_prefix}:s3:::${local.bucket_name}"
    requests_queue           = "${local.arn_prefix}:sqs:${var.aws_region}:${local.account_id}:${local.queue_names.requests}"
    failed_invocations_queue = "${local.arn_prefix}:sqs:${var.aws_region}:${local.account_id}:${local.queue_names.failed_invocations}"
    delivery_streams = [
      for name in local.delivery_stream_names :
      "${local.arn_prefix}:firehose:${var.aws_region}:${local.account_id}:deliverystream/${name}"
    ]
    firehose_log_group = "${local.arn_prefix}:logs:${var.aws_region}:${local.account_id}:log-group:${local.firehose_log_group_name}"
    lambda_log_groups = {
      for function, name in local.function_names :
      function => "${local.arn_prefix}:logs:${var.aws_region}:${local.account_id}:log-group:/aws/lambda/${name}"
    }
  }
}

# What every function's role allows beside its own work: its log group, X-Ray, and, for
# those invoked asynchronously, the on-failure destination.
data "aws_iam_policy_document" "lambda_common" {
  for_each = local.function_names

  dynamic "statement" {
    for_each = local.functions[each.key].asynchronous ? [local.arns.failed_invocations_queue] : []
    content {
      sid       = "OnFailureDestination"
      actions   = ["sqs:SendMessage"]
      resources = [statement.value]
    }
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.arns.lambda_log_groups[each.key]}:*"]
  }

  # X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions: "*"
  # is the only resource they accept, and the only wildcard in these policies.
  statement {
    sid       = "WriteTraces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }
}

# Producer

resource "aws_iam_role" "producer" {
  name               = "${var.name_prefix}-producer"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "producer" {
  name   = "${var.name_prefix}-producer"
  role   = aws_iam_role.producer.id
  policy = data.aws_iam_policy_document.producer.json
}

data "aws_iam_policy_document" "producer" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_common["producer"].json]

  statement {
    sid       = "EnqueueRequests"
    actions   = ["sqs:SendMessage"]
    resources = [local.arns.requests_queue]
  }
}

# Consumer

resource "aws_iam_role" "consumer" {
  name               = "${var.name_prefix}-consumer"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "consumer" {
  name   = "${var.name_prefix}-consumer"
  role   = aws_iam_role.consumer.id
  policy = data.aws_iam_policy_document.consumer.json
}

data "aws_iam_policy_document" "consumer" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_common["consumer"].json]

  statement {
    sid = "ConsumeRequests"
    # Receive, Delete and GetQueueAttributes for the event source mapping; GetQueueUrl and
    # ChangeMessageVisibility for the consumer, which defers the redelivery of transient
    # failures.
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:ChangeMessageVisibility",
    ]
    resources = [local.arns.requests_queue]
  }

  statement {
    sid       = "DeliverRecords"
    actions   = ["firehose:PutRecordBatch"]
    resources = local.arns.delivery_streams
  }

  statement {
    sid       = "Quarantine"
    actions   = ["s3:PutObject"]
    resources = ["${local.arns.bucket}/${var.quarantine_prefix}consumer/*"]
  }
}

# Writer

resource "aws_iam_role" "writer" {
  name               = "${var.name_prefix}-writer"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "writer" {
  name   = "${var.name_prefix}-writer"
  role   = aws_iam_role.writer.id
  policy = data.aws_iam_policy_document.writer.json
}

data "aws_iam_policy_document" "writer" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_common["writer"].json]

  statement {
    sid       = "ReadRaw"
    actions   = ["s3:GetObject"]
    resources = ["${local.arns.bucket}/${var.raw_prefix}*"]
  }

  # upload_file goes multipart above 8 MB, and aborts the upload if a part fails.
  statement {
    sid     = "WriteParquetAndQuarantine"
    actions = ["s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [
      "${local.arns.bucket}/${var.parquet_prefix}*",
      "${local.arns.bucket}/${var.quarantine_prefix}writer/*",
    ]
  }

  # Listing lets a missing raw key read as 404 rather than 403; limited to the raw prefix.
  statement {
    sid       = "ListRaw"
    actions   = ["s3:ListBucket"]
    resources = [local.arns.bucket]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.raw_prefix}*"]
    }
  }
}

# Compactor: reads, rewrites and deletes files of the parquet tree, nothing else.

resource "aws_iam_role" "compactor" {
  name               = "${var.name_prefix}-compactor"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume_role.json
}

resource "aws_iam_role_policy" "compactor" {
  name   = "${var.name_prefix}-compactor"
  role   = aws_iam_role.compactor.id
  policy = data.aws_iam_policy_document.compactor.json
}

data "aws_iam_policy_document" "compactor" {
  source_policy_documents = [data.aws_iam_policy_document.lambda_common["compactor"].json]

  statement {
    sid       = "RewriteParquet"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.arns.bucket}/${var.parquet_prefix}*"]
  }

  statement {
    sid       = "ListParquet"
    actions   = ["s3:ListBucket"]
    resources = [local.arns.bucket]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.parquet_prefix}*"]
    }
  }
}

# Firehose

resource "aws_iam_role" "firehose" {
  name               = "${var.name_prefix}-firehose"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume_role.json
}

resource "aws_iam_role_policy" "firehose" {
  name   = "${var.name_prefix}-firehose"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

data "aws_iam_policy_document" "firehose" {
  statement {
    sid = "BucketLevel"
    actions = [
      "s3:GetBucketLocation",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
    ]
    resources = [local.arns.bucket]
  }

  statement {
    sid = "DeliverRawAndErrors"
    actions = [
      "s3:PutObject",
      "s3:GetObject",
      "s3:AbortMultipartUpload",
    ]
    resources = [
      "${local.arns.bucket}/${var.raw_prefix}*",
      "${local.arns.bucket}/${local.firehose_error_prefix}*",
    ]
  }

  statement {
    sid       = "WriteDeliveryErrorLogs"
    actions   = ["logs:PutLogEvents"]
    resources = ["${local.arns.firehose_log_group}:log-stream:*"]
  }
}
