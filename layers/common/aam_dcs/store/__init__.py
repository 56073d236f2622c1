"""The profiles table behind a small interface: DynamoDB in AWS, an in-memory fake in unit tests."""
