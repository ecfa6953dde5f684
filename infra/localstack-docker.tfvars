# LocalStack with Docker (localstack/docker-compose.yml): LocalStack runs the functions itself,
# from the zips `make package` builds, so they are created and their SQS mapping is enabled.
#   terraform apply -var-file=localstack-docker.tfvars \
#     -var aws_endpoint_url=http://127.0.0.1:4566 -var api_base_url=https://api.example.com/v1
create_functions        = true
functions_run_on_target = true
# LocalStack does not emulate StartDeliveryStreamEncryption.
firehose_encryption  = false
force_destroy_bucket = true
