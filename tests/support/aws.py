"""moto-backed AWS resources shaped like the template's, for integration tests."""

from __future__ import annotations

from typing import Any


def create_profiles_table(dynamodb: Any, name: str = "profiles") -> str:
    """The profiles table as template.yaml defines it: pk/sk strings, on demand, TTL on expires_at."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    return name
