"""The S3 inbox: uploads that start edits (rules, naming conventions, the inbox bucket)."""
