# Values for a local emulator (moto, or LocalStack without Docker), with a fast local run in
# mind. Pass the endpoint and the API on the command line:
#   terraform apply -var-file=emulator.tfvars \
#     -var aws_endpoint_url=http://127.0.0.1:5000 -var api_base_url=http://127.0.0.1:8080/api

# The emulator cannot run function code: the local runner drives the functions, so the SQS
# event source mapping is created disabled (see the variable's description).
functions_run_on_target = false

consumer_timeout_seconds         = 30
queue_visibility_timeout_seconds = 30
max_receive_count                = 3
consumer_batch_size              = 50
consumer_batching_window_seconds = 1
# The local stack sets consumer_max_concurrency to the machine's cores (at least 2, AWS's
# minimum): more processes than cores only add cold starts.

force_destroy_bucket = true
