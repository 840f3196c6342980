"""Provision the local endpoint from the offline plan, and derive the sandbox's topology from it.

Every data-plane resource comes from the plan (the infra program under Pulumi's mocks) and
``params/local.yaml``; nothing here names a queue, a bucket or a function. What moto cannot do
itself (invoke Lambda from S3, EventBridge or SNS) is routed through internal queues that the
engine polls: ``lwb-local-*`` queues, which exist only locally.

The result is a *topology*: a JSON-able mapping that the engine reads to register functions,
event source mappings, schedules, rules, the HTTP API and the Function URL.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from infra import environment as contract
from infra import specs
from infra.config import Settings
from infra.project import project_dir
from workbook.local import stepfunctions
from workbook.local.errors import ProvisioningError
from workbook.local.sandbox import artifacts

HANDLERS_DIR = project_dir() / "handlers"

ACCOUNT_ID = "123456789012"

T_QUEUE = "aws:sqs/queue:Queue"
T_TOPIC = "aws:sns/topic:Topic"
T_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
T_BUCKETS = ("aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket")
T_NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
T_FUNCTION = "aws:lambda/function:Function"
T_MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"
T_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
T_RULE = "aws:cloudwatch/eventRule:EventRule"
T_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
T_BUS = "aws:cloudwatch/eventBus:EventBus"
T_LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
T_SECRET = "aws:secretsmanager/secret:Secret"
T_API = "aws:apigatewayv2/api:Api"
T_ROUTE = "aws:apigatewayv2/route:Route"
T_INTEGRATION = "aws:apigatewayv2/integration:Integration"
T_AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
T_STAGE = "aws:apigatewayv2/stage:Stage"
T_FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"

# Which function variable names which kind of secret (infra/environment.py's refs).
_SECRET_REFS = {"DB_SECRET_ARN": "db", "JWT_SECRET_ARN": "jwt", "API_KEYS_SECRET_ARN": "api_keys"}


def _resources(plan: dict, *types: str) -> list[dict]:
    return [r for r in plan.get("resources", []) if r.get("type") in types]


def function_name_from_arn(value: str) -> str:
    """``arn:aws:lambda:...:function:NAME[:qualifier]`` or a bare name -> NAME."""
    if value.startswith("arn:") and ":function:" in value:
        return value.split(":function:", 1)[1].split(":")[0]
    return value


def _queue_name(value: str) -> str:
    """A queue ARN or URL -> its name."""
    return value.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def _internal_queue(kind: str, name: str) -> str:
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"lwb-local-{kind}-{name[:50]}-{digest}"


class Provisioner:
    """Creates the plan's data-plane resources on the local endpoint."""

    def __init__(self, plan: dict, settings: Settings, client: Callable[[str], Any], *,
                 database_secret: dict | None = None, webhook_url: str | None = None,
                 code_paths: Iterable[str] | None = None) -> None:
        self.plan = plan
        self.settings = settings
        self.client = client
        self.database_secret = database_secret
        self.webhook_url = webhook_url
        # None: each function runs its deployment package and the layer, as deploy builds them (artifacts.py).
        self.code_paths = tuple(code_paths) if code_paths else None
        self.translate: dict[str, str] = {}       # plan identifier -> local identifier
        self.queue_urls: dict[str, str] = {}      # queue name -> local URL
        self.topology: dict[str, Any] = {}

    # -- the whole job ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        for step in (self._log_groups, self._queues, self._topics, self._buckets, self._secrets):
            self._guarded(step)
        functions = self._guarded(self._functions)
        self.topology = {
            "runtime": self._runtime_entry(),
            "functions": functions,
            "event_source_mappings": self._guarded(self._mappings),
            "async_configs": self._guarded(self._invoke_configs),
            "s3_notifications": self._guarded(self._notifications),
            "rules": self._guarded(self._rules),
            "http_api": self._guarded(self._http_api),
            "function_urls": self._guarded(self._function_urls),
            "state_machines": self._guarded(self._state_machines),   # [pipeline] workbook/local/stepfunctions.py
            "queues": self.queue_urls,
            "dead_letter_queues": self._dead_letter_queues(),
            "refs": self._refs(functions),
            "clock_factor": self.settings.params.local.clock_factor,
            "idle_expiry_s": self.settings.params.local.idle_expiry_s,
        }
        return self.topology

    def _guarded(self, step: Callable[[], Any]) -> Any:
        """Run one provisioning step; endpoint and plan-shape errors become a ProvisioningError."""
        what = step.__name__.strip("_").replace("_", " ")
        try:
            return step()
        except ProvisioningError:
            raise
        except (BotoCoreError, ClientError) as exc:
            raise ProvisioningError(f"provisioning the plan's {what} on the local endpoint failed: {exc}") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise ProvisioningError(f"the plan's {what} do not have the expected shape ({type(exc).__name__}: {exc}); "
                                    "check `workbook plan --env local --format json`") from exc

    # -- resources --------------------------------------------------------------------------------
    def _log_groups(self) -> None:
        logs = self.client("logs")
        for resource in _resources(self.plan, T_LOG_GROUP):
            name = resource["inputs"].get("name") or resource["name"]
            try:
                logs.create_log_group(logGroupName=name)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
            days = resource["inputs"].get("retentionInDays")
            if days:
                logs.put_retention_policy(logGroupName=name, retentionInDays=int(days))

    def _queues(self) -> None:
        sqs = self.client("sqs")
        queues = _resources(self.plan, T_QUEUE)
        # Dead-letter queues first: a redrive policy must name an existing queue.
        queues.sort(key=lambda r: bool(r["inputs"].get("redrivePolicy")))
        for resource in queues:
            inputs = resource["inputs"]
            name = inputs.get("name") or resource["name"]
            attributes = {}
            for key, attribute in (("visibilityTimeoutSeconds", "VisibilityTimeout"),
                                   ("messageRetentionSeconds", "MessageRetentionPeriod"),
                                   ("receiveWaitTimeSeconds", "ReceiveMessageWaitTimeSeconds"),
                                   ("delaySeconds", "DelaySeconds"), ("maxMessageSize", "MaximumMessageSize")):
                if inputs.get(key) is not None:
                    attributes[attribute] = str(inputs[key])
            if inputs.get("redrivePolicy"):
                policy = inputs["redrivePolicy"]
                policy = json.loads(policy) if isinstance(policy, str) else policy
                attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": policy["deadLetterTargetArn"],
                                                          "maxReceiveCount": str(policy["maxReceiveCount"])})
            if inputs.get("fifoQueue"):
                attributes["FifoQueue"] = "true"
                if inputs.get("contentBasedDeduplication"):
                    attributes["ContentBasedDeduplication"] = "true"
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            self.queue_urls[name] = url
            self.translate[f"https://sqs.{self.settings.params.aws_region}.amazonaws.com/{ACCOUNT_ID}/{name}"] = url

    def _internal_queue(self, name: str, visibility_timeout_s: int = 30) -> tuple[str, str]:
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility_timeout_s)})["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def _topics(self) -> None:
        sns = self.client("sns")
        for resource in _resources(self.plan, T_TOPIC):
            name = resource["inputs"].get("name") or resource["name"]
            attributes = {"FifoTopic": "true"} if resource["inputs"].get("fifoTopic") else {}
            sns.create_topic(Name=name, Attributes=attributes)
        for resource in _resources(self.plan, T_SUBSCRIPTION):
            inputs = resource["inputs"]
            attributes = {}
            if inputs.get("rawMessageDelivery"):
                attributes["RawMessageDelivery"] = "true"
            if inputs.get("filterPolicy"):
                attributes["FilterPolicy"] = inputs["filterPolicy"]
            if inputs.get("protocol") not in ("sqs", "http", "https", "email", "sms"):
                raise ProvisioningError(
                    f"plan resource {resource['name']}: SNS protocol {inputs.get('protocol')!r} is not emulated "
                    "locally; subscribe a queue and consume it with an event source mapping")
            sns.subscribe(TopicArn=inputs["topic"], Protocol=inputs["protocol"], Endpoint=inputs["endpoint"],
                          Attributes=attributes)

    def _buckets(self) -> None:
        s3 = self.client("s3")
        for resource in _resources(self.plan, *T_BUCKETS):
            name = resource["inputs"].get("bucket") or resource["name"]
            try:
                s3.create_bucket(Bucket=name)
            except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
                pass

    def _secret_kinds(self) -> dict[str, str]:
        """Secret name -> db | jwt | api_keys, from which function variable refers to it."""
        kinds: dict[str, str] = {}
        for function in _resources(self.plan, T_FUNCTION):
            variables = ((function["inputs"].get("environment") or {}).get("variables")) or {}
            for variable, kind in _SECRET_REFS.items():
                if variables.get(variable):
                    kinds[_secret_name(variables[variable])] = kind
        return kinds

    def _secret_value(self, kind: str | None) -> str:
        if kind == "db":
            if self.database_secret is None:
                raise ProvisioningError("the plan has a database secret but no local database was started")
            return json.dumps(self.database_secret)
        if kind == "jwt":
            return json.dumps({"hs256_key": secrets.token_urlsafe(48)})
        if kind == "api_keys":
            return json.dumps({"webhook_url": self.webhook_url or "http://127.0.0.1:9/webhook",
                               "webhook_token": secrets.token_urlsafe(24),
                               "api_keys": {"local": secrets.token_urlsafe(24)}})
        return json.dumps({"value": secrets.token_urlsafe(24)})

    def _secrets(self) -> None:
        manager = self.client("secretsmanager")
        kinds = self._secret_kinds()
        for resource in _resources(self.plan, T_SECRET):
            name = resource["inputs"].get("name") or resource["name"]
            value = self._secret_value(kinds.get(name))
            try:
                arn = manager.create_secret(Name=name, SecretString=value)["ARN"]
            except manager.exceptions.ResourceExistsException:
                arn = manager.put_secret_value(SecretId=name, SecretString=value)["ARN"]
            self.translate[name] = arn
        # The plan's ARNs carry mock suffixes; map them to moto's.
        for function in _resources(self.plan, T_FUNCTION):
            variables = ((function["inputs"].get("environment") or {}).get("variables")) or {}
            for variable in _SECRET_REFS:
                value = variables.get(variable)
                if value and _secret_name(value) in self.translate:
                    self.translate[value] = self.translate[_secret_name(value)]

    def _runtime(self) -> artifacts.LocalRuntime:
        try:
            return artifacts.local_runtime()
        except artifacts.ArtifactError as exc:
            raise ProvisioningError(f"the handlers' runtime could not be prepared: {exc}") from exc

    def _runtime_entry(self) -> dict[str, Any]:
        """The interpreter and runtime packages every environment starts with, and the line that says which."""
        runtime = self._runtime()
        return {"python": runtime.python, "paths": list(runtime.paths), "python_version": runtime.python_version,
                "summary": artifacts.handler_python().describe()}

    def _code_paths(self, key: str) -> list[str]:
        """Function ``key``'s path: the given folders, or its package and the layer, built as deploy builds them."""
        if self.code_paths is not None:
            return list(self.code_paths)
        if key not in specs.BY_KEY:
            raise ProvisioningError(f"function {key!r} of the plan is none of the stack's functions "
                                    f"({', '.join(specs.FUNCTION_KEYS)}) and has no Function tag naming one; "
                                    "there is no package to run for it")
        try:
            return list(artifacts.function_code_paths(key, self._runtime().python_version))
        except artifacts.ArtifactError as exc:
            raise ProvisioningError(f"the package of {key} could not be built: {exc}") from exc

    def _functions(self) -> list[dict]:
        functions = []
        by_name = {self.settings.function_name(key): key for key in specs.FUNCTION_KEYS}
        for resource in _resources(self.plan, T_FUNCTION):
            inputs = resource["inputs"]
            name = inputs.get("name") or resource["name"]
            key = by_name.get(name, resource["name"])
            variables = dict(((inputs.get("environment") or {}).get("variables")) or {})
            variables = {k: self.translate.get(str(v), str(v)) for k, v in variables.items()}
            if key in specs.BY_KEY:
                # The contract of infra/environment.py, with local identifiers for the refs.
                refs = {ref: variables.get(ref.upper(), "") for ref in contract.refs_for(key)}
                variables.update({k: str(v) for k, v in contract.function_environment(self.settings, key, refs).items()})
            logging = inputs.get("loggingConfig") or {}
            reserved = inputs.get("reservedConcurrentExecutions")
            functions.append({
                "key": key,
                "function_name": name,
                "memory_mb": int(inputs.get("memorySize") or 128),
                "timeout_s": float(inputs.get("timeout") or 3),
                "handler": inputs.get("handler") or f"{key.replace('-', '_')}.handler",
                "environment": variables,
                # The package deploy built for the stack function this resource is (its Function tag: a
                # copy of one, such as a test's throttled twin, runs the same package under its own name).
                "code_paths": self._code_paths(str((inputs.get("tags") or {}).get("Function") or key)),
                "reserved_concurrency": int(reserved) if reserved is not None and int(reserved) >= 0 else None,
                "log_format": logging.get("logFormat", "Text"),
                "log_group": logging.get("logGroup") or f"/aws/lambda/{name}",
                "application_log_level": logging.get("applicationLogLevel"),
                "tracing_active": (inputs.get("tracingConfig") or {}).get("mode") == "Active",
                "region": self.settings.params.aws_region,
            })
        return functions

    def _mappings(self) -> list[dict]:
        sqs = self.client("sqs")
        mappings = []
        for resource in _resources(self.plan, T_MAPPING):
            inputs = resource["inputs"]
            source = inputs.get("eventSourceArn", "")
            if ":sqs:" not in source:
                raise ProvisioningError(f"plan resource {resource['name']}: only SQS event sources are emulated, "
                                        f"not {source!r}")
            queue = _queue_name(source)
            url = self.queue_urls.get(queue) or sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            window = inputs.get("maximumBatchingWindowInSeconds") or 0
            mappings.append({
                "name": resource["name"],
                "function": function_name_from_arn(inputs["functionName"]),
                "queue_url": url,
                "queue_arn": source,
                "batch_size": int(inputs.get("batchSize") or 10),
                "batching_window_s": float(window),
                "report_batch_item_failures": "ReportBatchItemFailures" in (inputs.get("functionResponseTypes") or []),
                "maximum_concurrency": int(((inputs.get("scalingConfig") or {}).get("maximumConcurrency")) or 2),
                "enabled": inputs.get("enabled", True) is not False,
            })
        return mappings

    def _invoke_configs(self) -> dict[str, dict]:
        configs = {}
        for resource in _resources(self.plan, T_INVOKE_CONFIG):
            inputs = resource["inputs"]
            destinations = inputs.get("destinationConfig") or {}
            configs[function_name_from_arn(inputs["functionName"])] = {
                "maximum_retry_attempts": int(inputs.get("maximumRetryAttempts", 2)),
                "maximum_event_age_s": int(inputs.get("maximumEventAgeInSeconds", 21600)),
                "on_failure": (destinations.get("onFailure") or {}).get("destination"),
                "on_success": (destinations.get("onSuccess") or {}).get("destination"),
            }
        return configs

    def _notifications(self) -> list[dict]:
        """Bucket -> Lambda notifications become bucket -> internal queue, polled by the engine."""
        s3 = self.client("s3")
        routes = []
        for resource in _resources(self.plan, T_NOTIFICATION):
            inputs = resource["inputs"]
            bucket = inputs["bucket"]
            configuration: dict[str, list] = {"QueueConfigurations": [], "TopicConfigurations": []}
            functions: dict[str, str] = {}
            if inputs.get("lambdaFunctions"):
                url, arn = self._internal_queue(_internal_queue("s3", bucket))
                for index, entry in enumerate(inputs["lambdaFunctions"]):
                    config_id = entry.get("id") or f"lambda-{index}"
                    functions[config_id] = function_name_from_arn(entry["lambdaFunctionArn"])
                    configuration["QueueConfigurations"].append(
                        {"Id": config_id, "QueueArn": arn, "Events": entry["events"], **_filter(entry)})
                routes.append({"bucket": bucket, "queue_url": url, "functions": functions})
            for entry in inputs.get("queues") or []:
                configuration["QueueConfigurations"].append(
                    {"Id": entry.get("id", "queue"), "QueueArn": entry["queueArn"], "Events": entry["events"], **_filter(entry)})
            for entry in inputs.get("topics") or []:
                configuration["TopicConfigurations"].append(
                    {"Id": entry.get("id", "topic"), "TopicArn": entry["topicArn"], "Events": entry["events"], **_filter(entry)})
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={k: v for k, v in configuration.items() if v})
        return routes

    def _rules(self) -> list[dict]:
        events = self.client("events")
        for resource in _resources(self.plan, T_BUS):
            name = resource["inputs"].get("name") or resource["name"]
            try:
                events.create_event_bus(Name=name)
            except events.exceptions.ResourceAlreadyExistsException:
                pass
        targets_by_rule: dict[str, list[dict]] = {}
        for resource in _resources(self.plan, T_TARGET):
            inputs = resource["inputs"]
            targets_by_rule.setdefault(inputs["rule"], []).append({
                "arn": inputs["arn"],
                "input": inputs.get("input"),
                "maximum_retry_attempts": int((inputs.get("retryPolicy") or {}).get("maximumRetryAttempts", 185)),
                "maximum_event_age_s": int((inputs.get("retryPolicy") or {}).get("maximumEventAgeInSeconds", 86400)),
                "dead_letter_arn": (inputs.get("deadLetterConfig") or {}).get("arn"),
            })
        rules = []
        for resource in _resources(self.plan, T_RULE):
            inputs = resource["inputs"]
            name = inputs.get("name") or resource["name"]
            bus = inputs.get("eventBusName") or "default"
            arguments = {"Name": name, "EventBusName": bus, "State": inputs.get("state") or "ENABLED"}
            for key, argument in (("scheduleExpression", "ScheduleExpression"), ("eventPattern", "EventPattern"),
                                  ("description", "Description")):
                if inputs.get(key):
                    arguments[argument] = inputs[key]
            rule_arn = events.put_rule(**arguments)["RuleArn"]
            rule = {"name": name, "arn": rule_arn, "bus": bus, "state": arguments["State"],
                    "schedule": inputs.get("scheduleExpression"), "pattern": inputs.get("eventPattern"),
                    "targets": targets_by_rule.get(name, [])}
            if rule["pattern"]:
                # moto matches the pattern; its match lands on an internal queue that the engine forwards.
                url, arn = self._internal_queue(_internal_queue("rule", name))
                events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "lwb-local-forwarder", "Arn": arn}])
                rule["queue_url"] = url
            rules.append(rule)
        return rules

    def _http_api(self) -> dict | None:
        apis = _resources(self.plan, T_API)
        if not apis:
            return None
        api = apis[0]
        integrations = {}
        for resource in _resources(self.plan, T_INTEGRATION):
            uri = resource["inputs"].get("integrationUri", "")
            function_arn = uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0] if "/functions/" in uri else uri
            integrations[f"integrations/{resource['name']}"] = {
                "function": function_name_from_arn(function_arn),
                "timeout_ms": int(resource["inputs"].get("timeoutMilliseconds") or 30000),
                "payload_format": resource["inputs"].get("payloadFormatVersion", "2.0"),
            }
        authorizers = {}
        for resource in _resources(self.plan, T_AUTHORIZER):
            inputs = resource["inputs"]
            uri = inputs.get("authorizerUri", "")
            function_arn = uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0] if "/functions/" in uri else uri
            entry = {
                "function": function_name_from_arn(function_arn),
                "identity_sources": inputs.get("identitySources") or [],
                "simple_responses": bool(inputs.get("enableSimpleResponses")),
                "ttl_s": int(inputs.get("authorizerResultTtlInSeconds") or 0),
                "payload_format": inputs.get("authorizerPayloadFormatVersion", "2.0"),
            }
            authorizers[resource["name"]] = entry
            authorizers[inputs.get("name") or resource["name"]] = entry
        routes = []
        for resource in _resources(self.plan, T_ROUTE):
            inputs = resource["inputs"]
            integration = integrations.get(inputs.get("target", "")) or next(iter(integrations.values()), None)
            if integration is None:
                continue
            authorizer = None
            if inputs.get("authorizationType") == "CUSTOM":
                authorizer = authorizers.get(inputs.get("authorizerId", ""))
            routes.append({"route_key": inputs["routeKey"], "integration": integration, "authorizer": authorizer})
        access_log = None
        for stage in _resources(self.plan, T_STAGE):
            settings = stage["inputs"].get("accessLogSettings") or {}
            if settings.get("destinationArn") and settings.get("format"):
                group = settings["destinationArn"].split(":log-group:", 1)[-1].removesuffix(":*")
                access_log = {"group": group, "format": settings["format"]}
        return {"api_id": api.get("inputs", {}).get("name", api["name"]), "name": api["inputs"].get("name"),
                "cors": api["inputs"].get("corsConfiguration"), "routes": routes, "access_log": access_log}

    def _function_urls(self) -> list[dict]:
        return [{"function": function_name_from_arn(r["inputs"]["functionName"]),
                 "authorization_type": r["inputs"].get("authorizationType", "NONE"),
                 "cors": r["inputs"].get("cors")} for r in _resources(self.plan, T_FUNCTION_URL)]

    def _state_machines(self) -> list[dict]:
        # [pipeline] executable in moto, their Lambda steps run by the sandbox (workbook/local/stepfunctions.py).
        return stepfunctions.provision(self.plan, self.client)

    def _dead_letter_queues(self) -> list[str]:
        names = set()
        for resource in _resources(self.plan, T_QUEUE):
            policy = resource["inputs"].get("redrivePolicy")
            if policy:
                policy = json.loads(policy) if isinstance(policy, str) else policy
                names.add(_queue_name(policy["deadLetterTargetArn"]))
        return sorted(names)

    def _refs(self, functions: list[dict]) -> dict[str, str]:
        refs: dict[str, str] = {}
        for function in functions:
            for ref in contract.REF_NAMES:
                value = function["environment"].get(ref.upper())
                if value:
                    refs[ref] = value
        return refs


def _secret_name(arn_or_name: str) -> str:
    """A Secrets Manager ARN (with its random 6-character suffix) or name -> the name."""
    if arn_or_name.startswith("arn:") and ":secret:" in arn_or_name:
        name = arn_or_name.split(":secret:", 1)[1]
        head, _, tail = name.rpartition("-")
        return head if head and len(tail) == 6 else name
    return arn_or_name


def _filter(entry: dict) -> dict:
    rules = []
    if entry.get("filterPrefix"):
        rules.append({"Name": "prefix", "Value": entry["filterPrefix"]})
    if entry.get("filterSuffix"):
        rules.append({"Name": "suffix", "Value": entry["filterSuffix"]})
    return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}


def provision(plan: dict, settings: Settings, client: Callable[[str], Any], **options) -> dict[str, Any]:
    """Create the plan's resources on the local endpoint; return the sandbox topology."""
    return Provisioner(plan, settings, client, **options).run()
