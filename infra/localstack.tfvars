# LocalStack without Docker, on top of emulator.tfvars: it serves S3, SQS, Firehose and
# EventBridge but cannot run function code, and its Lambda functions never reach Active.
# So no functions are created; the bucket's notifications and the schedules go to queues
# the local runner reads (see create_functions).
#   terraform apply -var-file=emulator.tfvars -var-file=localstack.tfvars \
#     -var aws_endpoint_url=http://127.0.0.1:4566 -var api_base_url=http://127.0.0.1:8080/v1
create_functions = false

# LocalStack does not emulate StartDeliveryStreamEncryption (it answers 501).
firehose_encryption = false
