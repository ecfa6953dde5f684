# Target

variable "name_prefix" {
  description = "Prefix of every resource name (functions, queues, roles, buckets, log groups)."
  type        = string
  default     = "fanout"

  validation {
    # Lower case because it becomes part of the bucket's name; 24 characters at most so that
    # "<prefix>-<account id>-<region>" stays well within S3's 63.
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 2-24 characters of a-z, 0-9 and '-', start with a letter and not end with '-'."
  }
}

variable "aws_region" {
  description = "AWS region to deploy to (also the region requested from the emulator)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.aws_region))
    error_message = "aws_region must look like us-east-1."
  }
}

variable "aws_endpoint_url" {
  description = "Endpoint of a local AWS emulator (e.g. http://127.0.0.1:5000) that every service is sent to; empty (the default) means real AWS."
  type        = string
  default     = ""

  validation {
    condition     = var.aws_endpoint_url == "" || can(regex("^https?://[^/?#]+/?$", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be empty or an http(s) URL with no path, such as http://127.0.0.1:5000."
  }
}

variable "functions_run_on_target" {
  description = <<-EOT
    Whether the target runs Lambda code. True for AWS. Set false for emulators that cannot run
    functions (moto, or LocalStack without Docker): the consumer's SQS event source mapping is
    then created with the same configuration but disabled, because moto's own SQS trigger fires
    inside SendMessage with one record per invocation, ignores batchItemFailures and bumps
    receive counts. The local runner reads the mapping's configuration (batch size, batching
    window, maximum concurrency, ReportBatchItemFailures) from the emulator's Lambda API and
    polls the queue itself.
  EOT
  type        = bool
  default     = true
}

variable "create_functions" {
  description = <<-EOT
    Whether Lambda functions are created at all. True for AWS and for moto (which stores
    functions it cannot run). False for LocalStack without Docker, where functions never reach
    the Active state: everything else is applied, the bucket's notifications and the schedules
    go to queues instead (raw-objects, schedule-ticks), and the local runner plays the functions
    from the `functions` and `event_sources` outputs. Implies functions_run_on_target = false.
  EOT
  type        = bool
  default     = true
}

variable "firehose_streams" {
  description = <<-EOT
    How many Firehose delivery streams carry the consumer's records. One stream takes up to
    its region's Direct PUT quota (5 MiB/s, 2,000 calls/s and 500,000 records/s in us-east-1,
    us-west-2 and eu-west-1; less elsewhere): the first limit fanout meets as it grows. With
    N streams the consumer sends each record to the stream a hash of its device id picks, so
    the quota is N times larger and a device's records stay together. `fanout plan` says how
    many a rate needs.
  EOT
  type        = number
  default     = 1

  validation {
    condition     = var.firehose_streams >= 1 && var.firehose_streams <= 50
    error_message = "firehose_streams must be between 1 and 50."
  }
}

variable "firehose_encryption" {
  description = "Server-side encryption of the Firehose stream. Keep it on; LocalStack cannot emulate StartDeliveryStreamEncryption, so localstack.tfvars turns it off there."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Extra tags for every resource (the provider adds Project = name_prefix)."
  type        = map(string)
  default     = {}
}

# Storage

variable "bucket_name" {
  description = "Name of the data bucket; null derives \"<name_prefix>-<account id>-<region>\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 characters of a-z, 0-9, '.', '-')."
  }
}

variable "force_destroy_bucket" {
  description = "Let `terraform destroy` delete the data bucket even when it holds objects."
  type        = bool
  default     = false
}

variable "raw_prefix" {
  description = "Key prefix where Firehose delivers raw NDJSON; objects created under it invoke the writer."
  type        = string
  default     = "raw/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()=-]+(/[A-Za-z0-9!_.*'()=-]+)*/$", var.raw_prefix)) && !contains(split("/", var.raw_prefix), "..")
    error_message = "raw_prefix must be a relative key prefix ending in '/', such as raw/."
  }
}

variable "parquet_prefix" {
  description = "Key prefix the writer puts parquet objects under."
  type        = string
  default     = "parquet/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()=-]+(/[A-Za-z0-9!_.*'()=-]+)*/$", var.parquet_prefix)) && !contains(split("/", var.parquet_prefix), "..")
    error_message = "parquet_prefix must be a relative key prefix ending in '/', such as parquet/."
  }
}

variable "quarantine_prefix" {
  description = "Key prefix the consumer and writer put rejected documents under, with the reason."
  type        = string
  default     = "quarantine/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()=-]+(/[A-Za-z0-9!_.*'()=-]+)*/$", var.quarantine_prefix)) && !contains(split("/", var.quarantine_prefix), "..")
    error_message = "quarantine_prefix must be a relative key prefix ending in '/', such as quarantine/."
  }
}

# Lambda packages and runtime

variable "package_dir" {
  description = "Folder holding producer.zip, consumer.zip and writer.zip (built by `python infra/package.py`); null means build/lambda at the repository root (path.module/../build/lambda)."
  type        = string
  default     = null
}

variable "architecture" {
  description = "Instruction set of the functions; must match the --arch the zips were built with."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "log_level" {
  description = "Python log level of the functions (FANOUT_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' and Firehose's log groups, in days. Logs always expire: CloudWatch's \"never\" (0) is refused."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, ...); 0 (never expire) is refused."
  }
}

# Producer

variable "api_base_url" {
  description = "Base URL of the IoT REST API (FANOUT_API_BASE_URL); the consumer builds document URLs from it."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/?#]+(/[^?#]*)?$", var.api_base_url))
    error_message = "api_base_url must be an http(s) URL without a query or fragment."
  }
}

variable "devices" {
  description = "Device ids the producer asks for on each tick (FANOUT_DEVICES); empty means the producer lists the devices from the API."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for device in var.devices : can(regex("^[^,\\s]+$", device))])
    error_message = "Each device id must be non-empty and contain no comma or whitespace."
  }
}

variable "window" {
  description = "Time window each schedule tick asks for (FANOUT_WINDOW): 90, 90s, 15m, 1h or 1d."
  type        = string
  default     = "1h"

  validation {
    condition     = can(regex("^[0-9]*[1-9][0-9]*[smhd]?$", var.window))
    error_message = "window must be a positive duration such as 90s, 15m, 1h or 1d."
  }
}

variable "schedule_expression" {
  description = "EventBridge schedule that invokes the producer."
  type        = string
  default     = "cron(5 * * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be cron(...) or rate(...)."
  }
}

variable "producer_timeout_seconds" {
  description = "Producer function timeout."
  type        = number
  default     = 120

  validation {
    condition     = var.producer_timeout_seconds >= 1 && var.producer_timeout_seconds <= 900
    error_message = "producer_timeout_seconds must be between 1 and 900."
  }
}

variable "producer_memory_mb" {
  description = "Producer function memory."
  type        = number
  default     = 256

  validation {
    condition     = var.producer_memory_mb >= 128 && var.producer_memory_mb <= 10240
    error_message = "producer_memory_mb must be between 128 and 10240."
  }
}

variable "producer_shards" {
  description = <<-EOT
    How many producer invocations share each schedule tick. One invocation enqueues what it
    can within Lambda's 900 s (about 4 million descriptors at 1,769 MB: each SendMessageBatch
    costs about 2 ms of a vCPU); past that, N rules fire together and each invocation
    enqueues the devices a hash of their id gives to its shard. `fanout plan` says how many
    a rate needs.
  EOT
  type        = number
  default     = 1

  validation {
    condition     = var.producer_shards >= 1 && var.producer_shards <= 100
    error_message = "producer_shards must be between 1 and 100."
  }
}

variable "producer_send_threads" {
  description = "Threads the producer sends SendMessageBatch calls from (FANOUT_SEND_THREADS). Each call costs about 2 ms of a full vCPU besides its round trip, so more threads help only with the memory (hence CPU) to drive them; `fanout plan` suggests both."
  type        = number
  default     = 4

  validation {
    condition     = var.producer_send_threads >= 1 && var.producer_send_threads <= 64
    error_message = "producer_send_threads must be between 1 and 64."
  }
}

# Requests queue

variable "queue_visibility_timeout_seconds" {
  description = "Visibility timeout of the requests queue; null means 6 x consumer_timeout_seconds (AWS's guidance for Lambda event sources). Must be at least consumer_timeout_seconds."
  type        = number
  default     = null

  validation {
    condition     = var.queue_visibility_timeout_seconds == null ? true : (var.queue_visibility_timeout_seconds >= 0 && var.queue_visibility_timeout_seconds <= 43200)
    error_message = "queue_visibility_timeout_seconds must be null or between 0 and 43200."
  }
}

variable "max_receive_count" {
  description = "Receives of one request descriptor before SQS moves it to the dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

# Consumer

variable "consumer_batch_size" {
  description = "Most SQS messages per consumer invocation (event source mapping BatchSize)."
  type        = number
  default     = 100

  validation {
    condition     = var.consumer_batch_size >= 1 && var.consumer_batch_size <= 10000
    error_message = "consumer_batch_size must be between 1 and 10000."
  }
}

variable "consumer_batching_window_seconds" {
  description = "Longest wait to fill a batch (MaximumBatchingWindowInSeconds); AWS requires at least 1 when the batch size is over 10."
  type        = number
  default     = 5

  validation {
    condition     = var.consumer_batching_window_seconds >= 0 && var.consumer_batching_window_seconds <= 300
    error_message = "consumer_batching_window_seconds must be between 0 and 300."
  }
}

variable "consumer_max_concurrency" {
  description = "Most concurrent consumer invocations the SQS event source starts (ScalingConfig.MaximumConcurrency)."
  type        = number
  default     = 10

  validation {
    condition     = var.consumer_max_concurrency >= 2 && var.consumer_max_concurrency <= 1000
    error_message = "consumer_max_concurrency must be between 2 and 1000 (AWS's limits)."
  }
}

variable "consumer_timeout_seconds" {
  description = "Consumer function timeout."
  type        = number
  default     = 120

  validation {
    condition     = var.consumer_timeout_seconds >= 1 && var.consumer_timeout_seconds <= 900
    error_message = "consumer_timeout_seconds must be between 1 and 900."
  }
}

variable "consumer_memory_mb" {
  description = "Consumer function memory."
  type        = number
  default     = 1024

  validation {
    condition     = var.consumer_memory_mb >= 128 && var.consumer_memory_mb <= 10240
    error_message = "consumer_memory_mb must be between 128 and 10240."
  }
}

variable "fetch_concurrency" {
  description = "Most concurrent API requests in one consumer invocation (FANOUT_FETCH_CONCURRENCY)."
  type        = number
  default     = 32

  validation {
    condition     = var.fetch_concurrency >= 1 && var.fetch_concurrency <= 1024
    error_message = "fetch_concurrency must be between 1 and 1024."
  }
}

variable "connect_timeout_seconds" {
  description = "Connect timeout of one API request (FANOUT_CONNECT_TIMEOUT)."
  type        = number
  default     = 3

  validation {
    condition     = var.connect_timeout_seconds >= 0.1
    error_message = "connect_timeout_seconds must be at least 0.1."
  }
}

variable "request_timeout_seconds" {
  description = "Total timeout of one API request (FANOUT_REQUEST_TIMEOUT); keep it well below consumer_timeout_seconds."
  type        = number
  default     = 10

  validation {
    condition     = var.request_timeout_seconds >= 0.1
    error_message = "request_timeout_seconds must be at least 0.1."
  }
}

variable "max_body_bytes" {
  description = "Largest API response body the consumer reads (FANOUT_MAX_BODY_BYTES)."
  type        = number
  default     = 8388608

  validation {
    condition     = var.max_body_bytes >= 1024
    error_message = "max_body_bytes must be at least 1024."
  }
}

# Firehose

variable "firehose_buffer_size_mb" {
  description = "Firehose buffering size before it writes an object under raw_prefix."
  type        = number
  default     = 64

  validation {
    condition     = var.firehose_buffer_size_mb >= 1 && var.firehose_buffer_size_mb <= 128
    error_message = "firehose_buffer_size_mb must be between 1 and 128."
  }
}

variable "firehose_buffer_interval_seconds" {
  description = "Firehose buffering interval before it writes an object under raw_prefix."
  type        = number
  default     = 300

  validation {
    condition     = var.firehose_buffer_interval_seconds >= 0 && var.firehose_buffer_interval_seconds <= 900
    error_message = "firehose_buffer_interval_seconds must be between 0 and 900."
  }
}

# Writer

variable "writer_timeout_seconds" {
  description = "Writer function timeout."
  type        = number
  default     = 300

  validation {
    condition     = var.writer_timeout_seconds >= 1 && var.writer_timeout_seconds <= 900
    error_message = "writer_timeout_seconds must be between 1 and 900."
  }
}

variable "writer_memory_mb" {
  description = "Writer function memory."
  type        = number
  default     = 2048

  validation {
    condition     = var.writer_memory_mb >= 128 && var.writer_memory_mb <= 10240
    error_message = "writer_memory_mb must be between 128 and 10240."
  }
}

variable "writer_chunk_bytes" {
  description = "Raw bytes the writer reads and parses at a time; with the row-group size it bounds the writer's memory (FANOUT_CHUNK_BYTES)."
  type        = number
  default     = 16777216

  validation {
    condition     = var.writer_chunk_bytes >= 65536
    error_message = "writer_chunk_bytes must be at least 65536."
  }
}

variable "compression" {
  description = "Parquet compression codec (FANOUT_COMPRESSION)."
  type        = string
  default     = "zstd"

  validation {
    condition     = contains(["zstd", "snappy", "gzip", "none"], var.compression)
    error_message = "compression must be one of zstd, snappy, gzip, none."
  }
}

# Alarms

variable "alarm_actions" {
  description = "ARNs (an SNS topic, typically) notified when an alarm fires and when it clears; empty means the alarms only change state, visible in the CloudWatch console."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.alarm_actions : can(regex("^arn:", arn))])
    error_message = "alarm_actions must be ARNs."
  }
}

variable "quarantine_rate_alarm_percent" {
  description = "Quarantined documents, as a percentage of those the consumer fetched in five minutes, above which the quarantine-rate alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.quarantine_rate_alarm_percent > 0 && var.quarantine_rate_alarm_percent <= 100
    error_message = "quarantine_rate_alarm_percent must be above 0 and at most 100."
  }
}

variable "compaction_schedule_expression" {
  description = "When the compactor merges yesterday's and today's parquet partitions: twenty past each hour by default, clear of the producer's tick."
  type        = string
  default     = "cron(20 * * * ? *)"
}

variable "compactor_timeout_seconds" {
  description = "Compactor function timeout in seconds."
  type        = number
  default     = 900

  validation {
    condition     = var.compactor_timeout_seconds >= 1 && var.compactor_timeout_seconds <= 900
    error_message = "compactor_timeout_seconds must be between 1 and 900."
  }
}

variable "compactor_memory_mb" {
  description = "Compactor function memory in MB."
  type        = number
  default     = 2048

  validation {
    condition     = var.compactor_memory_mb >= 128 && var.compactor_memory_mb <= 10240
    error_message = "compactor_memory_mb must be between 128 and 10240."
  }
}

variable "compact_target_bytes" {
  description = "Size on disk at which compaction closes an output file (FANOUT_COMPACT_TARGET_BYTES); 128 MiB suits Athena and Spark."
  type        = number
  default     = 134217728

  validation {
    condition     = var.compact_target_bytes >= 1048576 && var.compact_target_bytes <= 2147483648
    error_message = "compact_target_bytes must be between 1 MiB and 2 GiB."
  }
}
