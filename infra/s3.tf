locals {
  account_id = data.aws_caller_identity.current.account_id

  # Account and region make the default names globally unique yet deterministic (moto's
  # account is always 123456789012).
  bucket_name = coalesce(var.bucket_name, "${var.name_prefix}-${local.account_id}-${var.aws_region}")

  # Firehose's error output lives beside, never under, raw_prefix: objects there must not
  # invoke the writer.
  firehose_error_prefix = "raw-errors/"

  lambda_function_names = ["producer", "consumer", "writer", "compactor"]

  # The bucket denies every request not made over TLS. An emulator endpoint on plain http can
  # only be reached without TLS, so there the policy would refuse every object request (moto
  # evaluates it: PutObject answers 403). It is left out for such an endpoint alone; AWS and
  # https endpoints always get it.
  deny_insecure_transport = !startswith(lower(var.aws_endpoint_url), "http://")
}

# Data bucket: raw NDJSON from Firehose, parquet from the writer, quarantined documents.

resource "aws_s3_bucket" "data" {
  bucket        = local.bucket_name
  force_destroy = var.force_destroy_bucket

  lifecycle {
    postcondition {
      condition     = self.arn == local.arns.bucket
      error_message = "The bucket's ARN is ${self.arn}, not the ${local.arns.bucket} the policies grant on (iam.tf)."
    }
  }
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket = aws_s3_bucket.data.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  count = local.deny_insecure_transport ? 1 : 0

  bucket = aws_s3_bucket.data.id
  policy = data.aws_iam_policy_document.data_bucket.json

  # S3 rejects a bucket policy while the public access block is being applied.
  depends_on = [aws_s3_bucket_public_access_block.data]
}

data "aws_iam_policy_document" "data_bucket" {
  statement {
    sid    = "DenyInsecureTransport"
    effect = "Deny"
    # A deny must cover every action, so here (and only in denies) the action is s3:*.
    actions   = ["s3:*"]
    resources = [local.arns.bucket, "${local.arns.bucket}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_notification" "data" {
  bucket = aws_s3_bucket.data.id

  dynamic "lambda_function" {
    for_each = var.create_functions ? [aws_lambda_function.function["writer"].arn] : []

    content {
      id                  = "raw-to-writer"
      lambda_function_arn = lambda_function.value
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = var.raw_prefix
    }
  }

  # Without functions, the same notification goes to a queue the local runner reads.
  dynamic "queue" {
    for_each = var.create_functions ? [] : [aws_sqs_queue.raw_objects[0].arn]

    content {
      id            = "raw-to-writer"
      queue_arn     = queue.value
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = var.raw_prefix
    }
  }

  # S3 checks it may invoke the function (or send to the queue) when the notification is put.
  depends_on = [aws_lambda_permission.writer_from_s3, aws_sqs_queue_policy.raw_objects]

  lifecycle {
    precondition {
      # Anything the writer (or Firehose's error output) writes under raw_prefix would invoke
      # the writer again: a loop that runs until someone notices the bill.
      condition = alltrue([
        for prefix in [var.parquet_prefix, var.quarantine_prefix, local.firehose_error_prefix] :
        !startswith(prefix, var.raw_prefix) && !startswith(var.raw_prefix, prefix)
      ])
      error_message = "raw_prefix must not overlap parquet_prefix, quarantine_prefix or \"${local.firehose_error_prefix}\": the writer would invoke itself."
    }
  }
}

resource "aws_lambda_permission" "writer_from_s3" {
  count = var.create_functions ? 1 : 0

  statement_id   = "AllowS3InvokeFromDataBucket"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function["writer"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.data.arn
  source_account = local.account_id
}

# The writer's uploads go multipart above 8 MB; parts of one that never completed (a timeout
# mid-upload) would otherwise be stored, and billed, forever.
resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
