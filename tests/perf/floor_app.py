"""The cold-start floor: the hello world plus the least any handler of the contract must do.

Validate the request with a pydantic model (the boundary rule) and make one pooled urllib3 call
to the DCS. A function can trim its own code, but not below this.
"""

import os

import urllib3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel, Field

app = APIGatewayRestResolver()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
http = urllib3.PoolManager(retries=urllib3.Retry(total=2, redirect=False))


class Visitor(BaseModel):
    mid: str = Field(pattern=r"^[0-9]{38}$")
    region_id: int = Field(ge=0)


@app.post("/floor")
def floor() -> dict[str, str]:
    visitor = Visitor.model_validate(app.current_event.json_body)
    answer = http.request(
        "GET",
        f"{os.environ['AAM_DCS_ENDPOINT']}/event?d_mid={visitor.mid}&d_rtbd=json",
        headers={"Host": "acme.demdex.net", "X-Forwarded-Host": "usw2.demdex.net"},
    )
    return {"status": str(answer.status)}


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)
