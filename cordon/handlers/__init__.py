"""Lambda entry points of the deployed stack, and what each may call in AWS (`permissions`)."""
