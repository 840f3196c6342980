"""Entry point for ``pulumi up`` from infra/: the compute stack of the stack's environment.

The environment is the stack config ``workbook:env`` (default: the stack name). The Automation
API also sets ``workbook:params`` from ``params/<env>.yaml``, so both paths read one source.
"""
import pulumi

from infra import compute, config

settings = config.from_pulumi_config()
for name, value in compute.build(settings).items():
    pulumi.export(name, value)
