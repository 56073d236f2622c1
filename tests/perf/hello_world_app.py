"""The cold-start reference: a Powertools hello-world handler (Logger, Tracer, Metrics, REST resolver)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer()
metrics = Metrics()


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"message": "hello"}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
