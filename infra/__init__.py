"""Deployment: Terraform for the stack, and ``package.py``, which builds the Lambda zips."""
