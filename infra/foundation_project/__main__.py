"""Entry point for ``pulumi up`` of the foundation (from infra/foundation_project/)."""
import pulumi

from infra import config, foundation

settings = config.from_pulumi_config()
for name, value in foundation.build(settings).items():
    pulumi.export(name, value)
