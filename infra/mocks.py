"""Pulumi mocks that give every resource plausible AWS identifiers, for the offline plan and tests.

Identifiers are deterministic (derived from the names) and use moto's default account and the
stack's region, so a plan's ARNs and queue URLs also address the local endpoint unchanged.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pulumi

ACCOUNT_ID = "123456789012"


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class PlanMocks(pulumi.runtime.Mocks):
    """Records every resource with its inputs; answers StackReferences from ``stack_outputs``."""

    def __init__(self, region: str, stack_outputs: dict[str, dict[str, Any]] | None = None) -> None:
        self.region = region
        self.stack_outputs = stack_outputs or {}
        self.resources: list[dict[str, Any]] = []

    # -- pulumi.runtime.Mocks --------------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        if args.typ == "pulumi:pulumi:StackReference":
            stack_name = args.inputs.get("name") or args.name
            if stack_name not in self.stack_outputs:
                raise KeyError(f"offline plan: no outputs for stack reference {stack_name!r}")
            return stack_name, {"name": stack_name, "outputs": self.stack_outputs[stack_name],
                                "secretOutputNames": []}
        self.resources.append({"type": args.typ, "name": args.name, "inputs": dict(args.inputs)})
        return self._identify(args.typ, args.name, dict(args.inputs))

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/plan", "userId": "PLAN"}, []
        if token == "aws:index/getRegion:getRegion":
            return {"name": self.region, "region": self.region, "id": self.region}, []
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{suffix}" for suffix in "abcdef"]
            return {"names": names, "zoneIds": [f"use1-az{i}" for i in range(1, 7)], "id": self.region}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        return {}, []

    # -- identifiers ---------------------------------------------------------------------------
    def _identify(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict]:
        r, a = self.region, ACCOUNT_ID
        physical = inputs.get("name") or inputs.get("bucket") or inputs.get("layerName") or inputs.get(
            "dashboardName") or name
        state = dict(inputs)
        rid = physical
        make: dict[str, Callable[[], dict[str, Any]]] = {
            "aws:sqs/queue:Queue": lambda: {
                "arn": f"arn:aws:sqs:{r}:{a}:{physical}",
                "url": f"https://sqs.{r}.amazonaws.com/{a}/{physical}",
                "name": physical},
            "aws:sns/topic:Topic": lambda: {"arn": f"arn:aws:sns:{r}:{a}:{physical}", "name": physical},
            "aws:sns/topicSubscription:TopicSubscription": lambda: {
                "arn": f"arn:aws:sns:{r}:{a}:{name}:{_hex(name, 8)}"},
            "aws:lambda/function:Function": lambda: {
                "arn": f"arn:aws:lambda:{r}:{a}:function:{physical}",
                "qualifiedArn": f"arn:aws:lambda:{r}:{a}:function:{physical}:1",
                "invokeArn": (f"arn:aws:apigateway:{r}:lambda:path/2015-03-31/functions/"
                              f"arn:aws:lambda:{r}:{a}:function:{physical}/invocations"),
                "version": "1" if inputs.get("publish") else "$LATEST",
                "name": physical},
            "aws:lambda/alias:Alias": lambda: self._alias(inputs),
            "aws:lambda/layerVersion:LayerVersion": lambda: {
                "arn": f"arn:aws:lambda:{r}:{a}:layer:{physical}:1",
                "layerArn": f"arn:aws:lambda:{r}:{a}:layer:{physical}", "version": "1"},
            "aws:lambda/functionUrl:FunctionUrl": lambda: {
                "functionUrl": f"https://{_hex(name, 32)}.lambda-url.{r}.on.aws/", "urlId": _hex(name, 32)},
            "aws:iam/role:Role": lambda: {"arn": f"arn:aws:iam::{a}:role/{physical}", "name": physical,
                                          "uniqueId": "AROA" + _hex(name, 16).upper()},
            "aws:kms/key:Key": lambda: self._kms(name),
            "aws:cloudwatch/logGroup:LogGroup": lambda: {"arn": f"arn:aws:logs:{r}:{a}:log-group:{physical}"},
            "aws:cloudwatch/eventRule:EventRule": lambda: {
                "arn": f"arn:aws:events:{r}:{a}:rule/"
                       + (f"{inputs['eventBusName']}/" if inputs.get("eventBusName") else "") + physical},
            "aws:cloudwatch/eventBus:EventBus": lambda: {"arn": f"arn:aws:events:{r}:{a}:event-bus/{physical}"},
            "aws:cloudwatch/metricAlarm:MetricAlarm": lambda: {"arn": f"arn:aws:cloudwatch:{r}:{a}:alarm:{physical}"},
            "aws:cloudwatch/dashboard:Dashboard": lambda: {"dashboardArn": f"arn:aws:cloudwatch::{a}:dashboard/{physical}"},
            "aws:sfn/stateMachine:StateMachine": lambda: {"arn": f"arn:aws:states:{r}:{a}:stateMachine:{physical}"},
            "aws:apigatewayv2/api:Api": lambda: {
                "apiEndpoint": f"https://{_hex(name, 10)}.execute-api.{r}.amazonaws.com",
                "executionArn": f"arn:aws:execute-api:{r}:{a}:{_hex(name, 10)}"},
            "aws:s3/bucket:Bucket": lambda: {"arn": f"arn:aws:s3:::{physical}", "bucket": physical},
            "aws:secretsmanager/secret:Secret": lambda: {
                "arn": f"arn:aws:secretsmanager:{r}:{a}:secret:{physical}-{_hex(name, 6)}"},
            "aws:ec2/vpc:Vpc": lambda: {"arn": f"arn:aws:ec2:{r}:{a}:vpc/vpc-{_hex(name, 17)}"},
            "aws:rds/instance:Instance": lambda: {
                "address": f"{physical}.{_hex(name, 12)}.{r}.rds.amazonaws.com",
                "endpoint": f"{physical}.{_hex(name, 12)}.{r}.rds.amazonaws.com:5432",
                "port": 5432, "arn": f"arn:aws:rds:{r}:{a}:db:{physical}"},
            "random:index/randomPassword:RandomPassword": lambda: {"result": "plan-" + _hex(name, 28)},
        }
        prefixes = {"aws:ec2/vpc:Vpc": "vpc", "aws:ec2/subnet:Subnet": "subnet",
                    "aws:ec2/securityGroup:SecurityGroup": "sg", "aws:ec2/routeTable:RouteTable": "rtb",
                    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce", "aws:apigatewayv2/api:Api": "",
                    "aws:kms/key:Key": ""}
        if typ in prefixes:
            rid = (f"{prefixes[typ]}-" if prefixes[typ] else "") + _hex(name, 17 if prefixes[typ] else 10)
            if typ == "aws:kms/key:Key":
                rid = self._kms(name)["keyId"]
        elif typ == "aws:secretsmanager/secret:Secret":
            rid = make[typ]()["arn"]
        elif typ in ("aws:sqs/queue:Queue",):
            rid = make[typ]()["url"]
        state.update(make.get(typ, lambda: {})())
        if "arn" not in state and typ.startswith("aws:"):
            service = typ.split(":")[1].split("/")[0]
            state["arn"] = f"arn:aws:{service}:{r}:{a}:{name}"
        state.setdefault("id", rid)
        state.setdefault("tagsAll", inputs.get("tags") or {})
        return rid, state

    def _alias(self, inputs: dict[str, Any]) -> dict[str, Any]:
        fn = inputs.get("functionName", "fn")
        arn = f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{fn}:{inputs.get('name')}"
        return {"arn": arn, "invokeArn": (f"arn:aws:apigateway:{self.region}:lambda:path/2015-03-31/functions/"
                                          f"{arn}/invocations")}

    def _kms(self, name: str) -> dict[str, Any]:
        h = _hex(name, 32)
        key_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        return {"keyId": key_id, "arn": f"arn:aws:kms:{self.region}:{ACCOUNT_ID}:key/{key_id}"}
