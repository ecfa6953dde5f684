locals {
  # True when the configuration targets a local emulator (moto, LocalStack) rather than AWS.
  emulated = var.aws_endpoint_url != ""
}

# Credentials never live here: the provider reads AWS_ACCESS_KEY_ID, AWS_PROFILE, SSO, ... as
# usual. With aws_endpoint_url empty every setting below is the provider's own default, so the
# configuration is plain AWS.
provider "aws" {
  region = var.aws_region

  s3_use_path_style           = local.emulated
  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_requesting_account_id  = local.emulated

  # The block is left out entirely for AWS. (Provider 5.x would also ignore empty-string
  # endpoints and fall back to AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL and the regional
  # default, but not emitting the block makes that independent of provider internals.)
  dynamic "endpoints" {
    for_each = local.emulated ? [var.aws_endpoint_url] : []

    content {
      cloudwatch = endpoints.value
      events     = endpoints.value
      firehose   = endpoints.value
      iam        = endpoints.value
      lambda     = endpoints.value
      logs       = endpoints.value
      s3         = endpoints.value
      sqs        = endpoints.value
      sts        = endpoints.value
    }
  }

  default_tags {
    tags = merge({ Project = var.name_prefix }, var.tags)
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}
