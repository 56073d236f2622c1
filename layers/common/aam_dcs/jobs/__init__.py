"""Queues, batch sources, sinks and the FIFO batch worker: the AWS edge of the async paths."""
