"""pyinfra roles, in the order deploy.py runs them: host, runtime, models, images, secrets, stacks."""
